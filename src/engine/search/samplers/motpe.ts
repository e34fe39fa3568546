// Multi-objective TPE, as Optuna's TPESampler does it for a study with several directions: the "good" group is
// filled by non-domination rank (the Pareto front first, then the front of the rest, …) and the rank that
// does not fit whole is tie-broken by greedy hypervolume subset selection; each good trial is weighted in
// l(x) by its hypervolume contribution among the good ones (normalised to the largest, EPS off the front).
// Everything else is TPE's (tpe.ts): γ(n) = min(⌈0.1·n⌉, 25), random start-up trials, running trials in the
// "bad" group (constant liar), a joint estimator over the unconditional parameters and a univariate one for
// each active conditional parameter. With constraints, infeasible trials come after every feasible one,
// ordered by total violation, and weigh EPS in l(x) (Optuna's constrained MOTPE).
import { isActive } from '../space.ts';
import type { Params, SampledDef } from '../space.ts';
import type { Direction, SampleContext, Sampler, Suggestion, TrialRecord } from '../types.ts';
import { constraintViolation, isFeasible, lossVector, minimiseSign } from '../types.ts';
import {
  greedyHypervolumeSubset,
  hypervolume,
  hypervolumeContributions,
  nonDominatedRanks,
  paretoFront,
  referencePoint,
} from '../pareto.ts';
import { ParzenEstimator, defaultWeights } from './parzen.ts';
import { createRandomSampler } from './random.ts';
import { defaultGamma } from './tpe.ts';
import type { TpeOptions } from './tpe.ts';
import type { Rng } from '../../rng.ts';

const EPS = 1e-12;

export function createMotpeSampler(options: TpeOptions = {}): Sampler {
  const nStartup = options.nStartupTrials ?? 10;
  const nCandidates = options.nEiCandidates ?? 24;
  const constantLiar = options.constantLiar ?? true;
  if (!Number.isInteger(nStartup) || nStartup < 0)
    throw new Error(`tpe sampler: nStartupTrials must be a non-negative integer (got ${nStartup})`);
  if (!Number.isInteger(nCandidates) || nCandidates < 1)
    throw new Error(`tpe sampler: nEiCandidates must be a positive integer (got ${nCandidates})`);
  const random = createRandomSampler();

  return {
    name: 'motpe',
    sample(ctx: SampleContext): Suggestion {
      const directions = ctx.directions ?? [ctx.direction];
      const finished = ctx.trials.filter(
        (t) => (t.state === 'complete' && Number.isFinite(t.value)) || t.state === 'pruned',
      );
      if (finished.length < nStartup) return random.sample(ctx);
      const running = constantLiar ? ctx.trials.filter((t) => t.state === 'running') : [];
      const params: Params = {};
      const joint = ctx.space.sampled.filter((d) => d.condition === undefined);
      const group = (defs: readonly SampledDef[], has: (t: TrialRecord) => boolean): Params =>
        sampleGroup(defs, finished.filter(has), running.filter(has), directions, nCandidates, ctx.rng);
      if (joint.length > 0)
        Object.assign(
          params,
          group(joint, () => true),
        );
      for (const def of ctx.space.sampled) {
        if (def.condition === undefined || !isActive(def, params)) continue;
        Object.assign(
          params,
          group([def], (t) => t.params[def.name] !== undefined),
        );
      }
      return { params };
    },
  };
}

/** The good trials with their weights in l(x), and the bad ones (running ones included). */
export interface MotpeSplit {
  below: TrialRecord[];
  belowWeights: number[];
  above: TrialRecord[];
}

/**
 * Optuna's _split_trials for several objectives: feasible complete trials split by rank and hypervolume, then
 * pruned ones (deepest, then best first objective), then infeasible ones (least violation), `nBelow` in all.
 */
