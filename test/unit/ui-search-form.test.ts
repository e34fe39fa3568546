// The Search step refuses a form no trial could train with, each problem next to the row or setting at fault,
// with the loaded model's bounds; the start button follows `searchProblems` (`hasProblems`).
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../src/engine/model/config.ts';
import {
  defaultSettings,
  hasProblems,
  PRESETS,
  searchProblems,
  settingsFromPlan,
  studyPlan,
  type HyperName,
  type ParamRow,
  type SearchSettings,
} from '../../src/ui/lib/search-config.ts';

const MODEL = { family: 'llama' as const, maxPositions: 2048, hidden: 576 };

/** The demo model on a GPU with WebGPU's default buffer limits (128 MiB bindings). */
const DEMO = parseModelConfig(readFileSync('public/demo-model/config.json', 'utf8'));
const DEMO_ON_GPU = {
  family: DEMO.family,
  maxPositions: DEMO.maxPositions,
  hidden: DEMO.hidden,
  memory: {
    spec: DEMO,
    limits: { maxBufferSize: 2 ** 28, maxStorageBufferBindingSize: 2 ** 27 },
    precision: 'f32' as const,
  },
};

/** The quick preset's form with one row changed. */
function withRow(
  name: HyperName,
  change: Partial<ParamRow>,
  base: SearchSettings = defaultSettings(),
): SearchSettings {
  return { ...base, rows: base.rows.map((row) => (row.name === name ? { ...row, ...change } : row)) };
}

