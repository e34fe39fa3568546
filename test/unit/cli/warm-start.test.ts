// `tunelab tune --warm-start DIR`: the source study is read from its folder and checked before anything is
// written (refusals run in-process on a tiny checkpoint, before a GPU is needed); the seed it gives and the
// plan's record of it.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { warmStartOf, warmStartSummary } from '../../../src/cli/warm-start.ts';
import { createSpace, createStudy, type SpaceSpec } from '../../../src/engine/search/index.ts';
import { PlanError, preset, StudyPlan } from '../../../src/engine/tune/index.ts';
import { runCli } from '../../fixtures/cli.ts';
import { buildTinyModel, writeTinyModel } from '../../fixtures/tiny-models.ts';

const SPACE: SpaceSpec = preset('lora-basic', 'llama').space;

let dir: string;
let base: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-warm-start-'));
  const modelDir = await writeTinyModel(buildTinyModel({ arch: 'llama' }), join(dir, 'model'));
  const data = join(dir, 'data.txt');
  await writeFile(data, 'the quick brown fox jumps over the lazy dog. '.repeat(8));
  base = `tune --model ${modelDir} --data ${data} --seq 8 --steps 2 --trials 1`;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A source folder holding the log of a study over `space` with `trials` trials, the last `running` unfinished. */
async function sourceDir(name: string, space: SpaceSpec, trials: number, running = 0): Promise<string> {
  const lines: string[] = [];
  const study = createStudy({
    space,
    sampler: 'random',
    seed: 3,
    onEvent: (e) => lines.push(JSON.stringify(e)),
  });
  for (let i = 0; i < trials; i++) {
    const t = study.ask();
    if (i < trials - running) study.tell(t, 1 + Math.abs(Math.log10(t.params.lr as number) + 3));
  }
  const folder = join(dir, name);
  await mkdir(folder);
  await writeFile(join(folder, 'study.jsonl'), lines.map((l) => `${l}\n`).join(''));
  return folder;
}

describe('warmStartOf', () => {
  it("gives the finished study's seed for the new space", async () => {
    const src = await sourceDir('finished', SPACE, 8);
    const seed = await warmStartOf(src, createSpace(SPACE));
    expect(seed.replay).toHaveLength(5);
    expect(seed.prior).toHaveLength(8);
    expect(warmStartSummary(src, seed)).toMatch(/5 configuration\(s\) asked first, 8 prior observation\(s\)/);
  });
});

describe('tunelab tune --warm-start refuses, naming the flag, before writing anything', () => {
  const refused = async (name: string, flags: string, message: RegExp) => {
    const out = join(dir, `out-${name}`);
    const { code, stderr } = await runCli(`${base} --out ${out} ${flags}`);
    expect(stderr).toMatch(message);
    expect(code).toBe(2);
    expect(existsSync(out)).toBe(false);
  };

  it('a folder with no study', async () => {
    await refused(
      'missing',
      `--warm-start ${join(dir, 'nowhere')}`,
      /--warm-start: no study\.jsonl in '.*nowhere'/,
    );
  });

  it('a study with a trial still running or paused', async () => {
    const src = await sourceDir('unfinished', SPACE, 4, 1);
    await refused(
      'unfinished',
      `--warm-start ${src}`,
      /--warm-start: the study in '.*unfinished' is not finished \(trial 3 still running or paused\); finish it first with tunelab tune --resume/,
    );
  });

  it('a study whose log ends with a cut-off line', async () => {
    const src = await sourceDir('torn', SPACE, 3);
    await writeFile(join(src, 'study.jsonl'), '{"type":"ask","num', { flag: 'a' });
    await refused(
      'torn',
      `--warm-start ${src}`,
      /--warm-start: the study in '.*torn' is not finished \(study\.jsonl ends with a cut-off line\)/,
    );
  });

  it('a study sharing no searched parameter', async () => {
    const src = await sourceDir('disjoint', { other: { type: 'float', low: 0, high: 1 } }, 3);
    await refused(
      'disjoint',
      `--warm-start ${src}`,
      /--warm-start: '.*disjoint': the source study shares no searched parameter/,
    );
  });

  it('with --resume', async () => {
    const { code, stderr } = await runCli(`tune --resume ${join(dir, 'any')} --warm-start ${dir}`);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--warm-start: a resumed study keeps the warm start it began with/);
  });
});

describe('the plan records the warm start', () => {
  const input = { space: SPACE, trials: 3, valRatio: 0.1 };
  const context = { family: 'llama' as const };
  const record = { study: 'runs/small', source: 'ab'.repeat(32) };

  it('withWarmStart sets and clears it, and a stored plan reads back with it', () => {
    const plan = StudyPlan.create(input, context).withWarmStart(record);
    expect(plan.toJSON().warmStart).toEqual(record);
    expect(StudyPlan.create(plan.toJSON(), context).toJSON()).toEqual(plan.toJSON());
    expect(plan.withWarmStart(null).toJSON().warmStart).toBeUndefined();
    expect(plan.studyOptions().plan).toMatchObject({ warmStart: record });
  });

  it('refuses a malformed record, naming the field', () => {
    const bad = { ...StudyPlan.create(input, context).toJSON(), warmStart: { study: 'x', source: 'nope' } };
    expect(() => StudyPlan.create(bad, context)).toThrow(PlanError);
    expect(() => StudyPlan.create(bad, context)).toThrow(/study plan: warmStart: expected \{ study/);
  });
});
