import { describe, expect, it } from 'vitest';
import { signTestP } from '../../bench/samplers.ts';

describe('bench/samplers signTestP', () => {
  // Reference values: scipy.stats.binomtest(k, n, 0.5).pvalue.
  it.each([
    [2, 4, 1.0],
    [0, 10, 0.001953125],
    [3, 10, 0.34375],
    [12, 30, 0.36159460805356514],
    [15, 30, 1.0],
    [25, 30, 0.0003249142318964005],
  ])('k=%i of n=%i gives p %f', (k, n, p) => {
    expect(signTestP(k, n)).toBeCloseTo(p, 12);
  });

  it('is symmetric in wins and losses, and 1 with no untied seeds', () => {
    expect(signTestP(7, 20)).toBeCloseTo(signTestP(13, 20), 14);
    expect(signTestP(0, 0)).toBe(1);
  });
});
