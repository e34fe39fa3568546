import { describe, expect, it } from 'vitest';
import { LossScaler } from '../../../src/engine/train/loss-scaler.ts';

describe('LossScaler', () => {
  it('starts at 2^15, halves and skips on overflow, doubles after growthInterval clean steps', () => {
    const s = new LossScaler();
    expect(s.scale).toBe(32768);
    expect(s.update(true)).toBe(true);
    expect(s.scale).toBe(16384);
    for (let i = 0; i < 1999; i++) expect(s.update(false)).toBe(false);
    expect(s.scale).toBe(16384);
    s.update(false);
    expect(s.scale).toBe(32768);
    expect(s.cleanSteps).toBe(0);
    expect(s.skippedSteps).toBe(1);
  });

  it('an overflow resets the count of clean steps', () => {
    const s = new LossScaler({ growthInterval: 3, initScale: 8 });
    s.update(false);
    s.update(false);
    s.update(true);
    expect(s.scale).toBe(4);
    s.update(false);
    s.update(false);
    expect(s.scale).toBe(4);
    s.update(false);
    expect(s.scale).toBe(8);
  });

  it('stays within [minScale, maxScale]', () => {
    const s = new LossScaler({ initScale: 2, minScale: 1, maxScale: 4, growthInterval: 1 });
    s.update(true);
    s.update(true);
    s.update(true);
    expect(s.scale).toBe(1);
    expect(s.skippedSteps).toBe(3);
    for (let i = 0; i < 5; i++) s.update(false);
    expect(s.scale).toBe(4);
  });

  it('with asynchronous flags, halves once for steps that ran at a scale already backed off from', () => {
    const s = new LossScaler({ initScale: 1024 });
    const used = [s.scale, s.scale, s.scale]; // three steps in flight at 1024
    s.update(true, used[0]);
    s.update(true, used[1]);
    expect(s.scale).toBe(512);
    s.update(false, used[2]);
    expect(s.skippedSteps).toBe(2);
    s.update(true, s.scale); // a step recorded at 512 overflows: that one halves
    expect(s.scale).toBe(256);
  });

  it('round-trips its state and validates options by name', () => {
    const s = new LossScaler({ growthInterval: 5 });
    s.update(true);
    s.update(false);
    const t = new LossScaler({ growthInterval: 5 });
    t.load(s.state());
    expect(t.state()).toEqual({ scale: 16384, cleanSteps: 1, skippedSteps: 1, totalSteps: 2 });
    expect(() => new LossScaler({ growthInterval: 0 })).toThrow(/growthInterval/);
    expect(() => new LossScaler({ backoffFactor: 1 })).toThrow(/backoffFactor/);
    expect(() => new LossScaler({ initScale: 2 ** 30 })).toThrow(/initScale/);
  });
});
