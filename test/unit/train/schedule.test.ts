import { describe, expect, it } from 'vitest';
import { layerDecay, makeSchedule, warmupSteps } from '../../../src/engine/train/schedule.ts';

// Values computed by hand from transformers/optimization.py's lr_lambda functions.
describe('LR schedules (HF lr_lambda)', () => {
  const at = (kind: 'constant' | 'linear' | 'cosine', steps: number[], extra = {}) => {
    const f = makeSchedule({ kind, totalSteps: 100, warmupSteps: 10, ...extra });
    return steps.map(f);
  };

  it('linear: get_linear_schedule_with_warmup, warmup 10 of 100', () => {
    const v = at('linear', [0, 5, 10, 55, 100, 120]);
    expect(v.slice(0, 5)).toEqual([0, 0.5, 1, 0.5, 0]);
    expect(v[5]).toBe(0);
    expect(at('linear', [99])[0]).toBeCloseTo(1 / 90, 15);
  });

  it('cosine: get_cosine_schedule_with_warmup (num_cycles 0.5), warmup 10 of 100', () => {
    const [s0, s5, s10, s40, s55, s100] = at('cosine', [0, 5, 10, 40, 55, 100]);
    expect([s0, s5, s10]).toEqual([0, 0.5, 1]);
    expect(s40).toBeCloseTo(0.75, 15); // progress 1/3: (1 + cos(π/3)) / 2
    expect(s55).toBeCloseTo(0.5, 15); // progress 1/2
    expect(s100).toBe(0);
    const [m55, m100] = at('cosine', [55, 100], { minLrRatio: 0.1 });
    expect(m55).toBeCloseTo(0.55, 15);
    expect(m100).toBeCloseTo(0.1, 15);
  });

  it('constant: get_constant_schedule_with_warmup, and plain constant without warmup', () => {
    expect(at('constant', [0, 5, 10, 55, 100])).toEqual([0, 0.5, 1, 1, 1]);
    const plain = makeSchedule({ kind: 'constant', totalSteps: 10 });
    expect([0, 9].map(plain)).toEqual([1, 1]);
  });

  it('warmup ratio rounds up as TrainingArguments.get_warmup_steps; steps win over ratio', () => {
    expect(warmupSteps({ totalSteps: 95, warmupRatio: 0.1 })).toBe(10);
    expect(warmupSteps({ totalSteps: 95, warmupSteps: 3, warmupRatio: 0.5 })).toBe(3);
    const f = makeSchedule({ kind: 'linear', totalSteps: 95, warmupRatio: 0.1 });
    expect(f(5)).toBe(0.5);
    expect(f(10)).toBe(1);
  });

  it('validates its arguments by name', () => {
    expect(() => makeSchedule({ kind: 'linear', totalSteps: 0 })).toThrow(/totalSteps/);
    expect(() => makeSchedule({ kind: 'linear', totalSteps: 10, warmupRatio: 2 })).toThrow(/warmupRatio/);
    expect(() => makeSchedule({ kind: 'linear', totalSteps: 10, minLrRatio: 0.1 })).toThrow(/minLrRatio/);
  });
});

describe('layer-wise LR decay', () => {
  it('gives layer l of L decay^(L−1−l)', () => {
    const f = layerDecay(4, 0.5);
    expect([0, 1, 2, 3].map(f)).toEqual([0.125, 0.25, 0.5, 1]);
    expect([0, 1].map(layerDecay(2, 1))).toEqual([1, 1]);
    expect(() => f(4)).toThrow(/layer/);
    expect(() => layerDecay(4, 0)).toThrow(/decay/);
  });
});