export function splitMultiObjective(
  finished: readonly TrialRecord[],
  running: readonly TrialRecord[],
  directions: readonly Direction[],
  nBelow: number,
): MotpeSplit {
  const complete = finished.filter((t) => t.state === 'complete' && isFeasible(t));
  const pruned = finished.filter((t) => t.state === 'pruned');
  const infeasible = finished.filter((t) => t.state === 'complete' && !isFeasible(t));
  const [goodComplete, badComplete] = splitComplete(complete, directions, Math.min(nBelow, complete.length));
  let left = nBelow - goodComplete.length;
  const sign = minimiseSign(directions[0]);
  const prunedKey = (t: TrialRecord): [number, number] => {
    const last = t.intermediate.at(-1);
    return last ? [-last[0], Number.isNaN(last[1]) ? Infinity : sign * last[1]] : [1, 0];
  };
  const prunedSorted = [...pruned].sort((a, b) => {
    const [ka, kb] = [prunedKey(a), prunedKey(b)];
    return ka[0] - kb[0] || ka[1] - kb[1] || a.number - b.number;
  });
  const goodPruned = prunedSorted.slice(0, Math.max(0, left));
  left -= goodPruned.length;
  const infeasibleSorted = [...infeasible].sort(
    (a, b) => constraintViolation(a) - constraintViolation(b) || a.number - b.number,
  );
  const goodInfeasible = infeasibleSorted.slice(0, Math.max(0, left));
  const byNumber = (a: TrialRecord, b: TrialRecord): number => a.number - b.number;
  const below = [...goodComplete, ...goodPruned, ...goodInfeasible].sort(byNumber);
  const above = [
    ...badComplete,
    ...prunedSorted.slice(goodPruned.length),
    ...infeasibleSorted.slice(goodInfeasible.length),
    ...running,
  ].sort(byNumber);
  return { below, belowWeights: weightsBelow(below, directions), above };
}

/** Optuna's _split_complete_trials_multi_objective: whole non-domination ranks, then an HSSP tie-break. */
function splitComplete(
  trials: readonly TrialRecord[],
  directions: readonly Direction[],
  nBelow: number,
): [TrialRecord[], TrialRecord[]] {
  if (nBelow === 0) return [[], [...trials]];
  if (nBelow === trials.length) return [[...trials], []];
  const losses = trials.map((t) => lossVector(t, directions));
  const ranks = nonDominatedRanks(losses);
  const chosen = new Set<number>();
  let rank = 0;
  for (; ; rank++) {
    const members = ranks.flatMap((r, i) => (r === rank ? [i] : []));
    if (chosen.size + members.length > nBelow) {
      const points = members.map((i) => losses[i]);
      const picks = greedyHypervolumeSubset(points, nBelow - chosen.size, referencePoint(points));
      for (const p of picks) chosen.add(members[p]);
      break;
    }
    for (const i of members) chosen.add(i);
    if (chosen.size === nBelow) break;
  }
  return [trials.filter((_, i) => chosen.has(i)), trials.filter((_, i) => !chosen.has(i))];
}

/**
 * Optuna's _calculate_weights_below_for_multi_objective: each feasible good trial weighs its hypervolume
 * contribution among the good ones over the largest (EPS when it adds none); any other good trial EPS.
 */
function weightsBelow(below: readonly TrialRecord[], directions: readonly Direction[]): number[] {
  const scored = below.map((t, i) => ({ i, ok: t.state === 'complete' && isFeasible(t) }));
  const weights: number[] = scored.map(({ ok }) => (ok ? 1 : EPS));
  const feasible = scored.filter((s) => s.ok).map((s) => s.i);
  if (feasible.length <= 1) return weights;
  const losses = feasible.map((i) => lossVector(below[i], directions));
  const reference = referencePoint(losses);
  const front = paretoFront(losses);
  if (
    !Number.isFinite(
      hypervolume(
        front.map((f) => losses[f]),
        reference,
      ),
    )
  )
    return weights;
  const contributions = new Array<number>(feasible.length).fill(0);
  hypervolumeContributions(
    front.map((f) => losses[f]),
    reference,
  ).forEach((c, k) => (contributions[front[k]] = c));
  const largest = Math.max(...contributions, EPS);
  feasible.forEach((i, k) => (weights[i] = Math.max(contributions[k] / largest, EPS)));
  return weights;
}

function sampleGroup(
  defs: readonly SampledDef[],
  finished: readonly TrialRecord[],
  running: readonly TrialRecord[],
  directions: readonly Direction[],
  nCandidates: number,
  rng: Rng,
): Params {
  const split = splitMultiObjective(finished, running, directions, defaultGamma(finished.length));
  const l = new ParzenEstimator(
    defs,
    split.below.map((t) => t.params),
    split.belowWeights,
  );
  const g = new ParzenEstimator(
    defs,
    split.above.map((t) => t.params),
    defaultWeights(split.above.length),
  );
  let best: Params = {};
  let bestScore = -Infinity;
  for (let c = 0; c < nCandidates; c++) {
    const x = l.sample(rng);
    const score = l.logPdf(x) - g.logPdf(x);
    if (score > bestScore || c === 0) [best, bestScore] = [x, score];
  }
  return best;
}
