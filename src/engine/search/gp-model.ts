// Gaussian-process regression for Bayesian optimisation, shaped after Optuna's `_gp` module: Matérn-5/2
// kernel with one inverse squared length scale per input dimension (ARD), a signal scale and observation
// noise, fitted by maximising the log marginal likelihood plus Optuna's weak priors with L-BFGS on
// log-parameters and analytic gradients. Inputs live in [0,1]^D and outputs are standardised by the caller.
import { cholesky, choleskyInverse, solveLower, solveUpper } from './linalg.ts';
import { minimizeLbfgs } from './lbfgs.ts';
import type { Rng } from '../rng.ts';

const SQRT5 = Math.sqrt(5);
const LOG_2PI = Math.log(2 * Math.PI);
export const MIN_NOISE = 1e-6;
/** Largest diagonal jitter tried before a kernel matrix is declared ill-conditioned (outputs are standardised). */
export const MAX_JITTER = 1e-2;

/**
 * Hyperparameters as one vector θ (D + 2):
 * θ[0..D) = log inverse squared length scales, θ[D] = log signal scale, θ[D+1] = log(noise − MIN_NOISE).
 */
export type GpTheta = Float64Array;

export function defaultTheta(dims: number): GpTheta {
  const theta = new Float64Array(dims + 2);
  theta[dims + 1] = Math.log(0.01);
  return theta;
}

/** Matérn-5/2 as a function of squared distance, and its derivative with respect to r². */
function matern52(r2: number): number {
  const r = Math.sqrt(r2);
  return (1 + SQRT5 * r + (5 / 3) * r2) * Math.exp(-SQRT5 * r);
}
function matern52dr2(r2: number): number {
  const r = Math.sqrt(r2);
  return -(5 / 6) * (1 + SQRT5 * r) * Math.exp(-SQRT5 * r);
}

/** −(log marginal likelihood + log prior) and its gradient for observations (x: n × D row-major, y). */
export function negLogPosterior(
  x: Float64Array,
  y: Float64Array,
  n: number,
  dims: number,
  theta: GpTheta,
  grad: Float64Array | null,
  pairDiff2?: Float64Array,
): number {
  const isl = new Float64Array(dims);
  for (let j = 0; j < dims; j++) isl[j] = Math.exp(theta[j]);
  const scale = Math.exp(theta[dims]);
  const noiseExtra = Math.exp(theta[dims + 1]);
  const noise = MIN_NOISE + noiseExtra;
  if (!Number.isFinite(scale) || !Number.isFinite(noise) || isl.some((v) => !Number.isFinite(v) || v === 0))
    return Infinity;
  const diff2 = pairDiff2 ?? pairSquaredDiffs(x, n, dims);
  // k[p] = Matérn(r²) for each pair p = (i > j) in row order, plus the diagonal separately.
  // Per pair p = (i > j) in row order keep r and e^(−√5·r): the kernel and its derivative share them.
  const npairs = (n * (n - 1)) / 2;
  const rs = new Float64Array(npairs);
  const es = new Float64Array(npairs);
  const kmat = new Float64Array(n * n);
  for (let i = 0, p = 0; i < n; i++) {
    kmat[i * n + i] = scale + noise;
    for (let j = 0; j < i; j++, p++) {
      let s = 0;
      const base = p * dims;
      for (let d = 0; d < dims; d++) s += isl[d] * diff2[base + d];
      const r = Math.sqrt(s);
      const e = Math.exp(-SQRT5 * r);
      rs[p] = r;
      es[p] = e;
      const k = scale * (1 + SQRT5 * r + (5 / 3) * s) * e;
      kmat[i * n + j] = k;
      kmat[j * n + i] = k;
    }
  }
  const l = cholesky(kmat, n);
  if (!l) return Infinity;
  const alpha = solveUpper(l, n, solveLower(l, n, Float64Array.from(y)));
  let nll = 0;
  for (let i = 0; i < n; i++) nll += 0.5 * y[i] * alpha[i] + Math.log(l[i * n + i]);
  nll += 0.5 * n * LOG_2PI;
  // Optuna's default prior on (inverse squared length scales, kernel scale, noise).
  let logPrior = 0;
  for (let d = 0; d < dims; d++) logPrior -= 0.1 / isl[d] + 0.1 * isl[d];
  logPrior += Math.log(scale) - scale; // Gamma(2, 1)
  logPrior += 0.1 * Math.log(noise) - 30 * noise; // Gamma(1.1, 30)
  const value = nll - logPrior;
  if (!grad) return value;

  // ∂LML/∂θ = ½·tr(W·∂K/∂θ) with W = ααᵀ − K⁻¹.
  const kinv = choleskyInverse(l, n);
  grad.fill(0);
  let gScale = 0;
  let gNoise = 0;
  for (let i = 0, p = 0; i < n; i++) {
    gNoise += alpha[i] * alpha[i] - kinv[i * n + i];
    gScale += 0.5 * (alpha[i] * alpha[i] - kinv[i * n + i]) * scale;
    for (let j = 0; j < i; j++, p++) {
      const w = alpha[i] * alpha[j] - kinv[i * n + j]; // counted twice (ij and ji) → factor 2·½ = 1
      const r = rs[p];
      const e = es[p];
      gScale += w * scale * (1 + SQRT5 * r + (5 / 3) * r * r) * e;
      const c = -w * scale * (5 / 6) * (1 + SQRT5 * r) * e; // w·∂k/∂r²
      const base = p * dims;
      for (let d = 0; d < dims; d++) grad[d] += c * isl[d] * diff2[base + d];
    }
  }
  gNoise *= 0.5 * noiseExtra;
  for (let d = 0; d < dims; d++) grad[d] = -grad[d] - (0.1 / isl[d] - 0.1 * isl[d]);
  grad[dims] = -gScale - (1 - scale);
  grad[dims + 1] = -gNoise - (0.1 / noise - 30) * noiseExtra;
  return value;
}

