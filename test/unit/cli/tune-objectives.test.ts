// `tune --objectives` and `--pick`: the objectives' parsing and every refusal, before anything is written (no
// GPU needed), and the plan a multi-objective study keeps.
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  formatObjectives,
  objectiveValues,
  parseObjectives,
  PlanError,
  StudyPlan,
} from '../../../src/engine/tune/index.ts';
import { runCli } from '../../fixtures/cli.ts';
import { buildTinyModel, writeTinyModel } from '../../fixtures/tiny-models.ts';

describe('parseObjectives', () => {
  it('takes each direction from the name unless :min / :max says, and spells the list back', () => {
    expect(parseObjectives('val_loss,step_time')).toEqual([
      { metric: 'val_loss', direction: 'minimize' },
      { metric: 'step_time', direction: 'minimize' },
    ]);
    const list = parseObjectives('perplexity, tokens_per_second ,peak_memory:max');
    expect(list.map((o) => o.direction)).toEqual(['minimize', 'maximize', 'maximize']);
    expect(formatObjectives(list)).toBe('perplexity,tokens_per_second,peak_memory:max');
  });

  it.each([
    ['val_loss', /expected 2 to 4 objectives \(one objective: --objective\)/],
    ['val_loss,speed', /'speed' is not one of val_loss, perplexity, accuracy, macro_f1, step_time/],
    ['val_loss,step_time:fast', /'step_time:fast': expected METRIC or METRIC:min \/ METRIC:max/],
    ['val_loss,val_loss:max', /val_loss is given twice/],
    [
      'step_time,val_loss',
      /the first objective is measured at every evaluation: .*got step_time; put it second/,
    ],
    ['val_loss,perplexity,accuracy,macro_f1,step_time', /expected 2 to 4 objectives/],
  ])('refuses %s', (text, message) => {
    expect(() => parseObjectives(text)).toThrow(message);
  });

  it('reads each value from what the trial measured (step time: seconds per step of its last stretch)', () => {
    const values = objectiveValues(parseObjectives('val_loss,step_time,peak_memory,tokens_per_second'), {
      evaluation: { step: 8, valLoss: 2.5, perplexity: Math.exp(2.5), tokens: 64 },
      lastStep: {
        step: 8,
        epoch: 0,
        loss: 2.4,
        lr: 1e-3,
        gradNorm: 1,
        lossScale: 1,
        skipped: false,
        skippedSteps: 0,
        tokens: 32,
        tokensPerSecond: 640,
      },
      gpuBytes: 12345,
    });
    expect(values).toEqual([2.5, 32 / 640, 12345, 640]);
    const unmeasured = objectiveValues(parseObjectives('accuracy,step_time'), {
      evaluation: { step: 8, valLoss: 2.5, perplexity: 1, tokens: 64 },
      lastStep: null,
    });
    expect(unmeasured.every(Number.isNaN)).toBe(true);
  });
});

describe('a multi-objective StudyPlan', () => {
  const input = {
    space: { lr: { type: 'float' as const, low: 1e-4, high: 1e-2, log: true } },
    trials: 4,
    valRatio: 0.2,
    objectives: parseObjectives('val_loss,peak_memory'),
  };
  const context = { family: 'llama' as const, trainExamples: 40 };

  it('keeps the objectives, gives the study its directions, and reads back the same', () => {
    const plan = StudyPlan.create(input, context);
    expect(plan.spec.objective).toBe('val_loss');
    expect(plan.isMultiObjective).toBe(true);
    expect(plan.studyOptions().directions).toEqual(['minimize', 'minimize']);
    expect(StudyPlan.create(plan.toJSON(), context).toJSON()).toEqual(plan.toJSON());
    const single = StudyPlan.create({ ...input, objectives: undefined }, context);
    expect(single.studyOptions().directions).toBeUndefined();
    expect(single.objectives).toEqual([{ metric: 'val_loss', direction: 'minimize' }]);
  });

  it.each([
    [{ pruner: 'asha' as const }, 'pruner', /neither prunes nor runs PBT/],
    [{ pruner: 'pbt' as const }, 'pruner', /neither prunes nor runs PBT/],
    [
      { objective: 'perplexity' as const },
      'objectives',
      /the first objective \(val_loss\) is the study's objective, not perplexity/,
    ],
  ])('refuses %o, naming the field', (extra, field, message) => {
    let error: unknown;
    try {
      StudyPlan.create({ ...input, ...extra }, context);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PlanError);
    expect((error as PlanError).field).toBe(field);
    expect((error as PlanError).reason).toMatch(message);
  });
});

let dir: string;
let base: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-tune-objectives-'));
  const modelDir = await writeTinyModel(buildTinyModel({ arch: 'llama' }), join(dir, 'model'));
  const data = join(dir, 'data.txt');
  await writeFile(data, 'the quick brown fox jumps over the lazy dog. '.repeat(8));
  base = `tune --model ${modelDir} --data ${data} --seq 8 --steps 2 --trials 1`;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tunelab tune refuses bad --objectives and --pick before writing anything', () => {
  it.each([
    ['--objectives val_loss,nope', /--objectives: 'nope' is not one of/],
    ['--objectives step_time,val_loss', /--objectives: the first objective is measured at every evaluation/],
    ['--objectives val_loss,step_time --objective perplexity', /give --objective \(one\) or --objectives/],
    [
      '--objectives val_loss,step_time --pruner median',
      /--pruner: a multi-objective study neither prunes nor runs PBT/,
    ],
    [
      '--objectives val_loss,step_time --pbt',
      /--pruner: a multi-objective study neither prunes nor runs PBT/,
    ],
    [
      '--objectives accuracy,step_time',
      /--objectives: objective accuracy: only available for classification data/,
    ],
    ['--objectives val_loss,step_time --pick 0', /--pick: choose from the Pareto front of a study that ran/],
    ['--pick 0', /--pick: choose from the Pareto front of a study that ran/],
    [
      '--objectives val_loss,step_time --warm-start /nowhere',
      /--warm-start: a multi-objective study .* cannot be warm-started/,
    ],
  ])('%s', async (flags, message) => {
    const out = join(dir, 'out');
    const { code, stderr } = await runCli(`${base} ${flags} --out ${out}`);
    expect(stderr).toMatch(message);
    expect(code).toBe(2);
    expect(existsSync(out)).toBe(false);
  });
});
