// Bayesian optimisation with a GP (Matérn-5/2 ARD) and log expected improvement, after Optuna's GPSampler:
// Sobol start-up trials; the objective warped (identity or Yeo-Johnson, chosen per ask by marginal
// likelihood, see output-warp.ts) and standardised; hyperparameters fitted by L-BFGS warm-started from the
// previous trial's fit (stored with that trial, so a reloaded study continues identically); pending trials
// conditioned in at a lie value (constant liar, or the posterior mean: Kriging believer); the acquisition
// maximised over random + local candidates followed by projected gradient ascent on the best few. When no
// fit is usable (non-finite values, a kernel matrix that stays singular with jitter) the ask falls back to
// TPE and says so in the trial's system record.
import { UnitEncoding } from '../encoding.ts';
import { GpPosterior, fitGp } from '../gp-model.ts';
import type { GpTheta } from '../gp-model.ts';
import { applyWarp, fitWarp, warpLogJacobian } from '../output-warp.ts';
import type { OutputWarp, WarpKind } from '../output-warp.ts';
import { dLogH, logH } from '../special.ts';
import type { Json, SampleContext, Sampler, Suggestion, TrialRecord } from '../types.ts';
import { minimiseSign } from '../types.ts';
import type { Rng } from '../../rng.ts';
import { createSobolSampler } from './sobol.ts';
import { createTpeSampler } from './tpe.ts';

export type PendingStrategy = 'best' | 'mean' | 'worst' | 'believer';
export const PENDING_STRATEGIES: readonly PendingStrategy[] = ['best', 'mean', 'worst', 'believer'];

export interface GpOptions {
  /** Trials drawn from the Sobol sequence before the GP takes over. Default 10. */
  nStartupTrials?: number;
  /** Random candidates scored before refinement. Default 1024 (fewer beyond 100 trials). */
  nCandidates?: number;
  /**
   * How the pending trials are imputed: the best, mean or worst observation so far (constant liar), or the
   * posterior mean at each (Kriging believer, the default).
   */
  constantLiar?: PendingStrategy;
  /** Output warps tried per ask. Default both: the identity and Yeo-Johnson. */
  warps?: readonly WarpKind[];
}

interface Acquisition {
  value: number;
  grad?: Float64Array;
}

/** The GP fitted to the complete trials under the chosen output warp. */
interface FittedGp {
  warp: OutputWarp;
  theta: GpTheta;
  /** Warped, standardised observations. */
  y: Float64Array;
}

const WARP_KINDS: readonly WarpKind[] = ['identity', 'yeo-johnson'];

