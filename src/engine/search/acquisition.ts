// Acquisition functions for the GP sampler and their maximiser. An acquisition maps a point of the unit
// encoding to a score to maximise (and its gradient, for refinement): log expected improvement, log
// probability that a constraint is satisfied, and their sum (constrained log EI, as Optuna's GPSampler).
import type { UnitEncoding } from './encoding.ts';
import type { GpPosterior } from './gp-model.ts';
import { dLogH, logH, logNormCdf } from './special.ts';
import type { Rng } from '../rng.ts';

export interface Acquisition {
  value: number;
  grad?: Float64Array;
}
export type AcquisitionFn = (p: Float64Array, withGrad: boolean) => Acquisition;

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);

/** log EI below `yBest` under `gp`: log h(z) + log σ with z = (yBest − μ)/σ. */
export function logExpectedImprovement(gp: GpPosterior, yBest: number): AcquisitionFn {
  const dims = gp.dims;
  const gMean = new Float64Array(dims);
  const gVar = new Float64Array(dims);
  return (p, withGrad) => {
    const { mean: mu, variance } = withGrad ? gp.predict(p, gMean, gVar) : gp.predict(p);
    const sigma = Math.sqrt(variance);
    const z = (yBest - mu) / sigma;
    const lh = logH(z);
    const value = lh + Math.log(sigma);
    if (!withGrad) return { value };
    const dh = dLogH(z, lh);
    const grad = new Float64Array(dims);
    for (let d = 0; d < dims; d++) {
      const dSigma = gVar[d] / (2 * sigma);
      const dz = (-gMean[d] - z * dSigma) / sigma;
      grad[d] = dh * dz + dSigma / sigma;
    }
    return { value, grad };
  };
}

/** log P(f ≤ threshold) under `gp`: log Φ(z) with z = (threshold − μ)/σ (a constraint's feasibility). */
export function logProbabilityBelow(gp: GpPosterior, threshold: number): AcquisitionFn {
  const dims = gp.dims;
  const gMean = new Float64Array(dims);
  const gVar = new Float64Array(dims);
  return (p, withGrad) => {
    const { mean: mu, variance } = withGrad ? gp.predict(p, gMean, gVar) : gp.predict(p);
    const sigma = Math.sqrt(variance);
    const z = (threshold - mu) / sigma;
    const value = logNormCdf(z);
    if (!withGrad) return { value };
    const ratio = Math.exp(-0.5 * z * z - LOG_SQRT_2PI - value); // φ(z)/Φ(z), finite in both tails
    const grad = new Float64Array(dims);
    for (let d = 0; d < dims; d++) {
      const dSigma = gVar[d] / (2 * sigma);
      grad[d] = (ratio * (-gMean[d] - z * dSigma)) / sigma;
    }
    return { value, grad };
  };
}

/** The sum of several acquisitions (a product of the probabilities they are logs of). */
export function sumOf(terms: readonly AcquisitionFn[]): AcquisitionFn {
  if (terms.length === 1) return terms[0];
  return (p, withGrad) => {
    let value = 0;
    let grad: Float64Array | undefined;
    for (const term of terms) {
      const a = term(p, withGrad);
      value += a.value;
      if (a.grad) {
        grad ??= new Float64Array(a.grad.length);
        for (let d = 0; d < grad.length; d++) grad[d] += a.grad[d];
      }
    }
    return withGrad ? { value, grad } : { value };
  };
}

/** A box in the unit encoding: per coordinate, the lowest and highest value allowed. */
export interface Box {
  lo: Float64Array;
  hi: Float64Array;
}

/**
 * The box of half-width `halfWidth` around `center` in each numeric coordinate, clipped to [0, 1];
 * categorical coordinates keep their whole range (a one-hot block has no neighbourhood).
 */
export function boxAround(enc: UnitEncoding, center: ArrayLike<number>, halfWidth: number): Box {
  const lo = new Float64Array(enc.dims);
  const hi = new Float64Array(enc.dims).fill(1);
  for (const c of enc.continuous) {
    lo[c] = Math.max(0, center[c] - halfWidth);
    hi[c] = Math.min(1, center[c] + halfWidth);
  }
  return { lo, hi };
}

/**
 * The point maximising `acq`: random candidates plus perturbations of the incumbents (rows of x, best
 * first), projected gradient ascent on the best few, then one sweep over each categorical's choices.
 * `m` is the size of the GP the acquisition evaluates, which sets how many candidates are affordable.
 * With `box`, the numeric coordinates stay inside it (the GP sampler's local asks).
 */
