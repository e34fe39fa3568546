import { describe, expect, it } from 'vitest';
import { GpPosterior, fitTheta, negLogPosterior } from '../../../src/engine/search/gp-model.ts';
import { minimizeLbfgs } from '../../../src/engine/search/lbfgs.ts';
import { SOBOL_MAX_DIMS, SobolSequence, directionNumbers } from '../../../src/engine/search/qmc.ts';
import { Rng } from '../../../src/engine/rng.ts';
import {
  dLogH,
  logH,
  logNormCdf,
  logNormCdfDiff,
  normCdf,
  normPdf,
} from '../../../src/engine/search/special.ts';

describe('Rng', () => {
  it('is a pure function of its labels', () => {
    const a = new Rng(7, 'trial', 3);
    const b = new Rng(7, 'trial', 3);
    const xs = Array.from({ length: 5 }, () => a.random());
    expect(Array.from({ length: 5 }, () => b.random())).toEqual(xs);
    expect(new Rng(7, 'trial', 4).random()).not.toBe(xs[0]);
    expect(new Rng(8, 'trial', 3).random()).not.toBe(xs[0]);
  });

  it('draws uniform and normal variates with the right moments', () => {
    const rng = new Rng(1);
    let s = 0;
    let s2 = 0;
    let n2 = 0;
    const N = 20000;
    for (let i = 0; i < N; i++) {
      const u = rng.random();
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
      s += u;
      const z = rng.normal();
      s2 += z;
      n2 += z * z;
    }
    expect(s / N).toBeCloseTo(0.5, 2);
    expect(Math.abs(s2 / N)).toBeLessThan(0.03);
    expect(n2 / N).toBeCloseTo(1, 1);
  });
});

describe('Sobol', () => {
  it(`has valid direction numbers for all ${SOBOL_MAX_DIMS} dimensions`, () => {
    expect(SOBOL_MAX_DIMS).toBeGreaterThanOrEqual(21);
    for (let d = 0; d < SOBOL_MAX_DIMS; d++) {
      const v = directionNumbers(d);
      // m_k = V_k >> (31 − k) must be odd and < 2^(k+1).
      for (let k = 0; k < 32; k++) expect((v[k] >>> (31 - k)) & 1).toBe(1);
    }
  });

  for (const scramble of [null, 12345]) {
    it(`stratifies every coordinate (scramble=${scramble})`, () => {
      const seq = new SobolSequence(SOBOL_MAX_DIMS, scramble);
      const m = 6;
      const pts = Array.from({ length: 1 << m }, (_, i) => seq.point(i));
      for (let d = 0; d < SOBOL_MAX_DIMS; d++) {
        const cells = new Set(pts.map((p) => Math.floor(p[d] * (1 << m))));
        expect(cells.size).toBe(1 << m);
      }
      // First two dimensions form a (0, m, 2)-net: one point per elementary 2^-a × 2^-(m−a) box.
      for (let a = 0; a <= m; a++) {
        const boxes = new Set(
          pts.map((p) => `${Math.floor(p[0] * 2 ** a)},${Math.floor(p[1] * 2 ** (m - a))}`),
        );
        expect(boxes.size).toBe(1 << m);
      }
    });
  }

  it('scrambling depends on the seed', () => {
    expect(new SobolSequence(3, 1).point(5)).not.toEqual(new SobolSequence(3, 2).point(5));
    expect(new SobolSequence(3, 1).point(5)).toEqual(new SobolSequence(3, 1).point(5));
  });
});