export function createGpSampler(options: GpOptions = {}): Sampler {
  const nStartup = options.nStartupTrials ?? 10;
  const nCandidatesOpt = options.nCandidates ?? 1024;
  const liar = options.constantLiar ?? 'believer';
  const warps = options.warps ?? WARP_KINDS;
  if (!Number.isInteger(nStartup) || nStartup < 1)
    throw new Error(`gp sampler: nStartupTrials must be a positive integer (got ${nStartup})`);
  if (!Number.isInteger(nCandidatesOpt) || nCandidatesOpt < 1)
    throw new Error(`gp sampler: nCandidates must be a positive integer (got ${nCandidatesOpt})`);
  if (!PENDING_STRATEGIES.includes(liar))
    throw new Error(
      `gp sampler: constantLiar must be one of ${PENDING_STRATEGIES.join(', ')} (got ${JSON.stringify(liar)})`,
    );
  if (!Array.isArray(warps) || warps.length === 0 || !warps.every((w) => WARP_KINDS.includes(w)))
    throw new Error(
      `gp sampler: warps must be a non-empty list of ${WARP_KINDS.join(', ')} (got ${JSON.stringify(warps)})`,
    );
  const startup = createSobolSampler();
  const fallback = createTpeSampler({ nStartupTrials: nStartup });
  const fallBack = (ctx: SampleContext, reason: string, system: Record<string, Json> = {}): Suggestion => ({
    params: fallback.sample(ctx).params,
    system: { ...system, fallback: 'tpe', reason },
  });

  return {
    name: 'gp',
    sample(ctx: SampleContext): Suggestion {
      const complete = ctx.trials.filter((t) => t.state === 'complete' && Number.isFinite(t.value));
      if (complete.length < nStartup) return startup.sample(ctx);
      const pending = ctx.trials.filter((t) => t.state === 'running');
      const enc = new UnitEncoding(ctx.space);
      const dims = enc.dims;
      const n = complete.length;

      const sign = minimiseSign(ctx.direction);
      const raw = complete.map((t) => sign * (t.value as number));
      const x = new Float64Array(n * dims);
      complete.forEach((t, i) => enc.encode(t.params, x.subarray(i * dims, (i + 1) * dims)));
      const fit = fitObservations(x, raw, dims, warps, lastTheta(ctx.trials, dims), ctx.rng);
      if (!fit) return fallBack(ctx, 'no finite GP fit: the objective values overflow the standardisation');
      const { y, theta, warp } = fit;
      const system: Record<string, Json> = {
        gp: Array.from(theta),
        warp: warp.kind === 'identity' ? 'identity' : { kind: warp.kind, lambda: warp.lambda },
      };

      // Condition on the pending trials at the lie value so no one proposes their neighbourhood again.
      let yBest = Infinity;
      let yWorst = -Infinity;
      for (const v of y) [yBest, yWorst] = [Math.min(yBest, v), Math.max(yWorst, v)];
      const m = n + pending.length;
      const xAll = new Float64Array(m * dims);
      xAll.set(x);
      pending.forEach((t, i) => enc.encode(t.params, xAll.subarray((n + i) * dims, (n + i + 1) * dims)));
      const yAll = new Float64Array(m);
      yAll.set(y);
      if (pending.length > 0) {
        if (liar === 'believer') {
          const observed = GpPosterior.create(x, y, n, dims, theta);
          if (!observed) return fallBack(ctx, 'ill-conditioned kernel matrix even with jitter', system);
          for (let i = n; i < m; i++)
            yAll[i] = observed.predict(xAll.subarray(i * dims, (i + 1) * dims)).mean;
        } else {
          yAll.fill(liar === 'best' ? yBest : liar === 'worst' ? yWorst : 0, n);
        }
      }
      const gp = GpPosterior.create(xAll, yAll, m, dims, theta);
      if (!gp) return fallBack(ctx, 'ill-conditioned kernel matrix even with jitter', system);

      const next = maximizeLogEi(gp, enc, x, y, yBest, nCandidatesOpt, ctx.rng);
      return { params: enc.decode(next), system };
    },
  };
}

/**
 * The point maximising log expected improvement below yBest: random candidates plus perturbations of the
 * best observed points (x, y: the complete trials), projected gradient ascent on the best few, then one
 * sweep over each categorical's choices.
 */
