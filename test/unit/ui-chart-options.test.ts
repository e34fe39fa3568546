// The charts' numbers: whole numbers as they are, others to 3 significant digits, in every tooltip.
import { describe, expect, it } from 'vitest';
import type { TrialRecord } from '../../src/engine/search/index.ts';
import { formatNumber, formatTooltipValue, history, lossCurves } from '../../src/ui/lib/chart-options.ts';

const P = { text: '#000', muted: '#666', accent: '#00f', grid: '#eee', pruned: '#999', best: '#f00' };

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

  it('formats every tooltip of the history and the loss curves', () => {
    const trials = [
      { number: 0, state: 'complete', value: 1.23456, params: {}, intermediate: [[10, 1.5555]] },
    ] as unknown as TrialRecord[];
    for (const option of [history(trials, 'minimize', P), lossCurves(trials, {}, 0, P)]) {
      const tooltip = (option as { tooltip: { valueFormatter: (v: unknown) => string } }).tooltip;
      expect(tooltip.valueFormatter(1.23456)).toBe('1.23');
      expect(tooltip.valueFormatter([10, 1.5555])).toBe('10, 1.56');
    }
  });
});
