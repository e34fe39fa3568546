import { describe, expect, it } from 'vitest';
import { containsParams, createPbt, createStudy, loadStudy } from '../../../src/engine/search/index.ts';
import type { SpaceSpec } from '../../../src/engine/search/index.ts';

const space: SpaceSpec = {
  lr: { type: 'float', low: 1e-4, high: 1e-1, log: true },
  wd: { type: 'float', low: 0, high: 0.1 },
  batch: { type: 'int', low: 8, high: 64, step: 8 },
  opt: { type: 'categorical', choices: ['adam', 'sgd', 'lion'] },
};

describe('PBT scheduler', () => {
  it('tells a bottom-quantile trial to exploit a top-quantile one and explores within bounds', () => {
    const study = createStudy({ space, sampler: 'random', direction: 'minimize', seed: 2 });
    const pbt = createPbt(study, { interval: 5 });
    const trials = Array.from({ length: 8 }, () => study.ask());
    // Trial i reports loss i at step 5: 0 and 1 are the top quantile, 6 and 7 the bottom.
    trials.forEach((t, i) => t.report(5, i));
    const kept = pbt.decide(trials[3]);
    expect(kept).toBeNull(); // middle of the pack
    const d = pbt.decide(trials[7]);
    expect(d).not.toBeNull();
    if (!d) return;
    expect([0, 1]).toContain(d.exploit);
    expect(containsParams(study.space, d.params)).toBe(true);
    const donor = study.trial(d.exploit).params;
    // Continuous params are perturbed from the donor's (×0.8 / ×1.2, clipped) or redrawn.
    expect(d.params).not.toEqual(donor);
    expect(trials[7].params).toEqual(d.params);
    expect(pbt.lineage(7)).toEqual([{ step: 5, donor: d.exploit, params: d.params }]);
    // One decision per (trial, step); not at off-interval steps.
    expect(pbt.decide(trials[7])).toBeNull();
    trials[7].report(6, 10);
    expect(pbt.decide(trials[7])).toBeNull();
  });

  it('perturbs numeric params by the configured factors and stays inside the space', () => {
    const study = createStudy({ space, sampler: 'random', seed: 9 });
    const pbt = createPbt(study, { interval: 1, resampleProbability: 0, quantile: 0.5 });
    const a = study.ask();
    const b = study.ask();
    a.report(1, 0);
    b.report(1, 1);
    const d = pbt.decide(b);
    expect(d?.exploit).toBe(0);
    const donor = a.params;
    const ratio = (d?.params.lr as number) / (donor.lr as number);
    const clipped = d?.params.lr === 1e-4 || d?.params.lr === 1e-1;
    expect(clipped || Math.abs(ratio - 0.8) < 1e-9 || Math.abs(ratio - 1.2) < 1e-9).toBe(true);
    expect(containsParams(study.space, d?.params ?? {})).toBe(true);
  });

  it('records decisions in the log so lineage survives a reload, and decides identically after resume', () => {
    const make = () => {
      const study = createStudy({ space, sampler: 'random', direction: 'maximize', seed: 4 });
      const trials = Array.from({ length: 6 }, () => study.ask());
      trials.forEach((t, i) => t.report(10, i));
      return { study, trials };
    };
    const a = make();
    const pbtA = createPbt(a.study, { interval: 10 });
    const first = pbtA.decide(a.trials[0]); // maximize: trial 0 is the worst
    expect(first?.exploit).toBe(5);
    const { study: reloaded, errors } = loadStudy(a.study.log());
    expect(errors).toEqual([]);
    expect(reloaded.lineage(0)).toEqual(a.study.lineage(0));
    expect(reloaded.trial(0).params).toEqual(first?.params);

    const b = make();
    expect(createPbt(b.study, { interval: 10 }).decide(b.trials[0])).toEqual(first);
  });

  it('validates its options', () => {
    const study = createStudy({ space });
    expect(() => createPbt(study, { interval: 0 })).toThrow(/interval/);
    expect(() => createPbt(study, { interval: 2, quantile: 0.9 })).toThrow(/quantile/);
    expect(() => createPbt(study, { interval: 2, resampleProbability: 2 })).toThrow(/resampleProbability/);
  });
});
