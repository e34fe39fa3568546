// One study recipe (StudyPlan) for the page and the CLI: the same description written as `tunelab tune` flags
// and as the Search step's form gives the same plan (space, fixed values, evaluation interval, pruner), a plan
// survives the study log in both directions, and the exports built from either plan are the same files.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFlags, TRAIN_FLAGS, type FlagValues } from '../../src/cli/args.ts';
import { PLAN_FLAGS, planFile, planOfLog, tunePlan } from '../../src/cli/tune-plan.ts';
import { exportBundle } from '../../src/engine/export/bundle.ts';
import { planExportContext } from '../../src/engine/export/context.ts';
import { createStudy, loadStudy, type Params } from '../../src/engine/search/index.ts';
import { checkConstraints, constraintValues, parseConstraint } from '../../src/engine/tune/constraints.ts';
import type { StepMetrics } from '../../src/engine/train/trainer.ts';
import {
  checkSpace,
  DEFAULT_MAX_EVAL_EXAMPLES,
  PlanError,
  StudyPlan,
  type StudyPlanSpec,
} from '../../src/engine/tune/plan.ts';
import { preset } from '../../src/engine/tune/presets.ts';
import {
  defaultSettings,
  PRESETS,
  settingsFromPlan,
  studyPlan,
  type HyperName,
  type ParamRow,
  type SearchSettings,
} from '../../src/ui/lib/search-config.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-plan-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** One study, described once; written below as flags and as the form. */
const DESCRIPTION = {
  searched: {
    lr: { type: 'float', low: 1e-4, high: 1e-2, log: true },
    r: { type: 'categorical', choices: [4, 8, 16] },
    lora_alpha: { type: 'derived', from: 'r', scale: 2 },
  },
  fixed: {
    lora_dropout: '0.05',
    weight_decay: '0.01',
    warmup_ratio: '0.1',
    schedule: 'cosine',
    batch: '2',
    accum: '1',
    llrd: '0.9',
    targets: 'all-linear',
  } as Partial<Record<HyperName, string>>,
  steps: 10,
  seq: 32,
  seed: 7,
  trials: 6,
  minutes: 2,
  valRatio: 0.2,
} as const;

const FLAG_OF: Partial<Record<HyperName, string>> = {
  lora_dropout: 'dropout',
  weight_decay: 'weight-decay',
  warmup_ratio: 'warmup-ratio',
};

async function cliPlan(
  pruner: 'median' | 'asha' | 'pbt',
  sampler: string,
  objective: string,
  trainExamples = 40,
): Promise<StudyPlan> {
  const d = DESCRIPTION;
  const space = join(dir, `space-${pruner}.json`);
  await writeFile(space, JSON.stringify(d.searched));
  const argv = ['--space', space, '--sampler', sampler, '--objective', objective];
  argv.push(...(pruner === 'pbt' ? ['--pbt'] : ['--pruner', pruner]));
  for (const [name, value] of Object.entries(d.fixed))
    argv.push(`--${FLAG_OF[name as HyperName] ?? name}`, value);
  argv.push('--steps', `${d.steps}`, '--seq', `${d.seq}`, '--seed', `${d.seed}`, '--precision', 'f32');
  argv.push('--trials', `${d.trials}`, '--timeout', `${d.minutes * 60}`, '--recompute');
  const flags: FlagValues = parseFlags(argv, { ...TRAIN_FLAGS, ...PLAN_FLAGS });
  return tunePlan(flags, 'llama', { trainExamples, valRatio: d.valRatio }, null);
}