describe('special functions', () => {
  it('matches the direct formula where it is safe and stays finite far in the tail', () => {
    for (const z of [-0.9, -0.5, 0, 0.7, 2, 5]) {
      expect(logH(z)).toBeCloseTo(Math.log(normPdf(z) + z * normCdf(z)), 6);
    }
    for (const z of [-3, -8, -15]) {
      const direct = Math.log(normPdf(z) + z * normCdf(z));
      expect(Math.abs(logH(z) - direct)).toBeLessThan(1e-3 * Math.abs(direct));
    }
    // Continuous across the branch points, monotone, finite at z = −1e4 where h underflows.
    for (const b of [-1, -20]) expect(logH(b - 1e-9)).toBeCloseTo(logH(b + 1e-9), 3);
    let prev = -Infinity;
    for (let z = -60; z < 5; z += 0.25) {
      const v = logH(z);
      expect(v).toBeGreaterThan(prev);
      prev = v;
    }
    expect(Number.isFinite(logH(-1e4))).toBe(true);
    expect(logH(-1e4)).toBeLessThan(-4e7);
  });

  it('has the derivative Φ(z)/h(z)', () => {
    for (const z of [-30, -10, -2, -0.5, 0.3, 3]) {
      const fd = (logH(z + 1e-5) - logH(z - 1e-5)) / 2e-5;
      expect(dLogH(z, logH(z))).toBeCloseTo(fd, 3);
    }
  });

  it('computes log Φ and log(Φ(b) − Φ(a)) in both tails', () => {
    expect(logNormCdf(0)).toBeCloseTo(Math.log(0.5), 6);
    expect(logNormCdf(-40)).toBeCloseTo(-800 - Math.log(40) - 0.5 * Math.log(2 * Math.PI), 2);
    expect(logNormCdfDiff(-1, 1)).toBeCloseTo(Math.log(0.682689492), 6);
    expect(Math.exp(logNormCdfDiff(8, 9) + 8 * 8 * 0.5)).toBeGreaterThan(0);
    expect(Number.isFinite(logNormCdfDiff(30, 31))).toBe(true);
  });
});

describe('L-BFGS', () => {
  it('minimises the Rosenbrock function', () => {
    const res = minimizeLbfgs(
      (x, g) => {
        const a = 1 - x[0];
        const b = x[1] - x[0] * x[0];
        g[0] = -2 * a - 400 * x[0] * b;
        g[1] = 200 * b;
        return a * a + 100 * b * b;
      },
      Float64Array.from([-1.2, 1]),
      { maxIterations: 200, gradTolerance: 1e-8 },
    );
    expect(res.value).toBeLessThan(1e-8);
    expect(res.x[0]).toBeCloseTo(1, 3);
  });
});

describe('GP model', () => {
  const rng = new Rng(5);
  const n = 14;
  const dims = 3;
  const x = Float64Array.from({ length: n * dims }, () => rng.random());
  const y = Float64Array.from({ length: n }, (_, i) => Math.sin(6 * x[i * dims]) + 0.3 * x[i * dims + 1]);

  it('has analytic marginal-likelihood gradients equal to finite differences', () => {
    const theta = Float64Array.from([0.3, -0.5, 1.1, 0.2, -3]);
    const g = new Float64Array(theta.length);
    negLogPosterior(x, y, n, dims, theta, g);
    for (let i = 0; i < theta.length; i++) {
      const tp = Float64Array.from(theta);
      const tm = Float64Array.from(theta);
      tp[i] += 1e-6;
      tm[i] -= 1e-6;
      const fd = (negLogPosterior(x, y, n, dims, tp, null) - negLogPosterior(x, y, n, dims, tm, null)) / 2e-6;
      expect(g[i]).toBeCloseTo(fd, 4);
    }
  });

  it('fits length scales that find the irrelevant dimension and interpolates the data', () => {
    const theta = fitTheta(x, y, n, dims, { restarts: 2, maxIterations: 100, rng: new Rng(1) });
    // Inverse squared length scale of the unused 3rd input is far below that of the sine input.
    expect(theta[2]).toBeLessThan(theta[0] - 1);
    const gp = GpPosterior.create(x, y, n, dims, theta);
    expect(gp).not.toBeNull();
    const p = gp as GpPosterior;
    for (let i = 0; i < n; i++)
      expect(p.predict(x.subarray(i * dims, (i + 1) * dims)).mean).toBeCloseTo(y[i], 1);
  });

  it('has predictive gradients equal to finite differences', () => {
    const gp = GpPosterior.create(x, y, n, dims, Float64Array.from([0.5, 0.1, -1, 0, -4])) as GpPosterior;
    const p = Float64Array.from([0.3, 0.6, 0.2]);
    const gm = new Float64Array(dims);
    const gv = new Float64Array(dims);
    gp.predict(p, gm, gv);
    for (let d = 0; d < dims; d++) {
      const pp = Float64Array.from(p);
      const pm = Float64Array.from(p);
      pp[d] += 1e-6;
      pm[d] -= 1e-6;
      const a = gp.predict(pp);
      const b = gp.predict(pm);
      expect(gm[d]).toBeCloseTo((a.mean - b.mean) / 2e-6, 4);
      expect(gv[d]).toBeCloseTo((a.variance - b.variance) / 2e-6, 4);
    }
  });
});
