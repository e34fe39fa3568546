import { describe, expect, it } from 'vitest';
import { boxAround, maximizeAcquisition } from '../../../src/engine/search/acquisition.ts';
import type { AcquisitionFn } from '../../../src/engine/search/acquisition.ts';
import { UnitEncoding } from '../../../src/engine/search/encoding.ts';
import { createStudy } from '../../../src/engine/search/index.ts';
import type { Params, SamplerSpec, SpaceSpec, Study } from '../../../src/engine/search/index.ts';
import type { TrialRecord } from '../../../src/engine/search/types.ts';
import { createSpace } from '../../../src/engine/search/space.ts';
import { Rng } from '../../../src/engine/rng.ts';

const space: SpaceSpec = {
  a: { type: 'float', low: 0, high: 1 },
  b: { type: 'float', low: -5, high: 10 },
  c: { type: 'categorical', choices: ['x', 'y', 'z'] },
  d: { type: 'float', low: 1e-4, high: 1, log: true },
};
const enc = new UnitEncoding(createSpace(space));

/**
 * A known acquisition surface: a badly scaled concave quadratic in the numeric coordinates (weights 1 to
 * 400) with its maximum at `peak`, plus a bonus of 1 for the categorical's second choice.
 */
function quadratic(peak: readonly number[]): AcquisitionFn {
  const weights = [1, 400, 0, 0, 0, 20];
  return (p, withGrad) => {
    let value = p[enc.slots[2].offset + 1];
    const grad = new Float64Array(enc.dims);
    for (const c of enc.continuous) {
      value -= weights[c] * (p[c] - peak[c]) ** 2;
      grad[c] = -2 * weights[c] * (p[c] - peak[c]);
    }
    return withGrad ? { value, grad } : { value };
  };
}

describe('acquisition maximiser', () => {
  const peak = [0.62, 0.137, 0, 0, 0, 0.81];
  const incumbents = [Float64Array.from([0.1, 0.9, 1, 0, 0, 0.2])];

  it('finds the known optimum of a badly scaled surface, categorical included', () => {
    for (const seed of [1, 2, 3]) {
      const p = maximizeAcquisition(quadratic(peak), enc, incumbents, 20, 1024, new Rng(seed));
      for (const c of enc.continuous)
        expect(Math.abs(p[c] - peak[c]), `seed ${seed}, coord ${c}`).toBeLessThan(0.02);
      expect(Array.from(p.subarray(2, 5))).toEqual([0, 1, 0]);
    }
  });

  it('stays in the box it is given and finds the best point there (the clipped optimum)', () => {
    // The separable quadratic's maximum over a box is its peak clipped to the box.
    const box = boxAround(enc, Float64Array.from([0.3, 0.5, 0, 0, 0, 0.5]), 0.2);
    const expected = [0.5, 0.3, 0, 0, 0, 0.7];
    const p = maximizeAcquisition(quadratic(peak), enc, incumbents, 20, 1024, new Rng(4), box);
    for (const c of enc.continuous) {
      expect(p[c]).toBeGreaterThanOrEqual(box.lo[c]);
      expect(p[c]).toBeLessThanOrEqual(box.hi[c]);
      expect(Math.abs(p[c] - expected[c]), `coord ${c}`).toBeLessThan(0.01);
    }
    expect(Array.from(p.subarray(2, 5))).toEqual([0, 1, 0]);
  });

  it('builds a box clipped to the unit cube that leaves categorical coordinates free', () => {
    const box = boxAround(enc, Float64Array.from([0.05, 0.95, 1, 0, 0, 0.5]), 0.2);
    expect(Array.from(box.lo)).toEqual([0, 0.75, 0, 0, 0, 0.3]);
    expect(Array.from(box.hi).map((v) => +v.toFixed(12))).toEqual([0.25, 1, 1, 1, 1, 0.7]);
  });
});