function formSettings(pruner: SearchSettings['pruner'], sampler: string, objective: string): SearchSettings {
  const d = DESCRIPTION;
  const s = defaultSettings();
  s.rows = s.rows.map((row): ParamRow => {
    if (row.name === 'lr') return { ...row, mode: 'range', low: '1e-4', high: '1e-2', log: true };
    if (row.name === 'r') return { ...row, mode: 'choices', choices: '4, 8, 16' };
    if (row.name === 'lora_alpha') return { ...row, mode: 'derived', scale: '2' };
    return { ...row, mode: 'fixed', fixed: d.fixed[row.name] ?? row.fixed };
  });
  return {
    ...s,
    sampler: sampler as SearchSettings['sampler'],
    pruner,
    objective: objective as SearchSettings['objective'],
    trials: d.trials,
    stepsPerTrial: d.steps,
    evalEvery: 0,
    seq: d.seq,
    seed: d.seed,
    precision: 'f32',
    recompute: true,
    timeLimit: d.minutes,
    valRatio: d.valRatio,
  };
}

describe('the CLI and the page make the same plan from one description', () => {
  it.each([
    ['asha', 'random', 'perplexity', { type: 'asha', minResource: 3 }],
    ['median', 'tpe', 'val_loss', { type: 'median', nStartupTrials: 1, nWarmupSteps: 3 }],
  ] as const)('%s, %s sampler, %s', async (pruner, sampler, objective, prunerSpec) => {
    const cli = await cliPlan(pruner, sampler, objective);
    const page = studyPlan(formSettings(pruner, sampler, objective), 'llama');
    expect(page.toJSON()).toEqual(cli.toJSON());
    // The samplers draw in the space's order: it is part of the plan.
    expect(Object.keys(page.spec.space)).toEqual(Object.keys(cli.spec.space));
    // About four evaluations in 10 steps: every ceil(10 / 4) = 3 (the pruning rung and PBT's interval).
    expect([cli.evalEvery, page.evalEvery]).toEqual([3, 3]);
    expect(cli.prunerSpec()).toEqual(prunerSpec);
    expect(page.prunerSpec()).toEqual(cli.prunerSpec());
    expect(page.pbt()).toEqual(cli.pbt());
    expect(cli.pbt()).toBeUndefined();
    // A trial trains the same either way.
    const params: Params = { lr: 3e-3, r: 8, lora_alpha: 16 };
    expect(page.trainerOptions(params)).toEqual(cli.trainerOptions(params));
    expect(cli.trainerOptions(params)).toMatchObject({
      lr: 3e-3,
      lora: { r: 8, alpha: 16, dropout: 0.05, targets: 'all-linear' },
      schedule: 'cosine',
      warmupRatio: 0.1,
      weightDecay: 0.01,
      llrd: 0.9,
      batch: 2,
      steps: 10,
      seq: 32,
      seed: 7,
      evalEvery: 3,
      recompute: true,
    });
    expect(cli.spec).toMatchObject({ timeoutSeconds: 120, valRatio: 0.2, trials: 6, recompute: true });
  });

  it('population-based training refuses the same searched rank on both sides', async () => {
    const why = 'r change the adapter or the batches and cannot move mid-trial; fix them';
    await expect(cliPlan('pbt', 'sobol', 'val_loss')).rejects.toThrow(`--pbt: ${why}`);
    expect(() => studyPlan(formSettings('pbt', 'sobol', 'val_loss'), 'llama')).toThrow(`pbt: ${why}`);
  });

  it('a plan goes through the study log both ways and the exports are the same files', async () => {
    const cli = await cliPlan('asha', 'random', 'val_loss');
    const page = studyPlan(formSettings('asha', 'random', 'val_loss'), 'llama');
    // Page → log → CLI (--plan study.jsonl or --resume read the log's first line).
    const pageStudy = createStudy(page.studyOptions());
    const fromLog = planOfLog(pageStudy.log())!;
    const flags = parseFlags([], { ...TRAIN_FLAGS, ...PLAN_FLAGS });
    const rerun = await tunePlan(flags, 'llama', { trainExamples: 40, valRatio: null }, fromLog);
    expect(rerun.toJSON()).toEqual(cli.toJSON());
    // CLI → log → page import (the form shows the plan, and the form's plan is the plan).
    const cliStudy = createStudy(cli.studyOptions());
    const imported = settingsFromPlan(cliStudy.plan as unknown as StudyPlanSpec);
    expect(studyPlan(imported, 'llama').toJSON()).toEqual(cli.toJSON());
    // The same trials on either side, and the same export files.
    for (const study of [pageStudy, cliStudy]) {
      for (let i = 0; i < 3; i++) {
        const t = study.ask();
        study.tell(t, 1 + Math.abs(Math.log10(t.params.lr as number) + 2));
      }
    }
    expect(pageStudy.trials).toEqual(cliStudy.trials);
    const files = (plan: StudyPlan, study: typeof pageStudy) =>
      exportBundle(
        planExportContext(plan, {
          study,
          model: { id: 'org/model', revision: null, family: 'llama' },
          dataset: { fingerprint: 'sha256:0', name: 'data.jsonl', format: 'prompt-completion' },
          tunelabVersion: '0.0.0',
          date: '2025-01-01T00:00:00.000Z',
        }),
      );
    expect(files(page, pageStudy)).toEqual(files(cli, cliStudy));
    const best = JSON.parse(files(cli, cliStudy)[0].contents as string) as { study: { plan: unknown } };
    expect(best.study.plan).toEqual(cli.toJSON());
  });
});

