// `tunelab tune` checks everything before it writes anything: flags, the --space file, and on --resume its
// tune.json and study.jsonl. Run in-process on a tiny checkpoint in a temporary folder; every case here is
// refused before a GPU is needed, so it runs without one.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../../fixtures/cli.ts';
import { makeStudyLog } from '../../fixtures/study-logs.ts';
import { buildTinyModel, writeTinyModel } from '../../fixtures/tiny-models.ts';

let dir: string;
let base: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-tune-validate-'));
  const modelDir = await writeTinyModel(buildTinyModel({ arch: 'llama' }), join(dir, 'model'));
  const data = join(dir, 'data.txt');
  await writeFile(data, 'the quick brown fox jumps over the lazy dog. '.repeat(8));
  base = `tune --model ${modelDir} --data ${data} --seq 8 --steps 2 --trials 1`;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A --resume folder: tune.json as given, and a study log. */
async function resumeDir(name: string, tuneJson: string, log: string): Promise<string> {
  const out = join(dir, name);
  await mkdir(out);
  await writeFile(join(out, 'tune.json'), tuneJson);
  await writeFile(join(out, 'study.jsonl'), log);
  return out;
}

/** The folder's files and their contents, to show a refused run changed nothing. */
async function snapshot(folder: string): Promise<Record<string, string>> {
  const names = (await readdir(folder)).sort();
  return Object.fromEntries(
    await Promise.all(names.map(async (n) => [n, await readFile(join(folder, n), 'utf8')] as const)),
  );
}

describe('tunelab tune refuses bad input before writing anything', () => {
  it('--workers 0: a usage error naming the flag, and no --out created', async () => {
    const out = join(dir, 'workers0');
    const { code, stderr } = await runCli(`${base} --workers 0 --out ${out}`);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--workers: expected a whole number ≥ 1, got '0'/);
    expect(existsSync(out)).toBe(false);
  });

  it('a --space that is null, or has a parameter that is not an object: the file and the parameter named', async () => {
    const out = join(dir, 'badspace');
    for (const [name, space, message] of [
      ['null', 'null', /--space: .*null\.json: expected an object of parameters/],
      [
        'lr-null',
        '{"lr": null}',
        /--space: .*lr-null\.json: parameter "lr": expected an object with a "type", got null/,
      ],
      ['array', '[1]', /--space: .*array\.json: expected an object of parameters/],
      ['no-bounds', '{"lr": {"type": "float"}}', /--space: .*no-bounds\.json: .*parameter 'lr'/],
    ] as const) {
      const file = join(dir, `${name}.json`);
      await writeFile(file, space);
      const { code, stderr } = await runCli(`${base} --space ${file} --out ${out}`);
      expect(code).toBe(2);
      expect(stderr).toMatch(message);
      expect(stderr).not.toMatch(/TypeError/);
      expect(existsSync(out)).toBe(false);
    }
  });

  it('a space beyond the model (r over its hidden size 64, seq over its 128 positions): refused before writing', async () => {
    const out = join(dir, 'beyond');
    const file = join(dir, 'big-r.json');
    await writeFile(file, '{"r": {"type": "categorical", "choices": [8, 128]}}');
    const bigR = await runCli(`${base} --space ${file} --out ${out}`);
    expect(bigR.code).toBe(2);
    expect(bigR.stderr).toMatch(/big-r\.json:.*'r'.*64/);
    const longSeq = await runCli(`${base.replace('--seq 8', '--seq 256')} --out ${out}`);
    expect(longSeq.code).not.toBe(0);
    expect(longSeq.stderr).toMatch(/seq.*128/);
    expect(existsSync(out)).toBe(false);
  });

  it('a dataset that is not UTF-8: refused naming the file and the byte offset, nothing written', async () => {
    const out = join(dir, 'latin1');
    const data = join(dir, 'latin1.txt');
    await writeFile(data, Buffer.from([...Buffer.from('caf'), 0xe9, ...Buffer.from(' au lait\n')]));
    const { code, stderr } = await runCli(`${base.replace(/--data \S+/, `--data ${data}`)} --out ${out}`);
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/latin1\.txt.*(byte|offset) 3/);
    expect(existsSync(out)).toBe(false);
  });

  it('--resume with a tune.json that is null, not JSON, or holds a bad flag: the file and field named, nothing changed', async () => {
    const log = makeStudyLog(1, 2);
    for (const [name, tuneJson, message] of [
      ['null', 'null', /tune\.json: expected \{"flags": \{\.\.\.\}\} as tunelab tune writes it, got null/],
      ['notjson', '{"flags": {', /tune\.json is not JSON/],
      [
        'badflag',
        '{"flags": {"workers": 3}}',
        /tune\.json: field "flags\.workers": expected a string, got 3/,
      ],
      [
        'unknown',
        '{"flags": {"bogus": "1"}}',
        /tune\.json: field "flags\.bogus": not a flag of tunelab tune/,
      ],
    ] as const) {
      const out = await resumeDir(`resume-${name}`, tuneJson, log);
      const before = await snapshot(out);
      const { code, stderr } = await runCli(`tune --resume ${out}`);
      expect(code, name).toBe(2);
      expect(stderr).toMatch(message);
      expect(stderr).not.toMatch(/TypeError/);
      expect(await snapshot(out)).toEqual(before);
    }
  });

  it('--resume with a corrupt middle line in study.jsonl: file:line and what was expected, nothing changed', async () => {
    const flags = Object.fromEntries(
      base
        .split(' ')
        .slice(1)
        .flatMap((w, i, all) => (w.startsWith('--') ? [[w.slice(2), all[i + 1]]] : [])),
    );
    const lines = makeStudyLog(7, 4).split('\n');
    lines[2] = lines[2].slice(0, 12);
    const out = await resumeDir('resume-corrupt', JSON.stringify({ flags }), lines.join('\n'));
    const before = await snapshot(out);
    const { code, stderr } = await runCli(`tune --resume ${out}`);
    expect(code).toBe(1);
    expect(stderr).toContain(`${join(out, 'study.jsonl')}:3: expected one JSON event per line`);
    expect(await snapshot(out)).toEqual(before);
  });
});
