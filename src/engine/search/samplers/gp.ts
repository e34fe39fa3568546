// Bayesian optimisation with a GP (Matérn-5/2 ARD) and log expected improvement, after Optuna's GPSampler:
// Sobol start-up trials; the objective warped (identity or Yeo-Johnson, chosen per ask by marginal
// likelihood, see output-warp.ts) and standardised; hyperparameters fitted by L-BFGS warm-started from the
// previous trial's fit (stored with that trial, so a reloaded study continues identically); pending trials
// conditioned in at a lie value (constant liar, or the posterior mean: Kriging believer); the acquisition
// maximised over random + local candidates followed by projected gradient ascent (Rprop) on the best few;
// every other ask searches only a box around the best trial (a local ask, see `localHalfWidth`; while
// trials are running, most asks are, each around a top trial no running one surrounds), and until twice the
// start-up trials are complete the global asks search a wider box around the best trial (`earlyHalfWidth`).
// When no fit is usable (non-finite values, a kernel matrix that stays singular with jitter) the ask falls
// back to TPE and says so in the trial's system record. With constraints, each constraint gets a GP of its
// own and the acquisition is log EI over the feasible trials plus the log probability of feasibility (only
// the latter while no trial is feasible).
// A warm-started study's prior observations (warm-start.ts) join the complete trials as observations: the
// source values and this study's values are each standardised on their own (a per-study offset and scale,
// since only the shape of the objective is expected to carry over) before the usual warp and fit, and they
// count towards the start-up trials. They guide only the first asks: once this study has finished as many
// trials as the start-up budget, the GP fits its own trials alone (in the warm-start benchmark, keeping
// them longer held the GP near the small model's optimum when the large model's had moved).
import { UnitEncoding } from '../encoding.ts';
import { GpPosterior, fitGp } from '../gp-model.ts';
import type { GpTheta } from '../gp-model.ts';
import { applyWarp, fitWarp, warpLogJacobian } from '../output-warp.ts';
import type { OutputWarp, WarpKind } from '../output-warp.ts';
import {
  boxAround,
  logExpectedImprovement,
  logProbabilityBelow,
  maximizeAcquisition,
  sumOf,
} from '../acquisition.ts';
import type { AcquisitionFn, Box } from '../acquisition.ts';
import type { Json, SampleContext, Sampler, Suggestion, TrialRecord } from '../types.ts';
import type { PriorObservation } from '../warm-start.ts';
import { constraintViolation, isFeasible, minimiseSign } from '../types.ts';
import type { Rng } from '../../rng.ts';
import { createSobolSampler } from './sobol.ts';
import { createTpeSampler } from './tpe.ts';

export type PendingStrategy = 'best' | 'mean' | 'worst' | 'believer';
export const PENDING_STRATEGIES: readonly PendingStrategy[] = ['best', 'mean', 'worst', 'believer'];

export interface GpOptions {
  /**
   * Trials drawn from the Sobol sequence before the GP takes over (complete and running ones, at least
   * half of them complete). Default 10.
   */
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
  /**
   * A local ask maximises the acquisition only within this half-width, per numeric coordinate of the unit
   * encoding, of a top trial; the others search the whole space. With no trial running, every other
   * model-guided ask (those with an odd number of trials before it) is local, around the best trial. 0
   * keeps every ask global. Default 0.2.
   */
  localHalfWidth?: number;
  /**
   * While fewer than twice `nStartupTrials` trials are complete, the global asks too search only within
   * this half-width of the best trial (per numeric coordinate of the unit encoding; 1 is the whole space).
   * With so few points in 5+ dimensions EI over the whole space favours its faces and corners, where the
   * posterior variance is largest. Default 0.35 (70 % of each axis).
   */
  earlyHalfWidth?: number;
  /**
   * While trials are running, an ask is local unless this many of them are local asks already, and its box
   * surrounds the best trial that no running local ask surrounds (recorded as `localCentre`). Default 3
   * (with 4 workers: three local asks in flight and one global). 0: no local ask while trials run.
   */
  maxLocalInFlight?: number;
}

