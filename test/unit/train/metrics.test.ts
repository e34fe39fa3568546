import { describe, expect, it } from 'vitest';
import {
  TokenRateMeter,
  accuracy,
  macroF1,
  meanTokenLoss,
  perplexity,
} from '../../../src/engine/train/metrics.ts';

describe('metrics', () => {
  it('accuracy and macro-F1 as sklearn', () => {
    const y = [0, 0, 1, 1, 2, 2];
    const p = [0, 1, 1, 1, 0, 2];
    expect(accuracy(p, y)).toBeCloseTo(4 / 6, 15);
    // per class F1: c0 tp1 fp1 fn1 → 0.5; c1 tp2 fp1 fn0 → 0.8; c2 tp1 fp0 fn1 → 2/3
    expect(macroF1(p, y)).toBeCloseTo((0.5 + 0.8 + 2 / 3) / 3, 15);
    // An explicit class with no support and no prediction scores 0 (zero_division=0).
    expect(macroF1(p, y, [0, 1, 2, 3])).toBeCloseTo((0.5 + 0.8 + 2 / 3) / 4, 15);
    expect(() => accuracy([1], [1, 2])).toThrow(/1 predictions for 2 targets/);
  });

  it('perplexity of the token-weighted mean loss', () => {
    const loss = meanTokenLoss([
      { lossSum: 10, tokens: 5 },
      { lossSum: 2, tokens: 5 },
    ]);
    expect(loss).toBe(1.2);
    expect(perplexity(loss)).toBeCloseTo(Math.exp(1.2), 15);
  });

  it('tokens/s over a sliding window', () => {
    const m = new TokenRateMeter(1000);
    m.start(0);
    expect(m.rate).toBe(0);
    m.add(100, 100);
    expect(m.rate).toBe(1000);
    m.add(100, 200);
    expect(m.rate).toBe(1000);
    m.add(0, 2200); // a stall: the window keeps the last two samples only
    expect(m.rate).toBe(0);
    expect(m.totalTokens).toBe(200);
    expect(() => m.add(1, 100)).toThrow(/backwards/);
  });
});