describe('--plan FILE', () => {
  it('reads a plan JSON or a study log, and refuses a log without a plan and recipe flags beside it', async () => {
    const plan = studyPlan(formSettings('median', 'tpe', 'val_loss'), 'llama');
    const json = join(dir, 'plan.json');
    await writeFile(json, JSON.stringify(plan.toJSON(), null, 2));
    const log = join(dir, 'study.jsonl');
    await writeFile(log, createStudy(plan.studyOptions()).log());
    const old = join(dir, 'old.jsonl');
    await writeFile(old, createStudy({ space: plan.spec.space }).log());
    const flags = (line: string) => parseFlags(line.split(' '), { ...TRAIN_FLAGS, ...PLAN_FLAGS });
    expect(await planFile(flags(`--plan ${json}`))).toEqual(plan.toJSON());
    expect(await planFile(flags(`--plan ${log}`))).toEqual(plan.toJSON());
    await expect(planFile(flags(`--plan ${old}`))).rejects.toThrow(/holds no plan/);
    await expect(planFile(flags(`--plan ${log} --sampler gp --r 4`))).rejects.toThrow(
      '--plan gives the whole recipe: drop --r, --sampler',
    );
  });
});

describe('StudyPlan', () => {
  const input = {
    space: { lr: { type: 'float', low: 1e-4, high: 1e-2, log: true } },
    trials: 4,
    valRatio: 0.1,
  } as const;
  const plan = (extra: object, trainExamples?: number) =>
    StudyPlan.create({ ...input, ...extra }, { family: 'llama', trainExamples });
  const error = (fn: () => unknown): PlanError => {
    try {
      fn();
    } catch (e) {
      expect(e).toBeInstanceOf(PlanError);
      return e as PlanError;
    }
    throw new Error('expected a PlanError');
  };

  it('resolves every value that is not searched, and the evaluation interval from the steps', () => {
    const p = plan({ fixed: { steps: 7, lora_dropout: '0.1' } });
    expect(p.spec.fixed).toMatchObject({
      steps: 7,
      dropout: 0.1,
      r: 8,
      alpha: 16,
      targets: ['q_proj', 'v_proj'],
    });
    expect(p.spec.fixed.lr).toBeUndefined();
    expect(p.evalEvery).toBe(2); // ceil(7 / 4): evaluations at 2, 4, 6 and the end
    expect(plan({ fixed: { steps: 1 } }).evalEvery).toBe(1);
    expect(plan({ fixed: { steps: 20, evalEvery: 7 } }).evalEvery).toBe(7);
    // Epochs: the steps come from the training set (10 examples, batch 4 → 3 steps per epoch).
    expect(plan({ fixed: { epochs: 2, steps: null } }, 10).evalEvery).toBe(2);
    expect(error(() => plan({ fixed: { epochs: 2, steps: null } })).field).toBe('epochs');
    // A stored plan reads back to itself.
    expect(StudyPlan.create(p.toJSON(), { family: 'llama' }).toJSON()).toEqual(p.toJSON());
  });

  it('leaves alpha to follow a searched r, and spells targets for the family', () => {
    const p = StudyPlan.create(
      { space: { r: { type: 'categorical', choices: [4, 16] } }, trials: 2, valRatio: null },
      { family: 'gpt2' },
    );
    expect(p.spec.fixed.alpha).toBeUndefined();
    expect(p.trialConfig({ r: 16 }).alpha).toBe(32);
    expect(p.spec.fixed.targets).toEqual(['c_attn']);
  });

  it('refuses what cannot run, naming it', () => {
    expect(error(() => plan({ fixed: { lr: 1e-3 } })).field).toBe('lr');
    expect(error(() => plan({ fixed: { batch: 'lots' } })).reason).toMatch(/whole number.*'lots'/);
    expect(error(() => plan({ fixed: { nope: 1 } })).field).toBe('nope');
    expect(error(() => plan({ trials: 0 })).field).toBe('trials');
    expect(error(() => plan({ objective: 'bleu' })).field).toBe('objective');
    expect(error(() => plan({ space: { lr: { type: 'float', low: 1, high: 0 } } })).field).toBe('space');
    const pbt = error(() => plan({ pruner: 'pbt', space: { r: { type: 'categorical', choices: [4, 8] } } }));
    expect([pbt.field, pbt.reason]).toEqual([
      'pbt',
      'r change the adapter or the batches and cannot move mid-trial; fix them',
    ]);
  });
});

