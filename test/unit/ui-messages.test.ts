// What the page shows for engine messages and the grid sampler: no internal function names, and the grid's
// points as the sampler spaces them.
import { describe, expect, it } from 'vitest';
import { describeError, withoutFunctionName } from '../../src/ui/lib/errors.ts';
import {
  defaultSettings,
  gridSummary,
  PRESETS,
  type SearchSettings,
} from '../../src/ui/lib/search-config.ts';

describe('page messages', () => {
  it('drops the name of the function that threw, and only that', () => {
    expect(withoutFunctionName('parseDataset: seq must be a whole number ≥ 1, got 0')).toBe(
      'seq must be a whole number ≥ 1, got 0',
    );
    expect(withoutFunctionName('loadStudy: line 3: bad event')).toBe('line 3: bad event');
    expect(withoutFunctionName('train.jsonl: line 2: expected an object')).toBe(
      'train.jsonl: line 2: expected an object',
    );
    expect(withoutFunctionName('Failed to fetch')).toBe('Failed to fetch');
    expect(describeError(new RangeError('parseDataset: seq must be a whole number ≥ 1, got 0'))).toBe(
      'seq must be a whole number ≥ 1, got 0',
    );
  });
});

describe('the grid the form shows', () => {
  const grid = (s: Partial<SearchSettings>) => gridSummary({ ...defaultSettings(), sampler: 'grid', ...s });

  it('lists a log range as 5 values spaced in log space, and choices as they are', () => {
    const g = grid({})!;
    expect(g.size).toBe(10);
    const [lr, r] = g.axes;
    expect(lr[0]).toBe('lr');
    expect((lr[1] as number[]).map((v) => +v.toPrecision(3))).toEqual([
      0.001, 0.00234, 0.00548, 0.0128, 0.03,
    ]);
    expect(r).toEqual(['r', [4, 8]]);
  });

  it('gives the size alone for a grid too large to list, and nothing for an invalid form', () => {
    const ranges: Record<string, [string, string]> = {
      weight_decay: ['0', '0.1'],
      warmup_ratio: ['0', '0.1'],
      llrd: ['0.5', '1'],
    };
    const rows = PRESETS['lora-basic']
      .rows()
      .map((row) =>
        row.name in ranges
          ? { ...row, mode: 'range' as const, low: ranges[row.name][0], high: ranges[row.name][1] }
          : row,
      );
    // lr 5 × r 4 × dropout 5, times 5 values for each of the three new ranges.
    expect(grid({ rows })).toEqual({ size: 100 * 125, axes: [] });
    const bad = defaultSettings().rows.map((row) => (row.name === 'lr' ? { ...row, low: '-1' } : row));
    expect(grid({ rows: bad })).toBeNull();
  });
});
