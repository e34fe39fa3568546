// The charts' numbers: whole numbers as they are, others to 3 significant digits, in every tooltip; every chart
// has a legend naming what it draws.
import { describe, expect, it } from 'vitest';
import { createSpace, type TrialRecord } from '../../src/engine/search/index.ts';
import {
  curvesTooltip,
  formatNumber,
  formatTooltipValue,
  history,
  importance,
  lossCurves,
  parallel,
  slice,
  trialCurve,
} from '../../src/ui/lib/chart-options.ts';

const P = { text: '#000', muted: '#666', accent: '#00f', grid: '#eee', pruned: '#999', best: '#f00' };

const record = (t: Partial<TrialRecord> & { number: number }): TrialRecord => ({
  params: {},
  state: 'complete',
  value: undefined,
  intermediate: [],
  system: {},
  ...t,
});
const SPACE = createSpace({
  lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
  r: { type: 'int', low: 2, high: 32 },
});
const TRIALS = [
  record({ number: 0, params: { lr: 0.00123456, r: 8 }, value: 1.23456, intermediate: [[10, 1.5555]] }),
  record({ number: 1, params: { lr: 0.01, r: 4 }, state: 'pruned', intermediate: [[10, 2.5]] }),
];

interface Option {
  legend?: { data?: string[] };
  tooltip: { formatter?: (p: unknown) => string; valueFormatter?: (v: unknown) => string };
  series: { name?: string }[];
}
const opt = (o: unknown) => o as Option;

describe('chart numbers', () => {
  it('keeps whole numbers and gives others 3 significant digits', () => {
    expect(formatNumber(40)).toBe('40');
    expect(formatNumber(0.123456)).toBe('0.123');
    expect(formatNumber(2.71828)).toBe('2.72');
    expect(formatNumber(0.00731)).toBe('0.00731');
    expect(formatNumber(0.0000123456)).toBe('1.23e-5');
    expect(formatNumber(123456.7)).toBe('1.23e+5');
    expect(formatNumber(-0.5)).toBe('-0.5');
    expect(formatNumber(NaN)).toBe('NaN');
    expect(formatNumber('cosine')).toBe('cosine');
    expect(formatTooltipValue([12, 0.98765])).toBe('12, 0.988');
  });

  it('names the trial and gives 3 significant digits in the history and slice tooltips', () => {
    const h = opt(history(TRIALS, 'minimize', P));
    expect(h.tooltip.formatter!({ seriesName: 'objective', value: [0, 1.23456] })).toBe(
      'trial 0<br/>objective: 1.23',
    );
    const s = opt(slice(TRIALS, SPACE, 'lr', P));
    expect(s.tooltip.formatter!({ data: [0.00123456, 1.23456, 0] })).toBe(
      'trial 0<br/>lr: 0.00123<br/>objective: 1.23',
    );
  });

  it('lists every trial at a step of the loss curves, by trial, with its group', () => {
    const html = curvesTooltip([
      { seriesId: 'trial 0', seriesName: 'best trial', value: [10, 1.5555] },
      { seriesId: 'trial 1', seriesName: 'pruned or failed', value: [10, 2.5] },
    ]);
    expect(html).toBe('step 10<br/>trial 0 (best trial): 1.56<br/>trial 1 (pruned or failed): 2.5');
  });

  it('lists the parameters of a trial in the parallel coordinates tooltip', () => {
    const o = opt(parallel(TRIALS, SPACE, 0, P));
    expect(o.tooltip.formatter!({ data: { trial: 0, value: [] } })).toBe(
      'trial 0<br/>lr: 0.00123<br/>r: 8<br/>objective: 1.23',
    );
  });

  it('escapes names in tooltips', () => {
    expect(curvesTooltip([{ seriesId: '<b>', seriesName: 'x', value: [1, 2] }])).toBe(
      'step 1<br/>&#60;b&#62; (x): 2',
    );
  });
});

describe('legends', () => {
  it('gives every chart a legend whose entries are its series', () => {
    const options = [
      history(TRIALS, 'minimize', P),
      parallel(TRIALS, SPACE, 0, P),
      importance({ lr: 0.8, r: 0.2 }, P),
      importance({ lr: 0.8, r: 0.2 }, P, 'ped-anova'),
      slice(TRIALS, SPACE, 'r', P),
      trialCurve([[1, 2.5]], [[10, 1.5]], 'validation loss', P),
      lossCurves(TRIALS, {}, 0, P),
    ].map(opt);
    for (const o of options) {
      expect(o.legend?.data?.length).toBeGreaterThan(0);
      const names = new Set(o.series.map((s) => s.name));
      for (const entry of o.legend!.data!) expect(names).toContain(entry);
    }
  });

  it('names the importance method in the legend, the bars sorted with the largest on top', () => {
    const fanova = opt(importance({ lr: 0.2, r: 0.7, dropout: 0.1 }, P));
    const local = opt(importance({ lr: 0.2, r: 0.7, dropout: 0.1 }, P, 'ped-anova'));
    expect(fanova.legend?.data).toEqual(['share of the objective’s variance (fANOVA)']);
    expect(local.legend?.data).toEqual(['share of the top 10 %’s divergence (PED-ANOVA)']);
    // ECharts draws a category axis bottom-up: the last entry is the top bar.
    expect((local as unknown as { yAxis: { data: string[] } }).yAxis.data).toEqual(['dropout', 'lr', 'r']);
  });

  it('groups the loss curves as best, other and pruned or failed, and lists only groups present', () => {
    const o = opt(lossCurves(TRIALS, {}, 0, P));
    expect(o.legend?.data).toEqual(['best trial', 'pruned or failed']);
    expect(opt(lossCurves(TRIALS, {}, null, P)).legend?.data).toEqual(['other trials', 'pruned or failed']);
  });

  it('puts an objective that is not a loss on its own axis in the trial curve', () => {
    const loss = trialCurve([[1, 3]], [[10, 2]], 'validation loss', P) as { yAxis: unknown };
    const acc = trialCurve([[1, 3]], [[10, 0.5]], 'accuracy', P) as {
      yAxis: unknown;
      series: { yAxisIndex?: number }[];
    };
    expect(Array.isArray(loss.yAxis)).toBe(false);
    expect(Array.isArray(acc.yAxis)).toBe(true);
    expect(acc.series[1].yAxisIndex).toBe(1);
  });

  it('leaves out a trial curve with no points (an imported study has no training loss)', () => {
    const o = opt(trialCurve([], [[10, 2]], 'validation loss', P));
    expect(o.legend?.data).toEqual(['validation loss at evaluation']);
    expect(o.series).toHaveLength(1);
  });
});