describe('the validation examples an evaluation uses (maxEvalExamples)', () => {
  const input = {
    space: { lr: { type: 'float', low: 1e-4, high: 1e-2, log: true } },
    trials: 2,
    valRatio: 0.1,
  } as const;
  const examples = Array.from({ length: 1000 }, (_, i) => i);

  it('caps a new plan at DEFAULT_MAX_EVAL_EXAMPLES; a number or null (all) can be given', () => {
    const p = StudyPlan.create(input, { family: 'llama' });
    expect(p.spec.maxEvalExamples).toBe(DEFAULT_MAX_EVAL_EXAMPLES);
    expect(p.evalExamples(examples)).toEqual(examples.slice(0, DEFAULT_MAX_EVAL_EXAMPLES));
    expect(
      StudyPlan.create({ ...input, maxEvalExamples: 10 }, { family: 'llama' }).evalExamples(examples),
    ).toEqual(examples.slice(0, 10));
    expect(
      StudyPlan.create({ ...input, maxEvalExamples: null }, { family: 'llama' }).evalExamples(examples),
    ).toBe(examples);
    // Fewer examples than the cap: all of them.
    expect(p.evalExamples(examples.slice(0, 7))).toEqual(examples.slice(0, 7));
  });

  it('keeps a plan stored before the cap existed on the whole set (its trials were evaluated on it)', () => {
    const old = StudyPlan.create(input, { family: 'llama' }).toJSON();
    delete old.maxEvalExamples;
    const reread = StudyPlan.create(old, { family: 'llama' });
    expect(reread.spec.maxEvalExamples).toBeNull();
    expect(reread.evalExamples(examples)).toBe(examples);
  });

  it('refuses 0, a negative or a fractional cap, naming the field; the CLI names its flag', async () => {
    for (const bad of [0, -5, 2.5]) {
      expect(() => StudyPlan.create({ ...input, maxEvalExamples: bad }, { family: 'llama' })).toThrow(
        'study plan: maxEvalExamples: expected a whole number of validation examples ≥ 1, or null for all of them',
      );
    }
    const flags = (line: string) => parseFlags(line.split(' '), { ...TRAIN_FLAGS, ...PLAN_FLAGS });
    const cli = async (line: string) =>
      tunePlan(flags(line), 'llama', { trainExamples: 40, valRatio: 0.1 }, null);
    expect((await cli('--max-eval-examples 0')).spec.maxEvalExamples).toBeNull();
    expect((await cli('--max-eval-examples 32')).spec.maxEvalExamples).toBe(32);
    await expect(cli('--max-eval-examples=-3')).rejects.toThrow(/^--max-eval-examples: .*-3/);
    await expect(cli('--max-eval-examples 2.5')).rejects.toThrow(/^--max-eval-examples: .*2\.5/);
  });

  it('goes from the form to the plan and back (0 in the form: all)', () => {
    const settings = { ...defaultSettings(), maxEvalExamples: 64 };
    const plan = studyPlan(settings, 'llama');
    expect(plan.spec.maxEvalExamples).toBe(64);
    expect(settingsFromPlan(plan.toJSON()).maxEvalExamples).toBe(64);
    const all = studyPlan({ ...settings, maxEvalExamples: 0 }, 'llama');
    expect(all.spec.maxEvalExamples).toBeNull();
    expect(settingsFromPlan(all.toJSON()).maxEvalExamples).toBe(0);
  });
});

