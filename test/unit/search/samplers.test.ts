import { describe, expect, it } from 'vitest';
import { createStudy } from '../../../src/engine/search/index.ts';
import type { Params, SamplerName, SpaceSpec, Study } from '../../../src/engine/search/index.ts';
import { UnitEncoding } from '../../../src/engine/search/encoding.ts';
import { enumerateGrid, gridSize } from '../../../src/engine/search/samplers/grid.ts';
import { createSpace } from '../../../src/engine/search/space.ts';

const mixed: SpaceSpec = {
  x: { type: 'float', low: -5, high: 10 },
  lr: { type: 'float', low: 1e-5, high: 1e-2, log: true },
  n: { type: 'int', low: 1, high: 8 },
  r: { type: 'categorical', choices: [4, 8, 16] },
  alpha: { type: 'derived', from: 'r', scale: 2 },
  scheduler: { type: 'categorical', choices: ['cosine', 'constant'] },
  min_lr: { type: 'float', low: 0, high: 0.5, condition: { param: 'scheduler', in: ['cosine'] } },
};

function objective(p: Params): number {
  const x = p.x as number;
  const lr = Math.log10(p.lr as number);
  return (
    (x - 1) ** 2 +
    (lr + 3) ** 2 +
    Math.abs((p.n as number) - 3) +
    (p.r === 8 ? 0 : 1) +
    ((p.min_lr as number) ?? 0.3)
  );
}

/** Run `finished` trials to completion, then ask `pending` more without telling. */
function run(
  sampler: SamplerName,
  seed: number,
  finished: number,
  pending: number,
): { study: Study; asked: Params[] } {
  const study = createStudy({ space: mixed, sampler, seed });
  const asked: Params[] = [];
  for (let i = 0; i < finished; i++) {
    const t = study.ask();
    asked.push(t.params);
    study.tell(t, objective(t.params));
  }
  for (let i = 0; i < pending; i++) asked.push(study.ask().params);
  return { study, asked };
}

const ALL: SamplerName[] = ['random', 'grid', 'sobol', 'tpe', 'gp', 'auto'];

describe.each(ALL)('sampler contract: %s', (sampler) => {
  it('is reproducible with the same seed and differs with another', () => {
    const a = run(sampler, 11, 13, 3).asked;
    const b = run(sampler, 11, 13, 3).asked;
    expect(b).toEqual(a);
    const c = run(sampler, 12, 13, 3).asked;
    expect(c).not.toEqual(a);
  });

  it('keeps every suggestion inside the space, with conditionals and derived params resolved', () => {
    const { study } = run(sampler, 3, 14, 2);
    const space = createSpace(mixed);
    for (const t of study.trials) {
      expect(t.params.alpha).toBe(2 * (t.params.r as number));
      expect('min_lr' in t.params).toBe(t.params.scheduler === 'cosine');
      const x = t.params.x as number;
      expect(x >= -5 && x <= 10).toBe(true);
      expect(Number.isInteger(t.params.n)).toBe(true);
      expect(space.sampled.every((d) => d.condition || t.params[d.name] !== undefined)).toBe(true);
    }
  });

  it('does not propose near-duplicates while trials are pending', () => {
    const { asked } = run(sampler, 5, 12, 4);
    const enc = new UnitEncoding(createSpace(mixed));
    const pts = asked.map((p) => enc.encode(p));
    for (let i = 12; i < pts.length; i++) {
      for (let j = 0; j < i; j++) {
        let d2 = 0;
        for (let k = 0; k < enc.dims; k++) d2 += (pts[i][k] - pts[j][k]) ** 2;
        expect(Math.sqrt(d2), `trial ${i} vs ${j}`).toBeGreaterThan(1e-3);
      }
    }
  });
});

const branin = (p: Params): number => {
  const x = p.x as number;
  const y = p.y as number;
  const b = 5.1 / (4 * Math.PI ** 2);
  return (y - b * x * x + (5 / Math.PI) * x - 6) ** 2 + 10 * (1 - 1 / (8 * Math.PI)) * Math.cos(x) + 10;
};
const BRANIN_MIN = 0.397887357729738;
const braninSpace: SpaceSpec = {
  x: { type: 'float', low: -5, high: 10 },
  y: { type: 'float', low: 0, high: 15 },
};