/** The GP fitted to the complete trials under the chosen output warp. */
interface FittedGp {
  warp: OutputWarp;
  theta: GpTheta;
  /** Warped, standardised observations. */
  y: Float64Array;
}

const WARP_KINDS: readonly WarpKind[] = ['identity', 'yeo-johnson'];

/** What a trial's system record says about a GP ask that fell back to TPE, in words; undefined otherwise. */
export function fallbackNote(system: Readonly<Record<string, Json>>): string | undefined {
  if (system.fallback !== 'tpe') return undefined;
  return `sampled by TPE: ${typeof system.reason === 'string' ? system.reason : 'no usable GP fit'}`;
}

export function createGpSampler(options: GpOptions = {}): Sampler {
  const nStartup = options.nStartupTrials ?? 10;
  const nCandidatesOpt = options.nCandidates ?? 1024;
  const liar = options.constantLiar ?? 'believer';
  const warps = options.warps ?? WARP_KINDS;
  const localHalfWidth = options.localHalfWidth ?? 0.2;
  const earlyHalfWidth = options.earlyHalfWidth ?? 0.35;
  const maxLocalInFlight = options.maxLocalInFlight ?? 3;
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
  if (typeof localHalfWidth !== 'number' || !(localHalfWidth >= 0 && localHalfWidth <= 1))
    throw new Error(
      `gp sampler: localHalfWidth must be a number in [0, 1] (got ${JSON.stringify(localHalfWidth)})`,
    );
  if (typeof earlyHalfWidth !== 'number' || !(earlyHalfWidth > 0 && earlyHalfWidth <= 1))
    throw new Error(
      `gp sampler: earlyHalfWidth must be a number in (0, 1] (got ${JSON.stringify(earlyHalfWidth)})`,
    );
  if (!Number.isInteger(maxLocalInFlight) || maxLocalInFlight < 0)
    throw new Error(
      `gp sampler: maxLocalInFlight must be a non-negative integer (got ${JSON.stringify(maxLocalInFlight)})`,
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
      const own = ctx.trials.filter((t) => t.state === 'complete' && Number.isFinite(t.value));
      const prior = own.length < nStartup ? ctx.prior : [];
      const complete = [...priorTrials(prior, ctx.direction), ...own];
      const pending = ctx.trials.filter((t) => t.state === 'running');
      // The start-up budget counts pending trials too (with at least half of it complete), so parallel
      // workers do not spend extra trials on Sobol points while the first ones finish.
      const started = complete.length + pending.length;
      if (complete.length < Math.ceil(nStartup / 2) || started < nStartup) return startup.sample(ctx);
      const enc = new UnitEncoding(ctx.space);
      const dims = enc.dims;
      const n = complete.length;

      const sign = minimiseSign(ctx.direction);
      const raw =
        prior.length === 0
          ? complete.map((t) => sign * (t.value as number))
          : [
              ...standardised(prior.map((o) => o.loss)),
              ...standardised(own.map((t) => sign * (t.value as number))),
            ];
      const x = new Float64Array(n * dims);
      complete.forEach((t, i) => enc.encode(t.params, x.subarray(i * dims, (i + 1) * dims)));
      const fit = fitObservations(x, raw, dims, warps, lastTheta(ctx.trials, 'gp', dims), ctx.rng);
      if (!fit) return fallBack(ctx, 'no finite GP fit: the objective values overflow the standardisation');
      const { y, theta, warp } = fit;
      const system: Record<string, Json> = {
        gp: Array.from(theta),
        warp: warp.kind === 'identity' ? 'identity' : { kind: warp.kind, lambda: warp.lambda },
      };

      // Condition on the pending trials at the lie value so no one proposes their neighbourhood again.
      let yBest = Infinity;
      let yWorst = -Infinity;
      y.forEach((v, i) => {
        if (isFeasible(complete[i])) yBest = Math.min(yBest, v);
        yWorst = Math.max(yWorst, v);
      });
      const m = n + pending.length;
      const xAll = new Float64Array(m * dims);
      xAll.set(x);
      pending.forEach((t, i) => enc.encode(t.params, xAll.subarray((n + i) * dims, (n + i + 1) * dims)));
      const yAll = withPendingLies(liar, xAll, y, dims, theta, yBest, yWorst);
      if (!yAll) return fallBack(ctx, 'ill-conditioned kernel matrix even with jitter', system);
      const gp = GpPosterior.create(xAll, yAll, m, dims, theta);
      if (!gp) return fallBack(ctx, 'ill-conditioned kernel matrix even with jitter', system);

      const terms: AcquisitionFn[] = Number.isFinite(yBest) ? [logExpectedImprovement(gp, yBest)] : [];
      const feasibility = constraintModels(own, enc, warps, ctx.trials, ctx.rng);
      if (feasibility === 'unusable') return fallBack(ctx, 'no finite GP fit of a constraint', system);
      if (feasibility) {
        terms.push(...feasibility.terms);
        system.gpConstraints = feasibility.thetas;
      }
      // Incumbents for local candidates: the best feasible trials first, then the least infeasible.
      const ranked = complete
        .map((t, i) => ({ i, key: isFeasible(t) ? [0, y[i]] : [1, constraintViolation(t)] }))
        .sort((a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1])
        .map(({ i }) => i);
      const order = ranked.map((i) => x.subarray(i * dims, (i + 1) * dims));
      let box: Box | undefined;
      if (isLocalAsk(ctx.trials.length, pending, localHalfWidth, maxLocalInFlight)) {
        const centre = localCentre(ranked, complete, pending);
        system.localHalfWidth = localHalfWidth;
        system.localCentre = complete[centre].number;
        box = boxAround(enc, x.subarray(centre * dims, (centre + 1) * dims), localHalfWidth);
      } else if (n < 2 * nStartup && earlyHalfWidth < 1) {
        box = boxAround(enc, order[0], earlyHalfWidth);
      }
      const next = maximizeAcquisition(sumOf(terms), enc, order, m, nCandidatesOpt, ctx.rng, box);
      return { params: enc.decode(next), system };
    },
  };
}