describe('constraints in a plan', () => {
  const input = {
    space: { lr: { type: 'float', low: 1e-4, high: 1e-2, log: true } },
    trials: 4,
    valRatio: 0.1,
  } as const;
  const make = (constraints: unknown) =>
    StudyPlan.create({ ...input, constraints } as never, { family: 'llama' });

  it('keeps parsed bounds in the plan and through the study log, and leaves plans without any as they were', () => {
    const constraints = [parseConstraint('accuracy>=0.8'), parseConstraint(' val_loss <= 2.5 ')];
    expect(constraints).toEqual([
      { metric: 'accuracy', op: '>=', bound: 0.8 },
      { metric: 'val_loss', op: '<=', bound: 2.5 },
    ]);
    const p = make(constraints);
    expect(p.spec.constraints).toEqual(constraints);
    const logged = loadStudy(createStudy(p.studyOptions()).log()).study.plan;
    expect(StudyPlan.create(logged as never, { family: 'llama' }).toJSON()).toEqual(p.toJSON());
    expect('constraints' in make([]).toJSON()).toBe(false);
    expect('constraints' in make(undefined).toJSON()).toBe(false);
  });

  it("turns a trial's metrics into constraint values, ≤ 0 feasible", () => {
    const c = [
      parseConstraint('accuracy>=0.8'),
      parseConstraint('tokens_per_second>=100'),
      parseConstraint('peak_memory<=1.5MiB'),
    ];
    expect(c[2].bound).toBe(1.5 * 2 ** 20);
    expect(parseConstraint('peak_memory<=2GiB').bound).toBe(2 ** 31);
    expect(parseConstraint('peak_memory<=4096').bound).toBe(4096);
    const evaluation = { step: 4, valLoss: 1, perplexity: Math.E, tokens: 8, accuracy: 0.9 };
    const lastStep = { tokensPerSecond: 60 } as StepMetrics;
    const values = constraintValues(c, { evaluation, lastStep, gpuBytes: 2 ** 20 });
    expect(values[0]).toBeCloseTo(-0.1, 12);
    expect(values[1]).toBe(40);
    expect(values[2]).toBe(-(2 ** 19));
    // A metric the trial did not measure breaks its bound.
    const unmeasured = constraintValues(c, {
      evaluation: { ...evaluation, accuracy: undefined },
      lastStep: null,
    });
    expect(unmeasured.every((v) => v > 0)).toBe(true);
  });

  it('refuses malformed bounds, naming what was expected', () => {
    expect(() => parseConstraint('accuracy>0.8')).toThrow(/expected METRIC<=BOUND or METRIC>=BOUND/);
    expect(() => parseConstraint('bleu>=3')).toThrow(/metric "bleu" is not one of val_loss, perplexity/);
    expect(() => parseConstraint('val_loss<=abc')).toThrow(
      /'val_loss<=abc': the bound 'abc' is not a number/,
    );
    expect(() => parseConstraint('peak_memory<=2GB')).toThrow(
      /the bound '2GB' is not a number \(a byte size may end in KiB, MiB or GiB\)/,
    );
    const e = (() => {
      try {
        make([{ metric: 'val_loss', op: '<', bound: 1 }]);
      } catch (error) {
        return error as PlanError;
      }
    })();
    expect(e).toBeInstanceOf(PlanError);
    expect([e?.field, e?.reason]).toEqual(['constraints', "op must be '<=' or '>=' (got \"<\")"]);
    expect(() => checkConstraints([parseConstraint('macro_f1>=0.5')], {})).toThrow(
      /macro-F1 is only measured on classification data/,
    );
  });
});