function maximizeLogEi(
  gp: GpPosterior,
  enc: UnitEncoding,
  x: Float64Array,
  y: Float64Array,
  yBest: number,
  nCandidatesOpt: number,
  rng: Rng,
): Float64Array {
  const dims = enc.dims;
  const n = y.length;
  const m = gp.n;
  const gMean = new Float64Array(dims);
  const gVar = new Float64Array(dims);
  const acq = (p: Float64Array, withGrad: boolean): Acquisition => {
    const { mean: mu, variance } = withGrad ? gp.predict(p, gMean, gVar) : gp.predict(p);
    const sigma = Math.sqrt(variance);
    const z = (yBest - mu) / sigma;
    const lh = logH(z);
    const value = lh + Math.log(sigma);
    if (!withGrad) return { value };
    // log EI = log h(z) + log σ, z = (f* − μ)/σ.
    const dh = dLogH(z, lh);
    const grad = new Float64Array(dims);
    for (let d = 0; d < dims; d++) {
      const dSigma = gVar[d] / (2 * sigma);
      const dz = (-gMean[d] - z * dSigma) / sigma;
      grad[d] = dh * dz + dSigma / sigma;
    }
    return { value, grad };
  };

  // 1. Candidates: uniform draws, plus perturbations of the best observed points.
  // Scoring costs ~m²/2 + m·dims per candidate; keep the total near 5e6 multiply-adds.
  const nCand = Math.max(256, Math.min(nCandidatesOpt, Math.floor(5e6 / ((m * m) / 2 + m * dims))));
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => y[a] - y[b]);
  const candidates: Float64Array[] = [];
  for (let c = 0; c < nCand; c++) {
    const p = new Float64Array(dims);
    const local = c % 4 === 3; // a quarter of the budget near the incumbents
    if (local) p.set(x.subarray(order[c % Math.min(5, n)] * dims, (order[c % Math.min(5, n)] + 1) * dims));
    for (const { def, offset, width } of enc.slots) {
      if (def.kind === 'categorical') {
        if (local && rng.random() < 0.8) continue;
        p.fill(0, offset, offset + width);
        p[offset + rng.int(width)] = 1;
      } else if (local) {
        p[offset] = Math.min(1, Math.max(0, p[offset] + 0.05 * rng.normal()));
      } else {
        p[offset] = rng.random();
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
    const refined = refine(start.p, start.v, enc.continuous, refineIterations, (p) => acq(p, true));
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
 * Fit the GP under each warp and keep the one with the highest marginal likelihood of the raw values
 * (the warped values' log posterior plus the warp's log-Jacobian); undefined when none gives a finite fit.
 */
function fitObservations(
  x: Float64Array,
  raw: readonly number[],
  dims: number,
  kinds: readonly WarpKind[],
  warm: GpTheta | undefined,
  rng: Rng,
): FittedGp | undefined {
  const n = raw.length;
  let best: FittedGp | undefined;
  let bestScore = Infinity;
  for (const kind of kinds) {
    const warp = fitWarp(raw, kind);
    // A Yeo-Johnson λ near 1 is the identity again: not worth a second fit.
    if (kind === 'yeo-johnson' && kinds.includes('identity') && Math.abs(warp.lambda - 1) < 0.1) continue;
    const y = Float64Array.from(raw, (v) => applyWarp(warp, v));
    if (!y.every(Number.isFinite)) continue;
    const { theta, value } = fitGp(x, y, n, dims, {
      init: warm,
      restarts: n <= 40 ? 2 : 0,
      // Capped for latency: beyond ~100 points one new observation barely moves the warm-started θ.
      maxIterations: n <= 60 ? 50 : n <= 120 ? 15 : 4,
      rng,
    });
    const score = value - warpLogJacobian(warp, raw);
    if (Number.isFinite(score) && score < bestScore) [best, bestScore] = [{ warp, theta, y }, score];
  }
  return best;
}

/** Latest θ stored by this sampler with a matching dimension, for warm-starting the fit. */
function lastTheta(trials: readonly TrialRecord[], dims: number): Float64Array | undefined {
  for (let i = trials.length - 1; i >= 0; i--) {
    const g = trials[i].system.gp;
    if (Array.isArray(g) && g.length === dims + 2 && g.every((v) => typeof v === 'number'))
      return Float64Array.from(g as number[]);
  }
  return undefined;
}

function refine(
  start: Float64Array,
  startValue: number,
  coords: readonly number[],
  iterations: number,
  f: (p: Float64Array) => Acquisition,
): Float64Array {
  if (coords.length === 0) return start;
  let p = Float64Array.from(start);
  let cur = f(p);
  if (!Number.isFinite(cur.value)) return start;
  let value = Math.max(cur.value, startValue);
  let step = 0.05;
  for (let it = 0; it < iterations && step > 1e-5; it++) {
    const g = cur.grad as Float64Array;
    let gmax = 0;
    for (const c of coords) gmax = Math.max(gmax, Math.abs(g[c]));
    if (gmax < 1e-10) break;
    const q = Float64Array.from(p);
    for (const c of coords) q[c] = Math.min(1, Math.max(0, p[c] + (step * g[c]) / gmax));
    const next = f(q);
    if (next.value > value) {
      p = q;
      cur = next;
      value = next.value;
      step *= 1.5;
    } else {
      step *= 0.4;
    }
  }
  return p;
}
