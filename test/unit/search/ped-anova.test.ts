import { describe, expect, it } from 'vitest';
import {
  createSpace,
  createStudy,
  ImportanceError,
  parameterImportance,
  pedAnovaImportance,
} from '../../../src/engine/search/index.ts';
import type { Params, SpaceSpec, TrialRecord } from '../../../src/engine/search/index.ts';
import { parzenOnGrid, topQuantileTrials } from '../../../src/engine/search/ped-anova.ts';

/** `n` random-search trials of `spec`, each complete with the value `f` gives its params. */
function randomTrials(spec: SpaceSpec, n: number, seed: number, f: (p: Params) => number): TrialRecord[] {
  const study = createStudy({ space: spec, sampler: 'random', seed });
  for (let i = 0; i < n; i++) {
    const t = study.ask();
    study.tell(t, f(t.params));
  }
  return [...study.trials];
}

const record = (number: number, params: Params, value: number): TrialRecord => ({
  number,
  params,
  state: 'complete',
  value,
  intermediate: [],
  system: {},
});

const ranking = (imp: Record<string, number>): string[] =>
  Object.entries(imp)
    .sort((a, b) => b[1] - a[1])
    .map(([k]) => k);

const unitCube: SpaceSpec = {
  x: { type: 'float', low: 0, high: 1 },
  y: { type: 'float', low: 0, high: 1 },
  z: { type: 'float', low: 0, high: 1 },
  w: { type: 'float', low: 0, high: 1 },
};
/**
 * x sets the objective everywhere; y adds a small step; z matters only where x is good (a dip of 0.1 when
 * |x − 0.3| < 0.35 and |z − 0.7| < 0.1, 7 % of the space); w never matters.
 */
const localDip = (p: Params): number => {
  const x = p.x as number;
  const z = p.z as number;
  const dip = Math.abs(x - 0.3) < 0.35 && Math.abs(z - 0.7) < 0.1 ? 0.1 : 0;
  return (x - 0.3) ** 2 + 0.01 * ((p.y as number) > 0.5 ? 1 : 0) - dip;
};

