// Tree-structured Parzen Estimator with Optuna's defaults: random start-up (delegated to the random
// sampler), γ(n) = min(⌈0.1·n⌉, 25), 24 candidates from l(x) ranked by log l(x) − log g(x). Unconditional
// parameters are modelled jointly (multivariate TPE); a conditional parameter, once its condition holds,
// gets a univariate TPE over the trials where it was present (Optuna's fallback outside the intersection
// space). Pruned trials rank after complete ones (deeper and better first); running trials always go to
// the "bad" group (Optuna's constant_liar), so parallel workers do not pile onto the same region. With
// constraints, infeasible trials rank after every feasible and pruned one (Optuna's constrained TPE).
// A warm-started study's prior observations (warm-start.ts) count towards the start-up trials and are
// split into good/bad by the same γ rule among themselves (only their ranks carry over), then join the two
// densities down-weighted: each weighs PRIOR_OBSERVATION_WEIGHT · 10 / (10 + own finished trials).
import { isActive } from '../space.ts';
import type { Params, SampledDef } from '../space.ts';
import type { SampleContext, Sampler, Suggestion, TrialRecord } from '../types.ts';
import type { PriorObservation } from '../warm-start.ts';
import { constraintViolation, isFeasible, minimiseSign } from '../types.ts';
import { ParzenEstimator, defaultWeights } from './parzen.ts';
import { createRandomSampler } from './random.ts';
import type { Rng } from '../../rng.ts';

export interface TpeOptions {
  nStartupTrials?: number;
  nEiCandidates?: number;
  /** Treat running trials as bad observations. Default true. */
  constantLiar?: boolean;
}

export const defaultGamma = (n: number): number => Math.min(Math.ceil(0.1 * n), 25);

/** Weight of one prior observation in the densities before this study has finished any trial. */
export const PRIOR_OBSERVATION_WEIGHT = 0.5;

/** Weight of each prior observation once `finished` of this study's own trials have finished. */
export const priorWeight = (finished: number): number => (PRIOR_OBSERVATION_WEIGHT * 10) / (10 + finished);

export function createTpeSampler(options: TpeOptions = {}): Sampler {
  const nStartup = options.nStartupTrials ?? 10;
  const nCandidates = options.nEiCandidates ?? 24;
  const constantLiar = options.constantLiar ?? true;
  if (!Number.isInteger(nStartup) || nStartup < 0)
    throw new Error(`tpe sampler: nStartupTrials must be a non-negative integer (got ${nStartup})`);
  if (!Number.isInteger(nCandidates) || nCandidates < 1)
    throw new Error(`tpe sampler: nEiCandidates must be a positive integer (got ${nCandidates})`);
  if (typeof constantLiar !== 'boolean') throw new Error('tpe sampler: constantLiar must be a boolean');
  const random = createRandomSampler();

  return {
    name: 'tpe',
    sample(ctx: SampleContext): Suggestion {
      const finished = ctx.trials.filter(isFinished);
      if (finished.length + ctx.prior.length < nStartup) return random.sample(ctx);
      const sign = minimiseSign(ctx.direction);
      const running = constantLiar ? ctx.trials.filter((t) => t.state === 'running') : [];
      const params: Params = {};
      const joint = ctx.space.sampled.filter((d) => d.condition === undefined);
      const prior = splitPrior(ctx.prior, priorWeight(finished.length));
      if (joint.length > 0)
        Object.assign(params, sampleGroup(joint, finished, running, sign, nCandidates, ctx.rng, prior));
      for (const def of ctx.space.sampled) {
        if (def.condition === undefined || !isActive(def, params)) continue;
        const has = (t: TrialRecord): boolean => t.params[def.name] !== undefined;
        Object.assign(
          params,
          sampleGroup([def], finished.filter(has), running.filter(has), sign, nCandidates, ctx.rng),
        );
      }
      return { params };
    },
  };
}

/** Prior observations split by the γ rule among themselves, each with the given weight. */
interface PriorSplit {
  below: readonly Params[];
  above: readonly Params[];
  weight: number;
}

function splitPrior(prior: readonly PriorObservation[], weight: number): PriorSplit {
  const ranked = prior
    .map((o, i) => ({ o, i }))
    .sort((a, b) => a.o.loss - b.o.loss || a.i - b.i)
    .map(({ o }) => o.params);
  const nBelow = defaultGamma(ranked.length);
  return { below: ranked.slice(0, nBelow), above: ranked.slice(nBelow), weight };
}

function isFinished(t: TrialRecord): boolean {
  if (t.state === 'complete') return Number.isFinite(t.value);
  return t.state === 'pruned';
}

/**
 * Sort key for the split, as Optuna's constrained TPE: feasible complete trials by value, then pruned ones
 * by (deepest step, best last value), then infeasible ones by their total constraint violation.
 */
function rankKey(t: TrialRecord, sign: number): [number, number, number] {
  if (t.state === 'complete')
    return isFeasible(t) ? [0, 0, sign * (t.value as number)] : [3, 0, constraintViolation(t)];
  const last = t.intermediate[t.intermediate.length - 1];
  return last ? [1, -last[0], sign * last[1]] : [2, 0, 0];
}

function sampleGroup(
  defs: readonly SampledDef[],
  finished: readonly TrialRecord[],
  running: readonly TrialRecord[],
  sign: number,
  nCandidates: number,
  rng: Rng,
  prior: PriorSplit = { below: [], above: [], weight: 0 },
): Params {
  const keyed = finished.map((t) => ({ t, key: rankKey(t, sign) }));
  keyed.sort(
    (a, b) => a.key[0] - b.key[0] || a.key[1] - b.key[1] || a.key[2] - b.key[2] || a.t.number - b.t.number,
  );
  const nBelow = defaultGamma(finished.length);
  const byNumber = (a: TrialRecord, b: TrialRecord): number => a.number - b.number;
  const below = keyed
    .slice(0, nBelow)
    .map((k) => k.t)
    .sort(byNumber);
  const above = [...keyed.slice(nBelow).map((k) => k.t), ...running].sort(byNumber);
  const priorWeights = (n: number): number[] => new Array<number>(n).fill(prior.weight);
  const l = new ParzenEstimator(
    defs,
    [...below.map((t) => t.params), ...prior.below],
    [...defaultWeights(below.length), ...priorWeights(prior.below.length)],
  );
  const g = new ParzenEstimator(
    defs,
    [...above.map((t) => t.params), ...prior.above],
    [...defaultWeights(above.length), ...priorWeights(prior.above.length)],
  );
  let best: Params = {};
  let bestScore = -Infinity;
  for (let c = 0; c < nCandidates; c++) {
    const x = l.sample(rng);
    const score = l.logPdf(x) - g.logPdf(x);
    if (score > bestScore || c === 0) {
      bestScore = score;
      best = x;
    }
  }
  return best;
}
