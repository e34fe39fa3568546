import { describe, expect, it } from 'vitest';
import {
  createSpace,
  createStudy,
  loadStudy,
  WarmStartError,
  warmStartFrom,
} from '../../../src/engine/search/index.ts';
import type {
  Params,
  SamplerName,
  SpaceSpec,
  Study,
  WarmStartSeed,
} from '../../../src/engine/search/index.ts';
import { createTpeSampler } from '../../../src/engine/search/samplers/tpe.ts';
import { createGpSampler } from '../../../src/engine/search/samplers/gp.ts';
import { Rng } from '../../../src/engine/rng.ts';

const space: SpaceSpec = {
  lr: { type: 'float', low: 1e-5, high: 1e-2, log: true },
  rank: { type: 'categorical', choices: [4, 8, 16] },
  dropout: { type: 'float', low: 0, high: 0.2 },
};
const f = (p: Params): number =>
  (Math.log10(p.lr as number) + 3) ** 2 + (p.rank === 8 ? 0 : 0.3) + (p.dropout as number);

function finishedSource(n: number, sampler: SamplerName = 'random', spec: SpaceSpec = space): Study {
  const study = createStudy({ space: spec, sampler, seed: 7 });
  for (let i = 0; i < n; i++) {
    const t = study.ask();
    study.tell(t, f(t.params));
  }
  return study;
}

function run(study: Study, n: number, objective: (p: Params) => number): void {
  for (let i = 0; i < n; i++) {
    const t = study.ask();
    study.tell(t, objective(t.params));
  }
}

describe('warmStartFrom', () => {
  it('replays the top configurations best first and keeps every complete trial as a prior observation', () => {
    const source = finishedSource(12);
    const seed = warmStartFrom(source, createSpace(space), { replay: 3 });
    const ranked = [...source.trials].sort((a, b) => (a.value as number) - (b.value as number));
    expect(seed.replay).toEqual(ranked.slice(0, 3).map((t) => t.params));
    expect(seed.prior.map((o) => o.loss).sort((a, b) => a - b)).toEqual(ranked.map((t) => t.value));
    expect(seed.source).toMatch(/^[0-9a-f]{64}$/);
    expect(seed.notes).toEqual([]);
  });

  it('turns a maximised source into losses (lower is better)', () => {
    const source = createStudy({ space, sampler: 'random', seed: 3, direction: 'maximize' });
    run(source, 6, f);
    const seed = warmStartFrom(source, createSpace(space), { replay: 1 });
    const best = source.bestTrial;
    expect(seed.replay[0]).toEqual(best?.params);
    expect(Math.min(...seed.prior.map((o) => o.loss))).toBe(-(best?.value as number));
  });

  it('clips values outside the new space, drops unknown choices, ignores extra parameters, and says so', () => {
    const wide: SpaceSpec = {
      ...space,
      rank: { type: 'categorical', choices: [4, 8, 16, 32] },
      extra: { type: 'int', low: 0, high: 3 },
    };
    const source = createStudy({ space: wide, sampler: 'random', seed: 1 });
    const given: Params[] = [
      { lr: 1e-3, rank: 32, dropout: 0.1, extra: 1 },
      { lr: 1e-3, rank: 8, dropout: 0.1, extra: 1 },
    ];
    for (const [i, p] of given.entries()) {
      source.applyEvent({ type: 'ask', number: i, params: p });
      source.tell(i, i);
    }
    const narrow: SpaceSpec = { ...space, lr: { type: 'float', low: 1e-5, high: 1e-4, log: true } };
    const seed = warmStartFrom(source, createSpace(narrow));
    expect(seed.replay).toEqual([{ lr: 1e-4, rank: 8, dropout: 0.1 }]);
    expect(seed.prior).toEqual([{ params: { lr: 1e-4, rank: 8, dropout: 0.1 }, loss: 1 }]);
    expect(seed.notes.join('\n')).toMatch(/ignored source parameters not searched here: extra/);
    expect(seed.notes.join('\n')).toMatch(/clipped to its bounds: lr/);
    expect(seed.notes.join('\n')).toMatch(/1 source trial\(s\) dropped/);
  });

  it('uses trials lacking a new parameter only as replays', () => {
    const source = finishedSource(4);
    const seed = warmStartFrom(source, createSpace({ ...space, alpha: { type: 'float', low: 1, high: 2 } }));
    expect(seed.replay).toHaveLength(4);
    expect(seed.prior).toEqual([]);
    expect(seed.notes.join('\n')).toMatch(/lack a parameter searched here/);
  });

  it('refuses a source sharing no parameter, or with no complete trial', () => {
    const source = finishedSource(3);
    expect(() => warmStartFrom(source, createSpace({ other: { type: 'float', low: 0, high: 1 } }))).toThrow(
      /shares no searched parameter.*source: lr, rank, dropout; this: other/,
    );
    const empty = createStudy({ space, seed: 1 });
    empty.tell(empty.ask(), { state: 'failed' });
    expect(() => warmStartFrom(empty, createSpace(space))).toThrow(WarmStartError);
    expect(() => warmStartFrom(empty, createSpace(space))).toThrow(/no complete feasible trial/);
  });
});