describe('Search step form', () => {
  it('has no problem with its presets', () => {
    for (const name of Object.keys(PRESETS) as (keyof typeof PRESETS)[]) {
      const settings = { ...defaultSettings(), rows: PRESETS[name].rows() };
      expect(searchProblems(settings, MODEL)).toEqual({ byParam: {}, bySetting: {}, general: '' });
    }
  });

  it.each([
    [
      'r choices 0, 8',
      'r',
      { mode: 'choices', choices: '0, 8' },
      /^choices: expected a whole number ≥ 1, got 0$/,
    ],
    [
      'dropout up to 1.5',
      'lora_dropout',
      { mode: 'range', low: '0', high: '1.5' },
      /range 0 .. 1.5: .*got 1.5/,
    ],
    ['schedule cosin', 'schedule', { mode: 'choices', choices: 'linear, cosin' }, /got 'cosin'/],
    [
      'a negative learning rate',
      'lr',
      { mode: 'range', low: '-1e-3', high: '1e-2', log: false },
      /> 0, got -0.001/,
    ],
    [
      'r beyond the hidden size',
      'r',
      { mode: 'range', low: '4', high: '1024' },
      /larger than the model's hidden size 576/,
    ],
    [
      'alpha derived to ∞',
      'lora_alpha',
      { mode: 'derived', scale: '1e308' },
      /Infinity: expected a finite number/,
    ],
    ['a fixed dropout of 1', 'lora_dropout', { mode: 'fixed', fixed: '1' }, /< 1, got 1/],
    [
      'overflowing bounds',
      'weight_decay',
      { mode: 'range', low: '-1e308', high: '1e308' },
      /too large to sample/,
    ],
  ] as const)('refuses %s next to its row', (_what, name, change, message) => {
    const problems = searchProblems(withRow(name, change), MODEL);
    expect(problems.byParam[name]).toMatch(message);
  });

  it('refuses a sequence longer than the loaded model’s positions, on the sequence length', () => {
    const settings = { ...defaultSettings(), seq: 4096 };
    expect(hasProblems(searchProblems(settings, null))).toBe(false);
    const problems = searchProblems(settings, MODEL);
    expect(problems.bySetting).toEqual({ seq: "4096 is longer than the model's 2048 positions" });
    expect(problems.general).toBe('');
  });

  it('refuses a grid too large to enumerate, on the sampler', () => {
    const settings = { ...defaultSettings(), rows: PRESETS['lora-full'].rows(), sampler: 'grid' as const };
    expect(searchProblems(settings, MODEL).bySetting.sampler).toMatch(/^grid: the grid has more than/);
  });

  it('shows every problem at once, each on its own row or setting', () => {
    let settings = withRow('lora_dropout', { mode: 'fixed', fixed: '1.5' });
    settings = withRow('lr', { mode: 'range', low: '-1', high: '0.1', log: true }, settings);
    settings = withRow('r', { mode: 'choices', choices: '4, -2' }, settings);
    settings = withRow('warmup_ratio', { mode: 'fixed', fixed: '2' }, settings);
    settings = withRow('batch', { mode: 'fixed', fixed: 'four' }, settings);
    settings = { ...settings, seq: 100_000, trials: 0, stepsPerTrial: 2.5, workers: 9, evalEvery: -1 };
    const problems = searchProblems(settings, { family: 'llama', maxPositions: 256, hidden: 128 });
    expect(problems.byParam).toEqual({
      lr: 'log scale needs low > 0 (got low=-1)',
      r: 'choices: expected a whole number ≥ 1, got -2',
      lora_dropout: 'expected a number ≥ 0 and < 1, got 1.5',
      warmup_ratio: 'expected a number ≥ 0 and ≤ 1, got 2',
      batch: "needs a number (got 'four')",
    });
    expect(problems.bySetting).toEqual({
      seq: "100000 is longer than the model's 256 positions",
      trials: 'expected a whole number ≥ 1',
      stepsPerTrial: expect.stringMatching(/whole number/),
      evalEvery: expect.stringMatching(/./),
      workers: 'a whole number from 1 to 8',
    });
    expect(problems.general).toBe('');
  });

  it('puts an r error on r, not on alpha “× r”', () => {
    const problems = searchProblems(withRow('r', { mode: 'choices', choices: '4, -2' }), MODEL);
    expect(Object.keys(problems.byParam)).toEqual(['r']);
  });

  it('takes alpha “× r” over a fixed r as a fixed alpha', () => {
    const settings = withRow('r', { mode: 'fixed', fixed: '8' });
    expect(searchProblems(settings, MODEL)).toEqual({ byParam: {}, bySetting: {}, general: '' });
    const plan = studyPlan(settings, 'llama', MODEL).toJSON();
    expect(plan.fixed.r).toBe(8);
    expect(plan.fixed.alpha).toBe(16);
    expect(plan.space).not.toHaveProperty('lora_alpha');
  });

  it('asks PBT to fix r on the pruner and on r, naming alpha that follows it', () => {
    const problems = searchProblems({ ...defaultSettings(), pruner: 'pbt' }, MODEL);
    expect(problems.bySetting.pruner).toMatch(
      /not LoRA rank r: set it to fixed \(LoRA alpha “× r” then follows/,
    );
    expect(problems.byParam.r).toMatch(/set it to fixed \(alpha “× r” follows it\)/);
    expect(problems.byParam).not.toHaveProperty('lora_alpha');
    // Fixing r as asked leaves nothing to fix.
    const fixed = withRow('r', { mode: 'fixed', fixed: '8' }, { ...defaultSettings(), pruner: 'pbt' });
    expect(hasProblems(searchProblems(fixed, MODEL))).toBe(false);
  });

  it('refuses a batch whose buffers exceed the GPU’s limits, on the batch row', () => {
    expect(hasProblems(searchProblems(defaultSettings(), DEMO_ON_GPU))).toBe(false);
    const huge = withRow('batch', { mode: 'choices', choices: '4, 100000' });
    const problems = searchProblems(huge, DEMO_ON_GPU);
    expect(problems.byParam.batch).toMatch(
      /^at batch 100000 \(sequence 24\) the activation '.*' \(.*\) needs [\d.]+ [GM]iB in one buffer; the device's maxStorageBufferBindingSize is 128.0 MiB$/,
    );
    expect(problems.bySetting).toEqual({});
    // Without the GPU's limits (no model loaded) the rule is not applied.
    expect(hasProblems(searchProblems(huge, MODEL))).toBe(false);
  });

  it('turns its constraints into the plan’s bounds and back, and names a malformed one', () => {
    const settings = { ...defaultSettings(), constraints: ' tokens_per_second>=500 , val_loss<=3,' };
    expect(searchProblems(settings, MODEL)).toEqual({ byParam: {}, bySetting: {}, general: '' });
    const plan = studyPlan(settings, 'llama').toJSON();
    expect(plan.constraints).toEqual([
      { metric: 'tokens_per_second', op: '>=', bound: 500 },
      { metric: 'val_loss', op: '<=', bound: 3 },
    ]);
    expect(settingsFromPlan(plan).constraints).toBe('tokens_per_second>=500, val_loss<=3');
    expect(studyPlan(defaultSettings(), 'llama').toJSON().constraints).toBeUndefined();
    // Shown under the Constraints field, like every setting with one.
    expect(searchProblems({ ...settings, constraints: 'speed>=1' }, MODEL).bySetting.constraints).toMatch(
      /^'speed>=1': metric "speed" is not one of val_loss/,
    );
    expect(searchProblems({ ...settings, maxEvalExamples: -1 }, MODEL).bySetting.maxEvalExamples).toMatch(
      /whole number/,
    );
  });
});