/**
 * Whether an ask is local. Global EI in 5+ dimensions spends most asks on the corners, where the posterior
 * variance is largest; local asks refine around a top trial instead (as a trust region would).
 * Sequentially every other ask is local. With trials running, every ask is, up to `maxInFlight` local
 * asks running at once: each ask then learns from fewer complete trials and needs that exploitation more
 * (BENCHMARKS.md, "4 workers: three local asks in flight"). Depends only on the trial count and the
 * running trials' system records, so resume reproduces it.
 */
export function isLocalAsk(
  asked: number,
  pending: readonly TrialRecord[],
  halfWidth: number,
  maxInFlight: number,
): boolean {
  if (halfWidth <= 0) return false;
  if (pending.length === 0) return asked % 2 === 1;
  return pending.filter((t) => t.system.localHalfWidth !== undefined).length < maxInFlight;
}

/**
 * Index into `complete` of the trial a local ask's box surrounds: the best-ranked one (`ranked`, indices
 * best first) that no running local ask is centred on, else the best. Parallel boxes around one trial
 * crowd it even with the believer's imputed values; around the next best ones they refine other
 * incumbents, and a new best gets a box of its own at once.
 */
export function localCentre(
  ranked: readonly number[],
  complete: readonly TrialRecord[],
  pending: readonly TrialRecord[],
): number {
  const taken = new Set(pending.map((t) => t.system.localCentre));
  return ranked.find((i) => !taken.has(complete[i].number)) ?? ranked[0];
}

/**
 * Prior observations as complete trials (numbered below 0, so never mistaken for this study's), valued so
 * that sign · value is their loss.
 */
function priorTrials(
  prior: readonly PriorObservation[],
  direction: SampleContext['direction'],
): TrialRecord[] {
  const sign = minimiseSign(direction);
  return prior.map((o, i) => ({
    number: -1 - i,
    params: o.params,
    state: 'complete',
    value: sign * o.loss,
    intermediate: [],
    system: {},
  }));
}