export function pairSquaredDiffs(x: Float64Array, n: number, dims: number): Float64Array {
  const out = new Float64Array(((n * (n - 1)) / 2) * dims);
  for (let i = 0, p = 0; i < n; i++) {
    for (let j = 0; j < i; j++, p++) {
      for (let d = 0; d < dims; d++) {
        const t = x[i * dims + d] - x[j * dims + d];
        out[p * dims + d] = t * t;
      }
    }
  }
  return out;
}

export interface FitOptions {
  /** Warm start (e.g. the previous fit's θ); tried first. */
  init?: GpTheta;
  /** Random restarts; with any, the default θ is tried too (it always is without a warm start). */
  restarts: number;
  maxIterations: number;
  /** L-BFGS stops when the gradient's max-norm is below this. Default 1e-2 (as Optuna). */
  gradTolerance?: number;
  rng: Rng;
}

/** Fit θ by L-BFGS from several starts, keeping the best. */
export function fitTheta(
  x: Float64Array,
  y: Float64Array,
  n: number,
  dims: number,
  opts: FitOptions,
): GpTheta {
  return fitGp(x, y, n, dims, opts).theta;
}

/**
 * As `fitTheta`, also returning the minimised −(log marginal likelihood + log prior); Infinity when no
 * start gave a finite value (an ill-conditioned kernel matrix or non-finite observations).
 */
export function fitGp(
  x: Float64Array,
  y: Float64Array,
  n: number,
  dims: number,
  opts: FitOptions,
): { theta: GpTheta; value: number } {
  const diff2 = pairSquaredDiffs(x, n, dims);
  const starts: GpTheta[] = [];
  const warm = opts.init !== undefined && opts.init.length === dims + 2;
  if (warm) starts.push(Float64Array.from(opts.init as GpTheta));
  if (!warm || opts.restarts > 0) starts.push(defaultTheta(dims));
  for (let r = 0; r < opts.restarts; r++) {
    const t = defaultTheta(dims);
    for (let d = 0; d < dims; d++) t[d] = opts.rng.uniform(-2.5, 2.5);
    t[dims] = opts.rng.uniform(-1, 1);
    t[dims + 1] = opts.rng.uniform(-9, -2);
    starts.push(t);
  }
  let best = starts[0];
  let bestValue = Infinity;
  const f = (t: Float64Array, g: Float64Array): number => {
    // Keep the search in a sane box: length scales within e^±9, noise above e^-14.
    for (let i = 0; i < t.length; i++) if (Math.abs(t[i]) > 12 && i !== dims + 1) return Infinity;
    if (t[dims + 1] < -16 || t[dims + 1] > 3) return Infinity;
    return negLogPosterior(x, y, n, dims, t, g, diff2);
  };
  for (const [i, start] of starts.entries()) {
    const res = minimizeLbfgs(f, start, {
      // A warm start is already close: small first step, no wasted backtracking.
      initialStep: warm && i === 0 ? 0.05 : 1,
      maxIterations: opts.maxIterations,
      gradTolerance: opts.gradTolerance ?? 1e-2,
      // 1e-4 nats of log marginal likelihood is far below anything that moves the acquisition.
      valueTolerance: 1e-4,
    });
    if (res.value < bestValue) {
      bestValue = res.value;
      best = res.x;
    }
  }
  return { theta: best, value: bestValue };
}

