// Output transformations for the GP: the observations (in minimisation form) are mapped by a
// rank-preserving warp and standardised before the GP sees them, so that a few huge values (a diverged
// run's loss, a cliff in the objective) do not flatten everything else. Candidates are the identity and a
// Yeo-Johnson power transform (after a robust pre-scaling by median and interquartile range) whose λ is
// the maximum-likelihood one under an i.i.d. Gaussian; the GP sampler picks between them by the GP's
// marginal likelihood plus the log-Jacobian of the warp, which puts both on the scale of the raw values.

export type WarpKind = 'identity' | 'yeo-johnson';

/** A fitted warp: z = (yj_λ((y − center) / scale) − mean) / sd, or without yj_λ for the identity. */
export interface OutputWarp {
  readonly kind: WarpKind;
  /** Yeo-Johnson exponent (1 for the identity). */
  readonly lambda: number;
  readonly center: number;
  readonly scale: number;
  readonly mean: number;
  readonly sd: number;
}

const LAMBDA_LOW = -3;
const LAMBDA_HIGH = 3;

/** Yeo-Johnson power transform: monotone increasing in y for every λ, identity at λ = 1. */
export function yeoJohnson(y: number, lambda: number): number {
  if (y >= 0) return Math.abs(lambda) < 1e-12 ? Math.log1p(y) : Math.expm1(lambda * Math.log1p(y)) / lambda;
  const mu = 2 - lambda;
  return Math.abs(mu) < 1e-12 ? -Math.log1p(-y) : -Math.expm1(mu * Math.log1p(-y)) / mu;
}

/** log of dyj/dy (always finite: the transform is strictly increasing). */
export function yeoJohnsonLogDerivative(y: number, lambda: number): number {
  return y >= 0 ? (lambda - 1) * Math.log1p(y) : (1 - lambda) * Math.log1p(-y);
}

function meanSd(v: ArrayLike<number>): { mean: number; sd: number } {
  const n = v.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += v[i];
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (v[i] - mean) ** 2;
  const sd = Math.sqrt(ss / n);
  // A constant column standardises to zeros (sd 1), never to NaN.
  return { mean, sd: sd > 1e-300 && Number.isFinite(sd) ? sd : 1 };
}

function quantile(sorted: readonly number[], q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(sorted.length - 1, lo + 1);
  return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo]);
}

/** Median and interquartile range (falling back to the standard deviation, then 1, when the IQR is 0). */
function robustScale(y: ArrayLike<number>): { center: number; scale: number } {
  const sorted = Array.from(y).sort((a, b) => a - b);
  const center = quantile(sorted, 0.5);
  const iqr = quantile(sorted, 0.75) - quantile(sorted, 0.25);
  const scale = iqr > 0 ? iqr : meanSd(y).sd;
  return { center, scale: scale > 0 && Number.isFinite(scale) ? scale : 1 };
}

/** Profile log-likelihood of λ for i.i.d. Gaussian transformed values (Box and Cox's criterion). */
function profileLogLikelihood(u: Float64Array, lambda: number): number {
  const t = Float64Array.from(u, (v) => yeoJohnson(v, lambda));
  const { sd } = meanSd(t);
  let logJ = 0;
  for (const v of u) logJ += yeoJohnsonLogDerivative(v, lambda);
  return -u.length * Math.log(sd) + logJ;
}

/** Maximum-likelihood λ on [−3, 3]: a coarse grid, then golden-section search around its best point. */
export function fitYeoJohnsonLambda(u: Float64Array): number {
  const step = 0.25;
  let best = 1;
  let bestValue = profileLogLikelihood(u, 1);
  for (let l = LAMBDA_LOW; l <= LAMBDA_HIGH + 1e-9; l += step) {
    const v = profileLogLikelihood(u, l);
    if (v > bestValue) [best, bestValue] = [l, v];
  }
  let a = Math.max(LAMBDA_LOW, best - step);
  let b = Math.min(LAMBDA_HIGH, best + step);
  const g = (Math.sqrt(5) - 1) / 2;
  let c = b - g * (b - a);
  let d = a + g * (b - a);
  let fc = profileLogLikelihood(u, c);
  let fd = profileLogLikelihood(u, d);
  for (let it = 0; it < 40 && b - a > 1e-4; it++) {
    if (fc > fd) {
      [b, d, fd] = [d, c, fc];
      c = b - g * (b - a);
      fc = profileLogLikelihood(u, c);
    } else {
      [a, c, fc] = [c, d, fd];
      d = a + g * (b - a);
      fd = profileLogLikelihood(u, d);
    }
  }
  const lambda = fc > fd ? c : d;
  return Math.max(fc, fd) > bestValue ? lambda : best;
}

/** Fit a warp of the given kind to the observations y (minimisation form, all finite). */
export function fitWarp(y: ArrayLike<number>, kind: WarpKind): OutputWarp {
  const { center, scale } = robustScale(y);
  const u = Float64Array.from(y, (v) => (v - center) / scale);
  const lambda = kind === 'identity' ? 1 : fitYeoJohnsonLambda(u);
  const { mean, sd } = meanSd(kind === 'identity' ? u : u.map((v) => yeoJohnson(v, lambda)));
  return { kind, lambda, center, scale, mean, sd };
}

/** The warped, standardised value of one observation. */
export function applyWarp(w: OutputWarp, y: number): number {
  const u = (y - w.center) / w.scale;
  return ((w.kind === 'identity' ? u : yeoJohnson(u, w.lambda)) - w.mean) / w.sd;
}

/**
 * Σ log dz/dy over the observations, up to a term common to every warp fitted on the same y (the
 * pre-scaling): adding it to a log likelihood of z gives one of y, so warps can be compared.
 */
export function warpLogJacobian(w: OutputWarp, y: ArrayLike<number>): number {
  let s = -y.length * Math.log(w.sd);
  if (w.kind === 'yeo-johnson')
    for (let i = 0; i < y.length; i++) s += yeoJohnsonLogDerivative((y[i] - w.center) / w.scale, w.lambda);
  return s;
}