/** Values shifted and scaled to mean 0 and standard deviation 1 (a constant list, or one value, to 0s). */
function standardised(values: readonly number[]): number[] {
  const n = values.length;
  const mean = values.reduce((a, v) => a + v, 0) / Math.max(n, 1);
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / Math.max(n, 1));
  return values.map((v) => (sd > 0 && Number.isFinite(sd) ? (v - mean) / sd : v - mean));
}

/**
 * The observations y followed by one imputed value per pending point (the rows of xAll after y's): the
 * posterior mean there (Kriging believer), or the best, worst or mean (0) observation. Null when the GP
 * of the observations cannot be factorised.
 */
function withPendingLies(
  liar: PendingStrategy,
  xAll: Float64Array,
  y: Float64Array,
  dims: number,
  theta: GpTheta,
  yBest: number,
  yWorst: number,
): Float64Array | null {
  const n = y.length;
  const m = xAll.length / dims;
  const yAll = new Float64Array(m);
  yAll.set(y);
  if (m === n) return yAll;
  if (liar === 'believer') {
    const observed = GpPosterior.create(xAll.subarray(0, n * dims), y, n, dims, theta);
    if (!observed) return null;
    for (let i = n; i < m; i++) yAll[i] = observed.predict(xAll.subarray(i * dims, (i + 1) * dims)).mean;
  } else {
    // With no feasible trial yet, "best" is the best observation of any.
    const best = Number.isFinite(yBest) ? yBest : Math.min(...y);
    yAll.fill(liar === 'best' ? best : liar === 'worst' ? yWorst : 0, n);
  }
  return yAll;
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

/** Latest θ stored under `key` (entry `index` of a list of θs) with a matching dimension, for warm starts. */
function lastTheta(
  trials: readonly TrialRecord[],
  key: 'gp' | 'gpConstraints',
  dims: number,
  index?: number,
): Float64Array | undefined {
  const isTheta = (g: Json | undefined): g is number[] =>
    Array.isArray(g) && g.length === dims + 2 && g.every((v) => typeof v === 'number');
  for (let i = trials.length - 1; i >= 0; i--) {
    const stored = trials[i].system[key];
    const g = index === undefined ? stored : Array.isArray(stored) ? stored[index] : undefined;
    if (isTheta(g)) return Float64Array.from(g);
  }
  return undefined;
}

/**
 * One GP per constraint over the complete trials that report it, each giving log P(constraint ≤ 0) (the
 * threshold 0 mapped through the constraint's own warp); null when no trial has constraints, 'unusable'
 * when a constraint's values allow no finite fit.
 */
function constraintModels(
  complete: readonly TrialRecord[],
  enc: UnitEncoding,
  warps: readonly WarpKind[],
  trials: readonly TrialRecord[],
  rng: Rng,
): { terms: AcquisitionFn[]; thetas: number[][] } | null | 'unusable' {
  const constrained = complete.filter((t) => t.constraints !== undefined);
  if (constrained.length === 0) return null;
  const dims = enc.dims;
  const n = constrained.length;
  const x = new Float64Array(n * dims);
  constrained.forEach((t, i) => enc.encode(t.params, x.subarray(i * dims, (i + 1) * dims)));
  const terms: AcquisitionFn[] = [];
  const thetas: number[][] = [];
  const count = (constrained[0].constraints as readonly number[]).length;
  for (let j = 0; j < count; j++) {
    const values = constrained.map((t) => (t.constraints as readonly number[])[j]);
    const fit = fitObservations(x, values, dims, warps, lastTheta(trials, 'gpConstraints', dims, j), rng);
    const gp = fit && GpPosterior.create(x, fit.y, n, dims, fit.theta);
    if (!fit || !gp) return 'unusable';
    terms.push(logProbabilityBelow(gp, applyWarp(fit.warp, 0)));
    thetas.push(Array.from(fit.theta));
  }
  return { terms, thetas };
}