// A 4-D problem with a log-scaled and an integer parameter; optimum 0 at lr = 1e-3, n = 3, a = b = 0.6.
const mixedSpace: SpaceSpec = {
  lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
  n: { type: 'int', low: 1, high: 16 },
  a: { type: 'float', low: 0, high: 1 },
  b: { type: 'float', low: 0, high: 1 },
};
const mixedObjective = (p: Params): number =>
  (Math.log10(p.lr as number) + 3) ** 2 +
  0.05 * ((p.n as number) - 3) ** 2 +
  4 * ((p.a as number) - 0.6) ** 2 +
  4 * ((p.b as number) - 0.6) ** 2;

function medianRegret(
  sampler: SamplerName,
  space: SpaceSpec,
  f: (p: Params) => number,
  trials: number,
  opt: number,
): number {
  const regrets: number[] = [];
  for (const seed of [1, 2, 3, 4, 5]) {
    const study = createStudy({ space, sampler, seed });
    for (let i = 0; i < trials; i++) {
      const t = study.ask();
      study.tell(t, f(t.params));
    }
    regrets.push((study.bestValue as number) - opt);
  }
  return regrets.sort((a, b) => a - b)[2];
}

describe('model-based samplers beat random search at a small budget (5 fixed seeds, median regret)', () => {
  it('on Branin after 30 trials', () => {
    const random = medianRegret('random', braninSpace, branin, 30, BRANIN_MIN);
    const tpe = medianRegret('tpe', braninSpace, branin, 30, BRANIN_MIN);
    const gp = medianRegret('gp', braninSpace, branin, 30, BRANIN_MIN);
    expect(random).toBeGreaterThan(0.3);
    expect(tpe).toBeLessThan(random / 2);
    expect(gp).toBeLessThan(0.01);
  });

  it('on a log/int/continuous space after 40 trials', () => {
    const random = medianRegret('random', mixedSpace, mixedObjective, 40, 0);
    const tpe = medianRegret('tpe', mixedSpace, mixedObjective, 40, 0);
    const gp = medianRegret('gp', mixedSpace, mixedObjective, 40, 0);
    expect(tpe).toBeLessThan(random / 2);
    expect(gp).toBeLessThan(random / 4);
  }, 30_000); // 15 GP fits of two output warps each, on a shared 2-core machine
});

describe('grid sampler', () => {
  it('visits every grid point exactly once before repeating', () => {
    const space: SpaceSpec = {
      c: { type: 'categorical', choices: ['a', 'b'] },
      n: { type: 'int', low: 1, high: 3 },
      x: { type: 'float', low: 0, high: 1, condition: { param: 'c', in: ['a'] } },
    };
    const size = enumerateGrid(createSpace(space)).length;
    expect(size).toBe(3 * 5 + 3); // c=a: 3 ints × 5 floats; c=b: 3 ints
    expect(gridSize(createSpace(space))).toBe(size);
    expect(gridSize(createSpace(space), {}, 4)).toBe(5); // counting stops past the limit
    const study = createStudy({ space, sampler: 'grid', seed: 4 });
    const seen = new Set<string>();
    for (let i = 0; i < size; i++) {
      const t = study.ask();
      seen.add(JSON.stringify(t.params));
      if (i % 2 === 0) study.tell(t, 0); // the rest stay pending and still hold their point
    }
    expect(seen.size).toBe(size);
  });
});

describe('direction and auto', () => {
  it.each(['tpe', 'gp'] as SamplerName[])('%s maximises when asked to', (sampler) => {
    const study = createStudy({ space: braninSpace, sampler, direction: 'maximize', seed: 1 });
    for (let i = 0; i < 30; i++) {
      const t = study.ask();
      study.tell(t, -branin(t.params));
    }
    expect(-(study.bestValue as number) - BRANIN_MIN).toBeLessThan(sampler === 'gp' ? 0.05 : 1);
  });

  it('uses the GP for small numeric spaces and TPE for conditional ones', () => {
    const numeric = createStudy({ space: braninSpace, sampler: 'auto', seed: 1 });
    const conditional = createStudy({ space: mixed, sampler: 'auto', seed: 1 });
    for (const study of [numeric, conditional]) {
      for (let i = 0; i < 12; i++) {
        const t = study.ask();
        study.tell(t, study === numeric ? branin(t.params) : objective(t.params));
      }
    }
    // The GP leaves its fitted hyperparameters with each trial it samples; TPE leaves nothing.
    expect(numeric.trials[11].system.gp).toBeDefined();
    expect(numeric.trials[11].system.warp).toBeDefined(); // the robust GP: its output warp chosen per ask
    expect(numeric.trials[5].system).toEqual({}); // Sobol warm-up
    expect(conditional.trials[11].system.gp).toBeUndefined();
  });
});
