import { describe, expect, it } from 'vitest';
import { createStudy, loadStudy } from '../../../src/engine/search/index.ts';
import type { Params, SamplerName, SpaceSpec, Study } from '../../../src/engine/search/index.ts';
import { hypervolume } from '../../../src/engine/search/pareto.ts';
import { splitMultiObjective } from '../../../src/engine/search/samplers/motpe.ts';
import type { TrialRecord } from '../../../src/engine/search/types.ts';

const D = 4;
const zdtSpace: SpaceSpec = Object.fromEntries(
  Array.from({ length: D }, (_, i) => [`x${i}`, { type: 'float', low: 0, high: 1 }]),
);

/** ZDT1 (Zitzler, Deb, Thiele 2000): a convex front f2 = 1 − √f1 where x1..x(D−1) are 0. */
function zdt1(p: Params): number[] {
  const x = Array.from({ length: D }, (_, i) => p[`x${i}`] as number);
  const g = 1 + (9 / (D - 1)) * x.slice(1).reduce((a, v) => a + v, 0);
  return [x[0], g * (1 - Math.sqrt(x[0] / g))];
}

/** Hypervolume (to (1.1, 11)) of the first 40 trials of a sequential ZDT1 study. */
function zdtHypervolume(sampler: SamplerName, seed: number, trials = 40): number {
  const study = createStudy({ space: zdtSpace, sampler, seed, directions: ['minimize', 'minimize'] });
  const points: number[][] = [];
  for (let i = 0; i < trials; i++) {
    const t = study.ask();
    const values = zdt1(t.params);
    points.push(values);
    study.tell(t, { state: 'complete', values });
  }
  return hypervolume(points, [1.1, 11]);
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

// Five 40-trial GP studies take about 5 s on an idle 2-core machine: room for a loaded one.
describe(
  'multi-objective samplers on ZDT1 (4 parameters, 40 trials, seeds 0–4)',
  { timeout: 120_000 },
  () => {
    const seeds = [0, 1, 2, 3, 4];
    const random = seeds.map((s) => zdtHypervolume('random', s));
    // The best possible hypervolume here is 1.1·11 − 1/3 ≈ 11.77; random search reaches ~9.7.
    it.each([
      ['tpe', 'MOTPE', 0.5],
      ['gp', 'ParEGO', 1.5],
    ] as const)('%s (%s) beats random search by a clear hypervolume margin', (sampler, _name, margin) => {
      const hv = seeds.map((s) => zdtHypervolume(sampler, s));
      expect(median(hv)).toBeGreaterThan(median(random) + margin);
      expect(hv.filter((v, i) => v > random[i]).length).toBeGreaterThanOrEqual(4);
    });
  },
);

const space: SpaceSpec = {
  x: { type: 'float', low: 0, high: 1 },
  lr: { type: 'float', low: 1e-5, high: 1e-2, log: true },
  r: { type: 'categorical', choices: [4, 8, 16] },
};
const objectives = (p: Params): number[] => [
  (p.x as number) + Math.abs(Math.log10(p.lr as number) + 3),
  // A maximised objective: larger x is better here.
  (p.x as number) ** 2 + (p.r === 8 ? 0.5 : 0),
];

/** `finished` trials told with both objectives (every third infeasible when constrained), then `pending`. */
function run(sampler: SamplerName, finished: number, pending: number, constrained = false): Study {
  const study = createStudy({ space, sampler, seed: 5, directions: ['minimize', 'maximize'] });
  for (let i = 0; i < finished; i++) {
    const t = study.ask();
    const values = objectives(t.params);
    study.tell(t, {
      state: 'complete',
      values,
      ...(constrained ? { constraints: [i % 3 === 0 ? 1 : -1] } : {}),
    });
  }
  for (let i = 0; i < pending; i++) study.ask();
  return study;
}

describe.each(['random', 'sobol', 'tpe', 'gp', 'auto'] as const)(
  'a multi-objective study with %s',
  (sampler) => {
    it('resumed from its log asks the same next trials (sampler state is all in the log)', () => {
      const study = run(sampler, 13, 2, true);
      const { study: reloaded, errors } = loadStudy(study.log());
      expect(errors).toEqual([]);
      expect(reloaded.directions).toEqual(['minimize', 'maximize']);
      for (let i = 0; i < 3; i++) {
        const a = study.ask();
        const b = reloaded.ask();
        expect(b.params).toEqual(a.params);
        expect(reloaded.trial(b.number).system).toEqual(study.trial(a.number).system);
        const values = objectives(a.params);
        study.tell(a, { state: 'complete', values });
        reloaded.tell(b, { state: 'complete', values });
      }
      expect(reloaded.log()).toBe(study.log());
    });
  },
);

describe('which sampler a multi-objective study runs', () => {
  it("'gp' is ParEGO (a weight vector stored per ask), 'tpe' MOTPE, 'auto' ParEGO on a small numeric space", () => {
    const last = (sampler: SamplerName) => {
      const study = run(sampler, 12, 1);
      return study.trial(12).system;
    };
    const gp = last('gp');
    expect(gp.parego).toHaveLength(2);
    expect((gp.parego as number[]).reduce((a, v) => a + v, 0)).toBeCloseTo(1, 12);
    expect(gp.gp).toBeDefined(); // fitted by the GP, not a start-up point
    expect(last('auto').parego).toEqual(gp.parego);
    expect(last('tpe')).toEqual({});
  });
});

describe('multi-objective study', () => {
  it('keeps the values in the log and gives the feasible Pareto front as bestTrials', () => {
    const study = createStudy({ space, seed: 1, directions: ['minimize', 'maximize'] });
    const tell = (values: number[], constraints?: number[]) =>
      study.tell(study.ask(), { state: 'complete', values, ...(constraints ? { constraints } : {}) });
    tell([1, 1]); // 0: front
    tell([2, 0.5]); // 1: dominated by 0
    tell([0.5, 0.2]); // 2: front
    tell([0.1, 5], [1]); // 3: would dominate all, but infeasible
    tell([1, 1]); // 4: a duplicate of 0, on the front too
    expect(study.bestTrials.map((t) => t.number)).toEqual([0, 2, 4]);
    expect(study.bestTrial).toBeUndefined();
    expect(study.trial(2).value).toBe(0.5);
    expect(study.trial(2).values).toEqual([0.5, 0.2]);
    const head = JSON.parse(study.log().split('\n')[0]) as { directions: string[]; direction: string };
    expect(head.directions).toEqual(['minimize', 'maximize']);
    expect(head.direction).toBe('minimize');
    expect(loadStudy(study.log()).study.bestTrials.map((t) => t.number)).toEqual([0, 2, 4]);
  });

  it('refuses tells without one finite value per objective, changing nothing', () => {
    const study = createStudy({ space, directions: ['minimize', 'minimize', 'maximize'] });
    const t = study.ask();
    const before = study.log();
    expect(() => study.tell(t, 0.5)).toThrow(/needs \{ values: 3 finite numbers \}/);
    expect(() => study.tell(t, { state: 'complete', values: [1, 2] })).toThrow(/3 finite numbers/);
    expect(() => study.tell(t, { state: 'complete', values: [1, NaN, 2] })).toThrow(/3 finite numbers/);
    expect(() => study.tell(t, { state: 'complete', value: 1 })).toThrow(/3 finite numbers/);
    expect(study.log()).toBe(before);
    study.tell(t, { state: 'failed' });
    const single = createStudy({ space });
    expect(() => single.tell(single.ask(), { state: 'complete', values: [1, 2] })).toThrow(/one objective/);
  });

  it('refuses pruners and warm starts, and a direction that is not the first of directions', () => {
    expect(() => createStudy({ space, directions: ['minimize', 'minimize'], pruner: 'median' })).toThrow(
      /pruner "median": a multi-objective study \(2 objectives\) cannot prune/,
    );
    expect(() => createStudy({ space, direction: 'maximize', directions: ['minimize', 'minimize'] })).toThrow(
      /direction "maximize" is not the first of directions/,
    );
    expect(() => createStudy({ space, directions: ['minimize', 'up' as 'minimize'] })).toThrow(
      /directions must be a non-empty list/,
    );
    expect(() =>
      createStudy({
        space,
        directions: ['minimize', 'minimize'],
        warmStart: { source: 'x', replay: [], prior: [] } as never,
      }),
    ).toThrow(/cannot be warm-started/);
  });

  it('reports a log line whose values disagree with the study, and loads the rest', () => {
    const study = run('random', 3, 0);
    const lines = study.log().trim().split('\n');
    const tell = JSON.parse(lines[2]) as { values: number[]; value: number };
    const bad = [
      JSON.stringify({ ...tell, values: [tell.value] }), // one value in a two-objective study
      JSON.stringify({ ...tell, values: [tell.value + 1, 0] }), // values[0] is not value
    ];
    const { errors } = loadStudy([lines[0], lines[1], bad[0], bad[1], ...lines.slice(2)].join('\n'));
    expect(errors.map((e) => e.reason)).toEqual([
      'tell: trial 0 has 1 objective values, the study has 2 objectives',
      'tell event: values must be a list of finite numbers, the first = value',
    ]);
  });
});

describe("MOTPE's split (Optuna's _split_complete_trials_multi_objective)", () => {
  const trial = (number: number, values: number[], constraints?: number[]): TrialRecord => ({
    number,
    params: {},
    state: 'complete',
    value: values[0],
    values,
    intermediate: [],
    system: {},
    ...(constraints ? { constraints } : {}),
  });

  it('fills the good group by whole ranks, tie-breaks by hypervolume, puts infeasible and running last', () => {
    const finished = [
      trial(0, [1, 4]), // rank 0
      trial(1, [4, 1]), // rank 0
      trial(2, [2, 2]), // rank 0
      trial(3, [3, 3]), // rank 1
      trial(4, [2.5, 3.5]), // rank 1
      trial(5, [0, 0], [2]), // infeasible
      trial(6, [5, 5]), // rank 2
    ];
    const running = { ...trial(7, [0, 0]), state: 'running' as const, value: undefined };
    const directions = ['minimize', 'minimize'] as const;
    let split = splitMultiObjective(finished, [running], directions, 3);
    expect(split.below.map((t) => t.number)).toEqual([0, 1, 2]);
    expect(split.above.map((t) => t.number)).toEqual([3, 4, 5, 6, 7]);
    // Rank 0 whole, then one of rank 1 chosen by hypervolume (to 1.1 × its worst: (3.3, 3.85)): [3, 3] has
    // a box of 0.3 × 0.85, [2.5, 3.5] one of 0.8 × 0.35.
    split = splitMultiObjective(finished, [], directions, 4);
    expect(split.below.map((t) => t.number)).toEqual([0, 1, 2, 4]);
    // All feasible ones good, then the infeasible one.
    split = splitMultiObjective(finished, [], directions, 7);
    expect(split.below.map((t) => t.number)).toEqual([0, 1, 2, 3, 4, 5, 6]);
    expect(split.belowWeights[5]).toBe(1e-12);
  });

  it('weighs the good trials by hypervolume contribution over the largest', () => {
    const finished = [trial(0, [1, 4]), trial(1, [4, 1]), trial(2, [2, 2]), trial(3, [3, 3])];
    const { below, belowWeights } = splitMultiObjective(finished, [], ['minimize', 'minimize'], 3);
    expect(below.map((t) => t.number)).toEqual([0, 1, 2]);
    // Reference 1.1 × worst = (4.4, 4.4); contributions: [1,4]: 1×0.4, [4,1]: 0.4×1, [2,2]: 2×2 = 4.
    expect(belowWeights[0]).toBeCloseTo(0.4 / 4, 12);
    expect(belowWeights[1]).toBeCloseTo(0.4 / 4, 12);
    expect(belowWeights[2]).toBeCloseTo(1, 12);
  });

  it('turns maximised objectives around', () => {
    const finished = [trial(0, [1, 4]), trial(1, [1, 1])];
    const max = splitMultiObjective(finished, [], ['minimize', 'maximize'], 1);
    expect(max.below.map((t) => t.number)).toEqual([0]);
    const min = splitMultiObjective(finished, [], ['minimize', 'minimize'], 1);
    expect(min.below.map((t) => t.number)).toEqual([1]);
  });
});
