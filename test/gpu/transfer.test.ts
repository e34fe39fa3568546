// `tunelab transfer` end to end: a study on a tiny Llama, its top configurations re-run on a larger tiny Llama
// of the same family and tokenizer (more layers, wider), τ-b and the verdict reported, the result appended to
// the study log (which still loads), the plot written; a model of another family is refused before any GPU work.
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadStudy, type TransferEvent } from '../../src/engine/search/index.ts';
import { kendallTauB } from '../../src/engine/transfer/agreement.ts';
import { topTrials } from '../../src/cli/transfer.ts';
import { runCli } from '../fixtures/cli.ts';
import { buildTinyModel, writeTinyModel } from '../fixtures/tiny-models.ts';
import { useTuneWorkspace } from './tune-workspace.ts';

// The small model: the workspace's tiny Llama.
const ws = useTuneWorkspace(
  'transfer',
  { lr: { type: 'categorical', choices: [3e-2, 1e-2, 1e-3, 1e-7] } },
  40,
);
let largeDir: string;
beforeAll(async () => {
  // Same family and tokenizer, three layers instead of two, hidden 128 instead of 64 (head dim 32 either way).
  const wide = { hidden: 128, heads: 4, kvHeads: 2, layers: 3, ffn: 192 };
  largeDir = await writeTinyModel(
    buildTinyModel({ arch: 'llama', seed: 2, dims: wide }),
    join(ws.dir, 'large'),
  );
});

describe('tunelab transfer', { timeout: 400_000 }, () => {
  it('re-runs the top 3 of a 4-trial study on the larger model and reports τ-b, the verdict and a plot', async () => {
    const study = join(ws.dir, 'study');
    const tuned = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --space ${ws.spaceFile} --sampler grid --trials 4 ` +
        `--seq 8 --batch 4 --steps 4 --eval-every 2 --r 4 --workers 1 --in-process --no-autotune --out ${study}`,
    );
    expect(tuned.code, tuned.stderr).toBe(0);
    const before = loadStudy(await readFile(join(study, 'study.jsonl'), 'utf8')).study;
    const top = topTrials(before, 3);
    expect(top).toHaveLength(3);

    const out = join(ws.dir, 'check');
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
    const gpt2Dir = await writeTinyModel(buildTinyModel({ arch: 'gpt2' }), join(ws.dir, 'gpt2'));
    const refused = await runCli(`transfer --study ${study} --model ${gpt2Dir} --out ${join(ws.dir, 'no')}`);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--model: .* is a gpt2 model; the study ran on a llama model/);
    const missing = await runCli(
      `transfer --study ${join(ws.dir, 'nowhere')} --model ${largeDir} --out ${join(ws.dir, 'no')}`,
    );
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--study: no tune\.json/);
  });
});