describe('presets', () => {
  it.each(['lora-basic', 'lora-full'] as const)(
    '%s in the Search step is the same preset in the CLI (what it does not search: engine defaults)',
    async (name) => {
      const s = { ...defaultSettings(), rows: PRESETS[name].rows(), stepsPerTrial: 8, seq: 16, seed: 3 };
      const flags = parseFlags(
        [
          '--preset',
          name,
          '--steps',
          '8',
          '--seq',
          '16',
          '--seed',
          '3',
          '--pruner',
          'median',
          '--trials',
          '3',
        ],
        { ...TRAIN_FLAGS, ...PLAN_FLAGS },
      );
      const cli = await tunePlan(flags, 'llama', { trainExamples: 20, valRatio: 0.1 }, null);
      const page = studyPlan(s, 'llama');
      expect(page.toJSON()).toEqual(cli.toJSON());
      expect(Object.keys(page.spec.space)).toEqual(Object.keys(cli.spec.space));
    },
  );
});

describe('a space is checked against the trial-config rules when the plan is made', () => {
  /** SmolLM2-135M's bounds. */
  const MODEL = { maxPositions: 2048, hidden: 576 };
  const plan = (space: Record<string, unknown>, fixed: Record<string, unknown> = {}, sampler = 'tpe') =>
    StudyPlan.create(
      { space: space as StudyPlanSpec['space'], fixed, trials: 3, valRatio: 0.1, sampler: sampler as 'tpe' },
      { family: 'llama', model: MODEL },
    );
  const lr = { type: 'float', low: 1e-4, high: 1e-2, log: true };

  it.each([
    [
      'r choices 0, 8',
      { r: { type: 'categorical', choices: [0, 8] } },
      'r',
      /choices: expected a whole number ≥ 1, got 0/,
    ],
    [
      'lora_dropout up to 1.5',
      { lora_dropout: { type: 'float', low: 0, high: 1.5 } },
      'lora_dropout',
      /range 0 .. 1.5: .*< 1, got 1.5/,
    ],
    ['schedule cosin', { schedule: { type: 'categorical', choices: ['cosin'] } }, 'schedule', /got 'cosin'/],
    ['a negative learning rate', { lr: { type: 'float', low: -1e-3, high: 1e-2 } }, 'lr', /> 0, got -0.001/],
    [
      'seq beyond the positions',
      { seq_len: { type: 'int', low: 128, high: 4096 } },
      'seq_len',
      /4096 is longer than the model's 2048 positions/,
    ],
    [
      'r beyond the hidden size',
      { r: { type: 'categorical', choices: [8, 1024] } },
      'r',
      /1024 is larger than the model's hidden size 576/,
    ],
    [
      'lora_alpha derived to ∞',
      {
        r: { type: 'categorical', choices: [4, 8] },
        lora_alpha: { type: 'derived', from: 'r', scale: 1e308 },
      },
      'lora_alpha',
      /is Infinity: expected a finite number/,
    ],
    [
      'lora_alpha derived to 0',
      { r: { type: 'int', low: 1, high: 8 }, lora_alpha: { type: 'derived', from: 'r', scale: 0 } },
      'lora_alpha',
      /> 0, got 0/,
    ],
    [
      'a float range for a whole number',
      { batch: { type: 'float', low: 1, high: 8 } },
      'batch',
      /whole numbers: use type 'int'/,
    ],
    [
      'a range for true/false',
      { nesterov: { type: 'int', low: 0, high: 1 } },
      'nesterov',
      /use type 'categorical'/,
    ],
    [
      'two names for one field',
      { lr, learning_rate: lr },
      'learning_rate',
      /sets 'lr', which 'lr' already sets/,
    ],
    [
      'a derived parameter that is no hyperparameter',
      { lr, foo: { type: 'derived', from: 'lr' } },
      'foo',
      /not a hyperparameter/,
    ],
    [
      'both warmup steps and ratio',
      { warmup_steps: { type: 'int', low: 0, high: 9 }, warmup_ratio: { type: 'float', low: 0, high: 0.1 } },
      'warmup_ratio',
      /not both/,
    ],
    ['overflowing bounds', { lr: { type: 'float', low: -1e308, high: 1e308 } }, 'lr', /too large to sample/],
  ])('refuses %s, naming the parameter', (_what, space, param, reason) => {
    let error: unknown;
    try {
      plan(space);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PlanError);
    expect(error).toMatchObject({ field: 'space', param });
    expect((error as PlanError).reason).toMatch(reason);
    expect((error as PlanError).message).toContain(`parameter '${param}'`);
  });

  it('refuses targets that match no linear layer of the family, searched or fixed', () => {
    const targets = { type: 'categorical', choices: ['attention', 'q_proj,foo_proj'] };
    expect(() => plan({ targets })).toThrow(
      /parameter 'targets': choices: 'foo_proj' matches no linear layer/,
    );
    expect(() => plan({ lr }, { targets: 'self_attn.bar' })).toThrow(/targets: 'self_attn.bar' matches no/);
    const gpt2 = StudyPlan.create(
      {
        space: { targets: { type: 'categorical', choices: ['attention', 'all-linear', 'q_proj,o_proj'] } },
        trials: 2,
        valRatio: 0.1,
      },
      { family: 'gpt2' },
    );
    expect(gpt2.spec.space.targets).toEqual({
      type: 'categorical',
      choices: ['c_attn', 'all-linear', 'c_attn,attn.c_proj'],
    });
  });

  it('refuses a fixed seq or r beyond the model, naming the field', () => {
    expect(() => plan({ lr }, { seq: 4096 })).toThrow(/seq: 4096 is longer than the model's 2048 positions/);
    expect(() => plan({ lr }, { r: 1024 })).toThrow(/r: 1024 is larger than the model's hidden size 576/);
  });

  it('refuses a grid larger than the grid sampler enumerates, before the first trial', () => {
    const big = preset('lora-full').space;
    expect(() => plan(big, {}, 'grid')).toThrow(/sampler: grid: the grid has more than .* points/);
    expect(plan(preset('lora-basic').space, {}, 'grid').spec.sampler).toBe('grid');
  });

  it('accepts what trials accept, at the edges of the rules', () => {
    const edges = {
      lr: { type: 'float', low: 1e-6, high: 1, log: true },
      r: { type: 'int', low: 1, high: 576 },
      lora_alpha: { type: 'derived', from: 'r', scale: 0.5 },
      lora_dropout: { type: 'float', low: 0, high: 0.9999 },
      seq: { type: 'categorical', choices: [2, 2048] },
    };
    expect(Object.keys(plan(edges).spec.space)).toEqual(Object.keys(edges));
  });

  it('the CLI refuses a --space file with an out-of-range value, naming the parameter', async () => {
    const file = join(dir, 'bad-space.json');
    await writeFile(file, JSON.stringify({ r: { type: 'categorical', choices: [0, 8] } }));
    const flags = parseFlags(['--space', file, '--trials', '2'], { ...TRAIN_FLAGS, ...PLAN_FLAGS });
    await expect(tunePlan(flags, 'llama', { trainExamples: 20, valRatio: 0.1 }, null)).rejects.toThrow(
      /--space: .*bad-space\.json: parameter 'r': choices: expected a whole number ≥ 1, got 0/,
    );
  });

  it('checkSpace checks a space alone, before anything is written', () => {
    expect(() =>
      checkSpace({ lora_dropout: { type: 'float', low: 0, high: 1.5 } }, { family: 'llama' }),
    ).toThrow(PlanError);
    expect(
      checkSpace({ lr: { type: 'float', low: 1e-4, high: 1e-2 } }, { family: 'llama' }).sampled,
    ).toHaveLength(1);
  });
});