/** The posterior of a GP with fixed θ, conditioned on (x, y). */
export class GpPosterior {
  readonly n: number;
  readonly dims: number;
  readonly #x: Float64Array;
  readonly #isl: Float64Array;
  readonly #scale: number;
  readonly #l: Float64Array;
  readonly #alpha: Float64Array;
  // Scratch buffers, reused by `predict`.
  readonly #k: Float64Array;
  readonly #v: Float64Array;
  readonly #dk: Float64Array;

  private constructor(
    x: Float64Array,
    n: number,
    dims: number,
    theta: GpTheta,
    l: Float64Array,
    y: Float64Array,
  ) {
    this.n = n;
    this.dims = dims;
    this.#x = x;
    this.#isl = new Float64Array(dims);
    for (let d = 0; d < dims; d++) this.#isl[d] = Math.exp(theta[d]);
    this.#scale = Math.exp(theta[dims]);
    this.#l = l;
    this.#alpha = solveUpper(l, n, solveLower(l, n, Float64Array.from(y)));
    this.#k = new Float64Array(n);
    this.#v = new Float64Array(n);
    this.#dk = new Float64Array(n);
  }

  /** Returns null when the kernel matrix cannot be factorised even with jitter up to `MAX_JITTER`. */
  static create(
    x: Float64Array,
    y: Float64Array,
    n: number,
    dims: number,
    theta: GpTheta,
  ): GpPosterior | null {
    const isl = new Float64Array(dims);
    for (let d = 0; d < dims; d++) isl[d] = Math.exp(theta[d]);
    const scale = Math.exp(theta[dims]);
    const noise = MIN_NOISE + Math.exp(theta[dims + 1]);
    for (let jitter = 0; jitter <= MAX_JITTER * 1.001; jitter = jitter === 0 ? 1e-8 : jitter * 10) {
      const kmat = new Float64Array(n * n);
      for (let i = 0; i < n; i++) {
        kmat[i * n + i] = scale + noise + jitter;
        for (let j = 0; j < i; j++) {
          let s = 0;
          for (let d = 0; d < dims; d++) {
            const t = x[i * dims + d] - x[j * dims + d];
            s += isl[d] * t * t;
          }
          const k = scale * matern52(s);
          kmat[i * n + j] = k;
          kmat[j * n + i] = k;
        }
      }
      const l = cholesky(kmat, n);
      if (l) return new GpPosterior(x, n, dims, theta, l, y);
    }
    return null;
  }

  /**
   * Posterior mean and variance of the latent function at `p` (length dims). When `gradMean`/`gradVar`
   * are given they receive ∂μ/∂p and ∂σ²/∂p.
   */
  predict(
    p: ArrayLike<number>,
    gradMean?: Float64Array,
    gradVar?: Float64Array,
  ): { mean: number; variance: number } {
    const { n, dims } = this;
    const x = this.#x;
    const isl = this.#isl;
    const k = this.#k;
    const dk = this.#dk;
    let mean = 0;
    for (let i = 0; i < n; i++) {
      let s = 0;
      const base = i * dims;
      for (let d = 0; d < dims; d++) {
        const t = p[d] - x[base + d];
        s += isl[d] * t * t;
      }
      k[i] = this.#scale * matern52(s);
      if (gradMean) dk[i] = this.#scale * matern52dr2(s);
      mean += k[i] * this.#alpha[i];
    }
    const v = this.#v;
    v.set(k);
    solveLower(this.#l, n, v);
    let kv = 0;
    for (let i = 0; i < n; i++) kv += v[i] * v[i];
    const variance = Math.max(this.#scale - kv, 1e-12);
    if (gradMean && gradVar) {
      solveUpper(this.#l, n, v); // v = K⁻¹k
      gradMean.fill(0);
      gradVar.fill(0);
      for (let i = 0; i < n; i++) {
        const base = i * dims;
        const cm = dk[i] * this.#alpha[i];
        const cv = dk[i] * v[i];
        for (let d = 0; d < dims; d++) {
          const dr2 = 2 * isl[d] * (p[d] - x[base + d]); // ∂r²/∂p_d
          gradMean[d] += cm * dr2;
          gradVar[d] -= 2 * cv * dr2;
        }
      }
      if (variance <= 1e-12) gradVar.fill(0);
    }
    return { mean, variance };
  }
}
