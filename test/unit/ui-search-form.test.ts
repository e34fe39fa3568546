// The Search step refuses a form no trial could train with, next to the row at fault (or in the form's message
// for the budget), with the loaded model's bounds; the start button follows `searchProblems`.
import { describe, expect, it } from 'vitest';
import {
  defaultSettings,
  PRESETS,
  searchProblems,
  settingsFromPlan,
  studyPlan,
  type HyperName,
  type ParamRow,
  type SearchSettings,
} from '../../src/ui/lib/search-config.ts';

const MODEL = { family: 'llama' as const, maxPositions: 2048, hidden: 576 };

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
      expect(searchProblems(settings, MODEL)).toEqual({ byParam: {}, general: '' });
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

  it('refuses a sequence longer than the loaded model’s positions', () => {
    const settings = { ...defaultSettings(), seq: 4096 };
    expect(searchProblems(settings, null).general).toBe('');
    expect(searchProblems(settings, MODEL).general).toMatch(
      /^Sequence length: 4096 is longer than the model's 2048/,
    );
  });

  it('refuses a grid too large to enumerate, naming the sampler', () => {
    const settings = { ...defaultSettings(), rows: PRESETS['lora-full'].rows(), sampler: 'grid' as const };
    expect(searchProblems(settings, MODEL).general).toMatch(/^Sampler: grid: the grid has more than/);
  });

  it('turns its constraints into the plan’s bounds and back, and names a malformed one', () => {
    const settings = { ...defaultSettings(), constraints: ' tokens_per_second>=500 , val_loss<=3,' };
    expect(searchProblems(settings, MODEL)).toEqual({ byParam: {}, general: '' });
    const plan = studyPlan(settings, 'llama').toJSON();
    expect(plan.constraints).toEqual([
      { metric: 'tokens_per_second', op: '>=', bound: 500 },
      { metric: 'val_loss', op: '<=', bound: 3 },
    ]);
    expect(settingsFromPlan(plan).constraints).toBe('tokens_per_second>=500, val_loss<=3');
    expect(studyPlan(defaultSettings(), 'llama').toJSON().constraints).toBeUndefined();
    expect(searchProblems({ ...settings, constraints: 'speed>=1' }, MODEL).general).toMatch(
      /^Constraints: 'speed>=1': metric "speed" is not one of val_loss/,
    );
  });
});