describe('PED-ANOVA local importance', () => {
  it('ranks first the parameter that matters only near the optimum, where fANOVA ranks the global one', () => {
    const space = createSpace(unitCube);
    for (const seed of [1, 2, 3, 4, 5]) {
      const trials = randomTrials(unitCube, 300, seed, localDip);
      const global = parameterImportance(space, trials, { seed: 0 });
      const local = pedAnovaImportance(space, trials, { direction: 'minimize' });
      expect(ranking(global)[0]).toBe('x');
      expect(global.z).toBeLessThan(0.1);
      expect(ranking(local)[0]).toBe('z');
      expect(local.z).toBeGreaterThan(0.5);
      // Irrelevant everywhere: next to nothing.
      expect(local.w).toBeLessThan(0.05);
      expect(Object.values(local).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
    }
  });

  it('handles log floats, log ints and categoricals in their own units', () => {
    const spec: SpaceSpec = {
      lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
      r: { type: 'int', low: 1, high: 1024, log: true },
      opt: { type: 'categorical', choices: ['adam', 'sgd', 'lion'] },
      seedish: { type: 'int', low: 0, high: 100 },
    };
    const space = createSpace(spec);
    const trials = randomTrials(spec, 200, 7, () => 0);
    const objectives: Record<string, (p: Params) => number> = {
      lr: (p) => (Math.log10(p.lr as number) + 3) ** 2,
      r: (p) => Math.abs(Math.log2(p.r as number) - 3),
      // Every 'lion' trial ties for best, so the top set is all of them.
      opt: (p) => (p.opt === 'lion' ? 0 : 1),
    };
    for (const [param, f] of Object.entries(objectives)) {
      const scored = trials.map((t) => record(t.number, t.params, f(t.params)));
      const imp = pedAnovaImportance(space, scored, { direction: 'minimize' });
      expect(ranking(imp)[0], param).toBe(param);
      expect(imp[param], param).toBeGreaterThan(0.5);
      expect(imp.seedish, param).toBeLessThan(0.1);
    }
  });

  it('matches a hand-computed Pearson divergence on two categoricals', () => {
    // Losses 0..3: the top set is trials 0 and 1 (at least two top trials).
    const space = createSpace({
      a: { type: 'categorical', choices: ['p', 'q'] },
      b: { type: 'categorical', choices: ['p', 'q'] },
    });
    const trials = [
      record(0, { a: 'p', b: 'p' }, 0),
      record(1, { a: 'p', b: 'p' }, 1),
      record(2, { a: 'q', b: 'p' }, 2),
      record(3, { a: 'q', b: 'q' }, 3),
    ];
    // Top: one kernel (choice p, weight 2) of rows (1 + 1/2, 1/2)/2 plus the uniform prior (weight 1).
    const top = [(2 / 3) * 0.75 + (1 / 3) * 0.5, (2 / 3) * 0.25 + (1 / 3) * 0.5];
    // All, a: kernels p and q (weight 2 each) of rows (1 + 1/3, 1/3)/(5/3) and the prior (weight 1).
    const allA = [0.4 * 0.8 + 0.4 * 0.2 + 0.2 * 0.5, 0.4 * 0.2 + 0.4 * 0.8 + 0.2 * 0.5];
    // All, b: p weighs 3, q 1.
    const allB = [0.6 * 0.8 + 0.2 * 0.2 + 0.2 * 0.5, 0.6 * 0.2 + 0.2 * 0.8 + 0.2 * 0.5];
    const pearson = (p: number[], q: number[]): number =>
      q.reduce((s, qi, i) => s + qi * (p[i] / qi - 1) ** 2, 0);
    const dA = pearson(top, allA);
    const dB = pearson(top, allB);
    expect(dA).toBeCloseTo(1 / 9, 12);
    const imp = pedAnovaImportance(space, trials, { direction: 'minimize' });
    expect(imp.a).toBeCloseTo(dA / (dA + dB), 9);
    expect(imp.b).toBeCloseTo(dB / (dA + dB), 9);
  });

  it('discretises each numeric kernel as the f64 integral of its normal over the grid cells', () => {
    // Counts on a 5-point grid: occupied 0, 1, 2, 4 with 1, 2, 1, 1 trials (n = 5, mean 1.6).
    const counts = [1, 2, 1, 0, 1];
    // Scott: sd = √(9.2/4) ≈ 1.517 > IQR/1.34 = (2 − 0)/1.34, so σ = 1.059·(2/1.34)·5^(−1/5).
    const sigma = 1.059 * (2 / 1.34) * 5 ** -0.2;
    const cellMass = (mu: number, s: number, a: number, b: number): number => {
      // Composite Simpson on the normal density, independent of the erf code under test.
      const steps = 2000;
      const h = (b - a) / steps;
      let sum = 0;
      for (let i = 0; i <= steps; i++) {
        const x = a + i * h;
        const w = i === 0 || i === steps ? 1 : i % 2 === 1 ? 4 : 2;
        sum += w * Math.exp(-0.5 * ((x - mu) / s) ** 2);
      }
      return (sum * h) / 3 / (s * Math.sqrt(2 * Math.PI));
    };
    const kernel = (mu: number, s: number): number[] => {
      const inside = cellMass(mu, s, -0.5, 4.5);
      return [0, 1, 2, 3, 4].map((g) => cellMass(mu, s, g - 0.5, g + 0.5) / inside);
    };
    // Kernels weighted by count, the prior (centre 2, σ = 5) by 1; total weight 6.
    const parts: [number, number, number][] = [
      [1, 0, sigma],
      [2, 1, sigma],
      [1, 2, sigma],
      [1, 4, sigma],
      [1, 2, 5],
    ];
    const expected = [0, 1, 2, 3, 4].map((g) =>
      parts.reduce((s, [w, mu, sd]) => s + (w / 6) * kernel(mu, sd)[g], 0),
    );
    const got = parzenOnGrid(counts, false);
    // special.ts's erfc is a fit with relative error < 1.2e-7.
    got.forEach((v, g) => expect(Math.abs(v - expected[g])).toBeLessThan(1e-7));
    expect(got.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('takes the top quantile as numpy quantile "higher", with at least two trials and ties included', () => {
    const trials = Array.from({ length: 30 }, (_, i) => record(i, { x: 0 }, 29 - i));
    // ceil(0.1·29) = 3: the four best of 30.
    expect(topQuantileTrials(trials, 'minimize', 0.1).map((t) => t.value)).toEqual([3, 2, 1, 0]);
    expect(topQuantileTrials(trials, 'maximize', 0.1).map((t) => t.value)).toEqual([29, 28, 27, 26]);
    const five = [5, 1, 3, 2, 4].map((v, i) => record(i, { x: 0 }, v));
    expect(topQuantileTrials(five, 'minimize', 0.1).map((t) => t.value)).toEqual([1, 2]);
    const tied = [1, 1, 1, 2, 3].map((v, i) => record(i, { x: 0 }, v));
    expect(topQuantileTrials(tied, 'minimize', 0.1)).toHaveLength(3);
    // Only complete trials with a value count; with two or fewer, the top is all of them.
    const mixed = [
      ...five,
      { ...record(5, { x: 0 }, -1), state: 'pruned' as const },
      record(6, { x: 0 }, NaN),
    ];
    expect(topQuantileTrials(mixed, 'minimize').map((t) => t.value)).toEqual([1, 2]);
    expect(topQuantileTrials(five.slice(0, 2), 'minimize')).toEqual(five.slice(0, 2));
  });

  it('gives the same answer for a maximised objective as for its negation minimised', () => {
    const space = createSpace(unitCube);
    const trials = randomTrials(unitCube, 120, 11, localDip);
    const flipped = trials.map((t) => record(t.number, t.params, -(t.value as number)));
    const min = pedAnovaImportance(space, trials, { direction: 'minimize' });
    expect(pedAnovaImportance(space, flipped, { direction: 'maximize' })).toEqual(min);
    // And maximising the original objective asks about the worst trials instead.
    expect(pedAnovaImportance(space, trials, { direction: 'maximize' })).not.toEqual(min);
  });

  it('is deterministic and does not depend on the order of the trials', () => {
    const space = createSpace(unitCube);
    const trials = randomTrials(unitCube, 100, 13, localDip);
    const first = pedAnovaImportance(space, trials, { direction: 'minimize' });
    expect(pedAnovaImportance(space, trials, { direction: 'minimize' })).toEqual(first);
    const reversed = pedAnovaImportance(space, [...trials].reverse(), { direction: 'minimize' });
    for (const k of Object.keys(first)) expect(reversed[k]).toBeCloseTo(first[k], 12);
  });

  it('skips running, pruned and failed trials, and parameters missing from some trials', () => {
    const spec: SpaceSpec = {
      x: { type: 'float', low: 0, high: 1 },
      opt: { type: 'categorical', choices: ['adam', 'sgd'] },
      momentum: { type: 'float', low: 0, high: 1, condition: { param: 'opt', in: ['sgd'] } },
    };
    const space = createSpace(spec);
    const trials = randomTrials(spec, 40, 17, (p) => (p.x as number) ** 2);
    const noisy: TrialRecord[] = [
      ...trials,
      { ...record(40, { x: 0.9, opt: 'adam' }, 0), state: 'pruned' },
      { ...record(41, { x: 0.9, opt: 'adam' }, NaN) },
      { ...record(42, { x: 0.9, opt: 'adam' }, 0), state: 'running', value: undefined },
    ];
    const imp = pedAnovaImportance(space, noisy, { direction: 'minimize' });
    expect(Object.keys(imp).sort()).toEqual(['opt', 'x']);
    expect(imp).toEqual(pedAnovaImportance(space, trials, { direction: 'minimize' }));
    expect(ranking(imp)[0]).toBe('x');
  });

  it('is all zeros when the objective does not set any trials apart', () => {
    const space = createSpace(unitCube);
    const trials = randomTrials(unitCube, 20, 19, () => 1);
    expect(pedAnovaImportance(space, trials, { direction: 'minimize' })).toEqual({ x: 0, y: 0, z: 0, w: 0 });
  });

  it('refuses too few trials and bad options with an ImportanceError naming the field', () => {
    const space = createSpace(unitCube);
    const trials = randomTrials(unitCube, 20, 23, localDip);
    const refusal = (f: () => unknown): ImportanceError => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(ImportanceError);
        return e as ImportanceError;
      }
      throw new Error('expected an ImportanceError');
    };
    const few = refusal(() => pedAnovaImportance(space, trials.slice(0, 2), { direction: 'minimize' }));
    expect(few.field).toBe('trials');
    expect(few.message).toBe('pedAnovaImportance: need at least 3 complete trials (got 2)');
    for (const quantile of [0, 1, 1.5, -0.1, NaN]) {
      const bad = refusal(() => pedAnovaImportance(space, trials, { direction: 'minimize', quantile }));
      expect(bad.field).toBe('quantile');
      expect(bad.message).toContain(`(got ${quantile})`);
    }
    const unknown = refusal(() =>
      pedAnovaImportance(space, trials, { direction: 'minimize', params: ['nope'] }),
    );
    expect(unknown.field).toBe('params');
    expect(unknown.message).toContain("unknown parameter 'nope'");
    const direction = refusal(() =>
      pedAnovaImportance(space, trials, { direction: 'up' as unknown as 'minimize' }),
    );
    expect(direction.field).toBe('direction');
    const categorical = createSpace({ opt: { type: 'categorical', choices: ['adam', 'sgd'] } });
    const stray = [0, 1, 2].map((i) => record(i, { opt: i === 1 ? 'lion' : 'adam' }, i));
    const choice = refusal(() => pedAnovaImportance(categorical, stray, { direction: 'minimize' }));
    expect(choice.field).toBe('trials');
    expect(choice.message).toBe(
      `pedAnovaImportance: trial 1: parameter 'opt' is "lion", not one of its choices`,
    );
    // A wider quantile and a subset of parameters are honoured.
    const sub = pedAnovaImportance(space, trials, {
      direction: 'minimize',
      quantile: 0.5,
      params: ['x', 'z'],
    });
    expect(Object.keys(sub).sort()).toEqual(['x', 'z']);
  });
});