describe('GP local asks', () => {
  const box5: SpaceSpec = Object.fromEntries(
    Array.from({ length: 5 }, (_, i) => [`x${i}`, { type: 'float', low: -5, high: 10 }]),
  );
  const enc5 = new UnitEncoding(createSpace(box5));
  // Zakharov: unimodal, badly scaled (a quadratic plus the 4th power of a weighted sum), 0 at the origin.
  const zakharov = (p: Params): number => {
    const x = Object.values(p) as number[];
    const s2 = x.reduce((a, v, i) => a + 0.5 * (i + 1) * v, 0);
    return x.reduce((a, v) => a + v * v, 0) + s2 ** 2 + s2 ** 4;
  };

  it('searches every other ask within the half-width of the best trial so far, and says so', () => {
    const study = createStudy({ space: box5, sampler: 'gp', seed: 3 });
    for (let i = 0; i < 18; i++) {
      const t = study.ask();
      const before = study.trials.slice(0, t.number).filter((r) => r.state === 'complete');
      const system = study.trial(t.number).system;
      if (t.number >= 10 && t.number % 2 === 1) {
        expect(system.localHalfWidth, `trial ${t.number}`).toBe(0.2);
        const best = before.reduce((a, r) => ((r.value as number) < (a.value as number) ? r : a));
        const center = enc5.encode(best.params);
        const p = enc5.encode(t.params);
        for (let d = 0; d < 5; d++) expect(Math.abs(p[d] - center[d])).toBeLessThanOrEqual(0.2 + 1e-9);
      } else {
        expect(system.localHalfWidth, `trial ${t.number}`).toBeUndefined();
      }
      study.tell(t, zakharov(t.params));
    }
    const global = createStudy({ space: box5, sampler: { type: 'gp', localHalfWidth: 0 }, seed: 3 });
    for (let i = 0; i < 12; i++) {
      const t = global.ask();
      global.tell(t, zakharov(t.params));
    }
    expect(global.trials.every((t) => t.system.localHalfWidth === undefined)).toBe(true);
  }, 30_000);

  it('keeps the global asks within the early half-width of the best trial until 20 trials are complete', () => {
    const study = createStudy({ space: box5, sampler: 'gp', seed: 4 });
    let outside = 0;
    for (let i = 0; i < 26; i++) {
      const t = study.ask();
      const before = study.trials.slice(0, t.number).filter((r) => r.state === 'complete');
      if (t.number >= 10 && study.trial(t.number).system.localHalfWidth === undefined) {
        const best = before.reduce((a, r) => ((r.value as number) < (a.value as number) ? r : a));
        const center = enc5.encode(best.params);
        const p = enc5.encode(t.params);
        const distance = Math.max(...Array.from(p, (v, d) => Math.abs(v - center[d])));
        if (t.number < 20) expect(distance, `trial ${t.number}`).toBeLessThanOrEqual(0.35 + 1e-9);
        else if (distance > 0.35 + 1e-9) outside++;
      }
      study.tell(t, zakharov(t.params));
    }
    // From 20 complete trials on, the global asks search the whole space again.
    expect(outside).toBeGreaterThan(0);
  }, 30_000);

  /** 4 workers on Zakharov: each tell (oldest first) followed by an ask; `check` sees every model-guided ask. */
  function fourWorkers(
    sampler: SamplerSpec,
    asks: number,
    check: (t: TrialRecord, running: readonly TrialRecord[], study: Study) => void,
  ): void {
    const study = createStudy({ space: box5, sampler, seed: 5 });
    const running = [study.ask(), study.ask(), study.ask(), study.ask()];
    for (let i = 0; i < asks; i++) {
      const done = running.shift() as (typeof running)[number];
      study.tell(done, zakharov(done.params));
      const before = running.map((r) => study.trial(r.number));
      const t = study.ask();
      running.push(t);
      const record = study.trial(t.number);
      if (record.system.gp !== undefined) check(record, before, study);
    }
  }

  it('with trials running, asks locally until three local asks are in flight', () => {
    const seen = { local: 0, global: 0 };
    fourWorkers('gp', 16, (t, running) => {
      const inFlight = running.filter((r) => r.system.localHalfWidth !== undefined).length;
      expect(t.system.localHalfWidth !== undefined, `trial ${t.number}`).toBe(inFlight < 3);
      seen[t.system.localHalfWidth !== undefined ? 'local' : 'global']++;
    });
    expect(seen.local).toBeGreaterThan(0);
    expect(seen.global).toBeGreaterThan(0);
  }, 30_000);

  it('centres each parallel local ask on the best trial no running local ask surrounds', () => {
    let checked = 0;
    fourWorkers('gp', 16, (t, running, study) => {
      if (t.system.localHalfWidth === undefined) return;
      const taken = new Set(
        running.filter((r) => r.system.localCentre !== undefined).map((r) => r.system.localCentre),
      );
      const free = study.trials
        .filter((r) => r.state === 'complete' && r.number < t.number && !taken.has(r.number))
        .reduce((a, r) => ((r.value as number) < (a.value as number) ? r : a));
      expect(t.system.localCentre, `trial ${t.number}`).toBe(free.number);
      const centre = enc5.encode(free.params);
      const p = enc5.encode(t.params);
      for (let d = 0; d < 5; d++) expect(Math.abs(p[d] - centre[d])).toBeLessThanOrEqual(0.2 + 1e-9);
      if (taken.size > 0) checked++;
    });
    expect(checked).toBeGreaterThan(0); // some were made beside other running local asks
  }, 30_000);

  it('makes no local ask while trials run with maxLocalInFlight 0', () => {
    fourWorkers({ type: 'gp', maxLocalInFlight: 0 }, 8, (t) => {
      expect(t.system.localHalfWidth, `trial ${t.number}`).toBeUndefined();
    });
  }, 30_000);

  it('validates maxLocalInFlight, naming it', () => {
    for (const bad of [-1, 1.5, Number.NaN, '2' as never])
      expect(() => createStudy({ space: box5, sampler: { type: 'gp', maxLocalInFlight: bad } })).toThrow(
        /maxLocalInFlight must be a non-negative integer/,
      );
  });

  it('validates localHalfWidth and earlyHalfWidth, naming them', () => {
    for (const bad of [-0.1, 1.5, Number.NaN, '0.2' as never])
      expect(() => createStudy({ space: box5, sampler: { type: 'gp', localHalfWidth: bad } })).toThrow(
        /localHalfWidth must be a number in \[0, 1\]/,
      );
    for (const bad of [0, -0.1, 1.5, Number.NaN, '0.3' as never])
      expect(() => createStudy({ space: box5, sampler: { type: 'gp', earlyHalfWidth: bad } })).toThrow(
        /earlyHalfWidth must be a number in \(0, 1\]/,
      );
  });
});
