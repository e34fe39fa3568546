import { describe, expect, it } from 'vitest';
import { Rng } from '../../../src/engine/rng.ts';
import {
  containsParams,
  createSpace,
  fromUnit,
  resolveParams,
  sampleFromPrior,
  SearchSpaceError,
  toUnit,
} from '../../../src/engine/search/space.ts';
import type { NumericDef, SpaceSpec } from '../../../src/engine/search/space.ts';

const loraSpace: SpaceSpec = {
  lr: { type: 'float', low: 1e-5, high: 1e-2, log: true },
  r: { type: 'categorical', choices: [4, 8, 16] },
  lora_alpha: { type: 'derived', from: 'r', scale: 2 },
  scheduler: { type: 'categorical', choices: ['cosine', 'linear', 'constant'] },
  warmup: {
    type: 'int',
    low: 0,
    high: 100,
    step: 10,
    condition: { param: 'scheduler', in: ['cosine', 'linear'] },
  },
  min_lr_ratio: { type: 'float', low: 0, high: 0.5, condition: { param: 'scheduler', in: ['cosine'] } },
  batch: { type: 'int', low: 1, high: 64, log: true },
};

describe('search space', () => {
  it('samples every type inside its bounds, on its step grid', () => {
    const space = createSpace(loraSpace);
    const rng = new Rng(3);
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const p = resolveParams(space, {}, rng);
      expect(containsParams(space, p)).toBe(true);
      expect(p.lora_alpha).toBe(2 * (p.r as number));
      if (p.warmup !== undefined) expect((p.warmup as number) % 10).toBe(0);
      expect(Number.isInteger(p.batch)).toBe(true);
      expect('min_lr_ratio' in p).toBe(p.scheduler === 'cosine');
      expect('warmup' in p).toBe(p.scheduler !== 'constant');
      seen.add(String(p.scheduler));
    }
    expect(seen.size).toBe(3);
  });

  it('draws log parameters log-uniformly and ints with every value reachable', () => {
    const space = createSpace({
      lr: { type: 'float', low: 1e-4, high: 1, log: true },
      n: { type: 'int', low: 1, high: 4 },
    });
    const rng = new Rng(1);
    let belowHundredth = 0;
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 4000; i++) {
      if ((sampleFromPrior(space.sampled[0], rng) as number) < 1e-2) belowHundredth++;
      counts[(sampleFromPrior(space.sampled[1], rng) as number) - 1]++;
    }
    expect(belowHundredth / 4000).toBeGreaterThan(0.45); // half the decades lie below 1e-2
    expect(belowHundredth / 4000).toBeLessThan(0.55);
    for (const c of counts) expect(c).toBeGreaterThan(850);
  });

  it('unit encoding round-trips and puts log params in log space', () => {
    const space = createSpace(loraSpace);
    const lr = space.sampled.find((d) => d.name === 'lr') as NumericDef;
    expect(toUnit(lr, Math.sqrt(1e-5 * 1e-2))).toBeCloseTo(0.5, 12);
    expect(fromUnit(lr, toUnit(lr, 3e-4))).toBeCloseTo(3e-4, 15);
    const warmup = space.sampled.find((d) => d.name === 'warmup') as NumericDef;
    expect(fromUnit(warmup, 0)).toBe(0);
    expect(fromUnit(warmup, 1)).toBe(100);
    expect(fromUnit(warmup, toUnit(warmup, 40))).toBe(40);
  });

  it('orders parents before the parameters that depend on them', () => {
    const space = createSpace({
      child: { type: 'float', low: 0, high: 1, condition: { param: 'mid', in: ['b'] } },
      mid: { type: 'categorical', choices: ['a', 'b'], condition: { param: 'root', in: [true] } },
      root: { type: 'categorical', choices: [true, false] },
    });
    expect(space.params.map((p) => p.name)).toEqual(['root', 'mid', 'child']);
    expect(containsParams(space, { root: false })).toBe(true);
    expect(containsParams(space, { root: false, mid: 'b' })).toBe(false);
    expect(containsParams(space, { root: true, mid: 'b', child: 0.3 })).toBe(true);
  });

  const invalid: [string, unknown, RegExp][] = [
    ['low ≥ high', { x: { type: 'float', low: 1, high: 1 } }, /'x'.*low < high/],
    ['log with low ≤ 0', { lr: { type: 'float', low: 0, high: 1, log: true } }, /'lr'.*low > 0/],
    ['empty choices', { c: { type: 'categorical', choices: [] } }, /'c'.*non-empty/],
    ['unknown type', { q: { type: 'quantum', low: 0, high: 1 } }, /'q'.*unknown type "quantum"/],
    ['step not positive', { n: { type: 'int', low: 0, high: 9, step: 0 } }, /'n'.*step must be a positive/],
    ['non-integer int bounds', { n: { type: 'int', low: 0.5, high: 9 } }, /'n'.*integers/],
    [
      'condition on unknown parameter',
      { w: { type: 'float', low: 0, high: 1, condition: { param: 'sched', in: ['cosine'] } } },
      /'w'.*unknown parameter 'sched'/,
    ],
    [
      'condition value not a choice',
      {
        s: { type: 'categorical', choices: ['a'] },
        w: { type: 'float', low: 0, high: 1, condition: { param: 's', in: ['b'] } },
      },
      /'w'.*"b" is not a choice of 's'/,
    ],
    ['derived from unknown', { a: { type: 'derived', from: 'r', scale: 2 } }, /'a'.*unknown parameter 'r'/],
    [
      'cyclic conditions',
      {
        a: { type: 'categorical', choices: [1], condition: { param: 'b', in: [1] } },
        b: { type: 'categorical', choices: [1], condition: { param: 'a', in: [1] } },
      },
      /cycle/,
    ],
    ['missing bounds', { x: { type: 'float', low: 0 } }, /'x'.*finite numbers/],
    ['not an object', [1, 2], /expected an object/],
    ['empty space', {}, /at least one parameter/],
    // Overflow: a span or a grid no float can hold samples NaN and Infinity.
    ['a span past the largest float', { x: { type: 'float', low: -1e308, high: 1e308 } }, /'x'.*too large/],
    [
      'an int span past the largest float',
      { x: { type: 'int', low: -1e308, high: 1e308 } },
      /'x'.*too large/,
    ],
    [
      'more grid points than floats',
      { x: { type: 'float', low: 0, high: 1e308, step: 1e-300 } },
      /'x'.*too large/,
    ],
    [
      'a step larger than the range',
      { x: { type: 'float', low: 0.1, high: 0.2, step: 0.5 } },
      /'x'.*larger than/,
    ],
    // A trial's params are a plain object, where this name would set the prototype.
    ['a __proto__ name', JSON.parse('{"__proto__": {"type": "int", "low": 1, "high": 4}}'), /'__proto__'/],
  ];
  for (const [what, spec, message] of invalid) {
    it(`rejects ${what}`, () => {
      expect(() => createSpace(spec)).toThrow(message);
      expect(() => createSpace(spec)).toThrow(SearchSpaceError);
    });
  }

  it('keeps a stepped float inside its bounds however its grid rounds', () => {
    // 0.9999999999999999 rounds to 1 at 15 digits, which a dropout (< 1) refuses.
    const space = createSpace({
      d: { type: 'float', low: 0, high: 0.9999999999999999, step: 0.24999999999999997 },
    });
    const rng = new Rng(1);
    for (let i = 0; i < 200; i++) expect(resolveParams(space, {}, rng).d).toBeLessThan(1);
  });
});