describe('a warm-started study', () => {
  it('asks the replayed configurations first, marked in the log, then samples', () => {
    const source = finishedSource(15);
    const seed = warmStartFrom(source, createSpace(space), { replay: 3 });
    const study = createStudy({ space, sampler: 'tpe', seed: 2, warmStart: seed });
    run(study, 5, f);
    expect(study.trials.slice(0, 3).map((t) => t.params)).toEqual(seed.replay);
    expect(study.trials.slice(0, 3).map((t) => t.system.warmStart)).toEqual(['replay', 'replay', 'replay']);
    expect(study.trials[3].system.warmStart).toBeUndefined();
    expect(study.events[0]).toMatchObject({ type: 'study', warmStart: { source: seed.source } });
  });

  it('refuses a seed that is not one, naming the field', () => {
    const notLists = { source: 'x', replay: 3, prior: [], notes: [] } as unknown as WarmStartSeed;
    expect(() => createStudy({ space, warmStart: notLists })).toThrow(
      /createStudy: warm start: seed.replay, seed.prior and seed.notes must be lists/,
    );
  });

  it('refuses a seed whose prior observations are not in the space', () => {
    const seed = { source: 'x', replay: [], prior: [{ params: { lr: 5 }, loss: 1 }], notes: [] };
    expect(() => createStudy({ space, warmStart: seed })).toThrow(
      /seed.prior\[0\].params is not a complete assignment/,
    );
  });

  describe.each(['tpe', 'gp', 'auto', 'random'] as SamplerName[])('resume (%s)', (sampler) => {
    it('after k trials gives identical asks, from the log alone', () => {
      const seed = warmStartFrom(finishedSource(14, 'tpe'), createSpace(space), { replay: 2 });
      const shifted = (p: Params): number => 2 * f({ ...p, lr: (p.lr as number) * 3 }) + 1;
      const full = createStudy({ space, sampler, seed: 5, warmStart: seed });
      run(full, 14, shifted);
      for (const k of [1, 2, 6]) {
        const cut = full.events.findIndex((e) => e.type === 'ask' && e.number === k);
        const { study: resumed, errors } = loadStudy(full.events.slice(0, cut));
        expect(errors).toEqual([]);
        expect(resumed.warmStart).toEqual(full.warmStart);
        run(resumed, 14 - k, shifted);
        expect(resumed.log()).toBe(full.log());
      }
    });
  });
});

describe('prior observations in the samplers', () => {
  const s = createSpace({ x: { type: 'float', low: 0, high: 1 } });
  // The source's best trials sit near x = 0.9; its values are on another scale than this study's.
  const prior = Array.from({ length: 30 }, (_, i) => {
    const x = (i + 0.5) / 30;
    return { params: { x }, loss: 1000 + 500 * (x - 0.9) ** 2 };
  });
  const ctx = (i: number, withPrior: boolean) => ({
    space: s,
    trials: [],
    number: 0,
    direction: 'minimize' as const,
    rng: new Rng(11, 'trial', i),
    seed: 11,
    prior: withPrior ? prior : [],
  });

  it.each([
    ['tpe', createTpeSampler()],
    ['gp', createGpSampler({ nCandidates: 128 })],
  ])(
    '%s proposes near the source optimum with no own trial, and from its start-up design without',
    (_, sampler) => {
      const warm = Array.from({ length: 8 }, (_, i) => sampler.sample(ctx(i, true)).params.x as number);
      const cold = Array.from({ length: 8 }, (_, i) => sampler.sample(ctx(i, false)).params.x as number);
      const median = (v: number[]): number => [...v].sort((a, b) => a - b)[v.length >> 1];
      expect(Math.abs(median(warm) - 0.9)).toBeLessThan(0.12);
      expect(Math.abs(median(cold) - 0.9)).toBeGreaterThan(Math.abs(median(warm) - 0.9));
    },
  );
});

describe('the GP and prior observations', () => {
  it('fits its own trials alone once it has finished its start-up budget of them', () => {
    const prior = warmStartFrom(finishedSource(20), createSpace(space)).prior;
    const study = createStudy({ space, sampler: 'random', seed: 4 });
    run(study, 9, f);
    const gp = createGpSampler({ nCandidates: 64 });
    const ctx = (withPrior: boolean) => ({
      space: createSpace(space),
      trials: study.trials,
      number: study.trials.length,
      direction: 'minimize' as const,
      rng: new Rng(4, 'trial', study.trials.length),
      seed: 4,
      prior: withPrior ? prior : [],
    });
    // 9 own trials: the prior still shapes the ask.
    expect(gp.sample(ctx(true)).params).not.toEqual(gp.sample(ctx(false)).params);
    run(study, 1, f);
    expect(gp.sample(ctx(true))).toEqual(gp.sample(ctx(false)));
  });
});
