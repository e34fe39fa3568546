// ParEGO (Knowles 2006) over tunelab's GP sampler: at every ask a weight vector λ is drawn uniformly from the
// simplex, each objective is normalised to [0, 1] over the complete trials (in minimisation form), and the
// trials are handed to the single-objective GP (gp.ts: Sobol start-up, output warp, Kriging believer for the
// pending ones, constraints by probability of feasibility) valued by the augmented Chebyshev scalarisation
//   s_λ(f) = max_i λ_i f_i + ρ Σ_i λ_i f_i,   ρ = 0.05.
// Different λ per ask spread the proposals along the front. λ comes first from the trial's own random
// stream and is stored with the trial (system.parego), so a reloaded study asks the same points.
import type { Json, SampleContext, Sampler, Suggestion, TrialRecord } from '../types.ts';
import { lossVector } from '../types.ts';
import { createGpSampler } from './gp.ts';
import type { GpOptions } from './gp.ts';
import type { Rng } from '../../rng.ts';

const RHO = 0.05;

export function createParegoSampler(options: GpOptions = {}): Sampler {
  const gp = createGpSampler(options);
  return {
    name: 'parego',
    sample(ctx: SampleContext): Suggestion {
      const directions = ctx.directions ?? [ctx.direction];
      const weights = simplexPoint(directions.length, ctx.rng);
      const complete = ctx.trials.filter((t) => t.state === 'complete' && t.value !== undefined);
      const losses = complete.map((t) => lossVector(t, directions));
      const scalar = new Map<TrialRecord, number>();
      const normalise = normaliser(losses);
      complete.forEach((t, i) => scalar.set(t, chebyshev(weights, normalise(losses[i]))));
      // The GP sees one minimised value per complete trial; everything else about the trials is kept.
      const trials = ctx.trials.map((t) => {
        const s = scalar.get(t);
        if (s === undefined) return t;
        const { values: _values, ...rest } = t;
        return { ...rest, value: s };
      });
      const suggestion = gp.sample({
        space: ctx.space,
        trials,
        number: ctx.number,
        direction: 'minimize',
        rng: ctx.rng,
        seed: ctx.seed,
        prior: [],
      });
      const system: Record<string, Json> = { ...(suggestion.system ?? {}), parego: weights };
      return { params: suggestion.params, system };
    },
  };
}

/** A point drawn uniformly from the simplex of `d` weights (normalised exponentials). */
export function simplexPoint(d: number, rng: Rng): number[] {
  const e = Array.from({ length: d }, () => -Math.log(1 - rng.random()));
  const sum = e.reduce((a, v) => a + v, 0);
  return e.map((v) => v / sum);
}

/** Maps a loss vector to [0, 1] per objective over the observed range (a constant objective to 0). */
function normaliser(losses: readonly number[][]): (f: readonly number[]) => number[] {
  if (losses.length === 0) return (f) => [...f];
  const d = losses[0].length;
  const lo = Array.from({ length: d }, (_, k) => Math.min(...losses.map((f) => f[k])));
  const hi = Array.from({ length: d }, (_, k) => Math.max(...losses.map((f) => f[k])));
  return (f) => f.map((v, k) => (hi[k] > lo[k] ? (v - lo[k]) / (hi[k] - lo[k]) : 0));
}

/** The augmented Chebyshev scalarisation of normalised losses `f` under weights `w`. */
export function chebyshev(w: readonly number[], f: readonly number[]): number {
  let max = -Infinity;
  let sum = 0;
  for (let i = 0; i < w.length; i++) {
    max = Math.max(max, w[i] * f[i]);
    sum += w[i] * f[i];
  }
  return max + RHO * sum;
}