export function maximizeAcquisition(
  acq: AcquisitionFn,
  enc: UnitEncoding,
  incumbents: readonly Float64Array[],
  m: number,
  nCandidatesOpt: number,
  rng: Rng,
  box: Box = { lo: new Float64Array(enc.dims), hi: new Float64Array(enc.dims).fill(1) },
): Float64Array {
  const dims = enc.dims;
  const { lo, hi } = box;
  // 1. Candidates: uniform draws, plus perturbations of the best observed points.
  // Scoring costs ~m²/2 + m·dims per candidate; keep the total near 5e6 multiply-adds.
  const nCand = Math.max(256, Math.min(nCandidatesOpt, Math.floor(5e6 / ((m * m) / 2 + m * dims))));
  const nLocal = Math.min(5, incumbents.length);
  const candidates: Float64Array[] = [];
  for (let c = 0; c < nCand; c++) {
    const p = new Float64Array(dims);
    const local = nLocal > 0 && c % 4 === 3; // a quarter of the budget near the incumbents
    if (local) p.set(incumbents[c % nLocal]);
    for (const { def, offset, width } of enc.slots) {
      if (def.kind === 'categorical') {
        if (local && rng.random() < 0.8) continue;
        p.fill(0, offset, offset + width);
        p[offset + rng.int(width)] = 1;
      } else if (local) {
        p[offset] = Math.min(hi[offset], Math.max(lo[offset], p[offset] + 0.05 * rng.normal()));
      } else {
        p[offset] = lo[offset] + (hi[offset] - lo[offset]) * rng.random();
      }
    }
    candidates.push(enc.canonicalize(p));
  }
  const scored = candidates.map((p) => ({ p, v: acq(p, false).value }));
  scored.sort((a, b) => b.v - a.v);

  // 2. Projected gradient ascent on the continuous coordinates of the best few.
  let best = scored[0];
  const nRefine = m > 100 ? 3 : 5;
  const refineIterations = m > 100 ? 20 : 30;
  for (const start of scored.slice(0, nRefine)) {
    const refined = refine(start.p, start.v, enc.continuous, box, refineIterations, (p) => acq(p, true));
    const rounded = enc.canonicalize(Float64Array.from(refined));
    const v = acq(rounded, false).value;
    if (v > best.v) best = { p: rounded, v };
  }
  // 3. One sweep over each categorical's choices at the winner.
  for (const { def, offset, width } of enc.slots) {
    if (def.kind !== 'categorical') continue;
    for (let k = 0; k < width; k++) {
      const p = Float64Array.from(best.p);
      p.fill(0, offset, offset + width);
      p[offset + k] = 1;
      enc.canonicalize(p);
      const v = acq(p, false).value;
      if (v > best.v) best = { p, v };
    }
  }
  return best.p;
}

/**
 * Gradient ascent from `start` over the continuous coordinates, kept in the box: Rprop (iRprop−), which
 * moves each coordinate by its own step (grown while its gradient keeps its sign, halved when it flips), so
 * a coordinate the acquisition barely depends on still converges (an acquisition's length scales can
 * differ by 100× between coordinates). Returns the best point evaluated.
 */
function refine(
  start: Float64Array,
  startValue: number,
  coords: readonly number[],
  { lo, hi }: Box,
  iterations: number,
  f: (p: Float64Array) => Acquisition,
): Float64Array {
  if (coords.length === 0) return start;
  const p = Float64Array.from(start);
  let cur = f(p);
  if (!Number.isFinite(cur.value)) return start;
  const best = Float64Array.from(p);
  let bestValue = Math.max(cur.value, startValue);
  const step = new Float64Array(p.length).fill(0.05);
  const previous = new Float64Array(p.length);
  for (let it = 0; it < iterations; it++) {
    const g = cur.grad as Float64Array;
    let moved = false;
    let flipped = false;
    for (const c of coords) {
      const agreement = g[c] * previous[c];
      if (agreement > 0) step[c] = Math.min(step[c] * 1.2, 0.5);
      else if (agreement < 0) step[c] *= 0.5;
      // After a sign change iRprop− waits one iteration before moving that coordinate again.
      previous[c] = agreement < 0 ? 0 : g[c];
      if (agreement < 0) flipped = true;
      if (agreement < 0 || g[c] === 0 || step[c] < 1e-6) continue;
      const next = Math.min(hi[c], Math.max(lo[c], p[c] + Math.sign(g[c]) * step[c]));
      moved ||= next !== p[c];
      p[c] = next;
    }
    if (!moved) {
      if (flipped) continue;
      break; // every coordinate at its bound, at a stationary point, or converged
    }
    cur = f(p);
    if (!Number.isFinite(cur.value)) break;
    if (cur.value > bestValue) {
      best.set(p);
      bestValue = cur.value;
    }
  }
  return best;
}
