// `tunelab transfer` end to end: a study on a tiny Llama, its top configurations re-run on a larger tiny Llama
// of the same family and tokenizer (more layers, wider), τ-b and the verdict reported, the result appended to
// the study log (which still loads), the plot written; a model of another family is refused before any GPU work.
import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStudy, type TransferEvent } from '../../src/engine/search/index.ts';
import { kendallTauB } from '../../src/engine/transfer/agreement.ts';
import { topTrials } from '../../src/cli/transfer.ts';
import { runCli } from '../fixtures/cli.ts';
import { buildTinyModel, writeTinyModel } from '../fixtures/tiny-models.ts';

let dir: string;
let smallDir: string;
let largeDir: string;
let dataFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-transfer-'));
  smallDir = await writeTinyModel(buildTinyModel({ arch: 'llama', seed: 1 }), join(dir, 'small'));
  // Same family and tokenizer, three layers instead of two, hidden 128 instead of 64 (head dim 32 either way).
  const wide = { hidden: 128, heads: 4, kvHeads: 2, layers: 3, ffn: 192 };
  largeDir = await writeTinyModel(buildTinyModel({ arch: 'llama', seed: 2, dims: wide }), join(dir, 'large'));
  dataFile = join(dir, 'add.jsonl');
  const rows = Array.from({ length: 40 }, (_, i) => {
    const a = (i * 7) % 50;
    const b = (i * 13) % 50;
    return JSON.stringify({ prompt: `${a}+${b}=`, completion: `${a + b}` });
  });
  await writeFile(dataFile, rows.join('\n'));
  await writeFile(
    join(dir, 'space.json'),
    JSON.stringify({ lr: { type: 'categorical', choices: [3e-2, 1e-2, 1e-3, 1e-7] } }),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tunelab transfer', { timeout: 400_000 }, () => {
  it('re-runs the top 3 of a 4-trial study on the larger model and reports τ-b, the verdict and a plot', async () => {
    const study = join(dir, 'study');
    const tuned = await runCli(
      `tune --model ${smallDir} --data ${dataFile} --space ${join(dir, 'space.json')} --sampler grid --trials 4 ` +
        `--seq 8 --batch 4 --steps 4 --eval-every 2 --r 4 --workers 1 --in-process --no-autotune --out ${study}`,
    );
    expect(tuned.code, tuned.stderr).toBe(0);
    const before = loadStudy(await readFile(join(study, 'study.jsonl'), 'utf8')).study;
    const top = topTrials(before, 3);
    expect(top).toHaveLength(3);

    const out = join(dir, 'check');
    const r = await runCli(`transfer --study ${study} --model ${largeDir} --top 3 --within 10 --out ${out}`);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(await readFile(join(out, 'transfer.json'), 'utf8')) as TransferEvent & {
      smallParams: number;
    };
    expect(result.results.map((x) => x.number)).toEqual(top.map((t) => t.number));
    expect(result.results.map((x) => x.small)).toEqual(top.map((t) => t.value));
    for (const x of result.results) expect(Number.isFinite(x.large), `trial ${x.number}`).toBe(true);
    const large = result.results.map((x) => x.large!);
    const tau = kendallTauB(
      result.results.map((x) => x.small),
      large,
    );
    expect(result.tau).toBe(Number.isNaN(tau) ? null : tau);
    expect(result.params).toBeGreaterThan(result.smallParams);
    const largeBest = result.results.reduce((b, x) => (x.large! < b.large! ? x : b));
    expect(result.largeBest).toBe(largeBest.number);
    expect(result.smallBest).toBe(top[0].number);
    expect(r.stdout).toMatch(
      /3 configurations on .*: Kendall τ-b (-?\d\.\d{3}|undefined); the small model's best \(trial \d+\)/,
    );

    // The study log gains the transfer event, and still loads with every trial as it was.
    const { study: after, errors } = loadStudy(await readFile(join(study, 'study.jsonl'), 'utf8'));
    expect(errors).toEqual([]);
    expect(after.trials).toEqual(before.trials);
    expect(after.events.at(-1)).toMatchObject({ type: 'transfer', model: largeDir, tau: result.tau });

    // The plot: well-formed SVG, one point per configuration.
    const svg = await readFile(join(out, 'transfer.svg'), 'utf8');
    expect(svg.match(/<circle [^>]*r="5"/g)).toHaveLength(3);
    const xml = spawnSync(
      'python3',
      ['-c', 'import sys, xml.etree.ElementTree as E; E.fromstring(sys.stdin.read())'],
      {
        input: svg,
        encoding: 'utf8',
      },
    );
    if (xml.error === undefined) expect(xml.stderr).toBe('');

    // Another family is refused, naming --model, before anything runs or is written.
    const gpt2Dir = await writeTinyModel(buildTinyModel({ arch: 'gpt2' }), join(dir, 'gpt2'));
    const refused = await runCli(`transfer --study ${study} --model ${gpt2Dir} --out ${join(dir, 'no')}`);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--model: .* is a gpt2 model; the study ran on a llama model/);
    const missing = await runCli(
      `transfer --study ${join(dir, 'nowhere')} --model ${largeDir} --out ${join(dir, 'no')}`,
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--study: no tune\.json/);
  });
});
