// Picks a sampler per trial from the space and the budget used so far, like Optuna's AutoSampler:
// the GP while the study is small and mostly numeric, TPE for conditional or categorical-heavy spaces
// and for long studies (where the GP's cubic cost stops paying off). The GP itself starts with Sobol
// points, warps wide-range objectives, and hands an ask whose fit is unusable to TPE (system.fallback).
import type { SearchSpace } from '../space.ts';
import type { SampleContext, Sampler, Suggestion } from '../types.ts';
import { createGpSampler } from './gp.ts';
import { createMotpeSampler } from './motpe.ts';
import { createParegoSampler } from './parego.ts';
import { createTpeSampler } from './tpe.ts';

export interface AutoOptions {
  /** Switch from the GP to TPE once this many trials have finished. Default 200. */
  gpTrialLimit?: number;
}

export function prefersGp(space: SearchSpace): boolean {
  const categorical = space.sampled.filter((d) => d.kind === 'categorical').length;
  return !space.hasConditions && categorical * 2 <= space.sampled.length && space.sampled.length <= 20;
}

export function createAutoSampler(options: AutoOptions = {}): Sampler {
  const limit = options.gpTrialLimit ?? 200;
  if (!Number.isInteger(limit) || limit < 0)
    throw new Error(`auto sampler: gpTrialLimit must be a non-negative integer (got ${limit})`);
  const gp = createGpSampler();
  const tpe = createTpeSampler();
  return {
    name: 'auto',
    sample(ctx: SampleContext): Suggestion {
      const finished = ctx.trials.filter((t) => t.state !== 'running').length;
      return prefersGp(ctx.space) && finished < limit ? gp.sample(ctx) : tpe.sample(ctx);
    },
  };
}

/** The same choice for a multi-objective study: ParEGO over the GP where the GP fits, else MOTPE. */
export function createMultiObjectiveAutoSampler(options: AutoOptions = {}): Sampler {
  const limit = options.gpTrialLimit ?? 200;
  const parego = createParegoSampler();
  const motpe = createMotpeSampler();
  return {
    name: 'auto',
    sample(ctx: SampleContext): Suggestion {
      const finished = ctx.trials.filter((t) => t.state !== 'running').length;
      return prefersGp(ctx.space) && finished < limit ? parego.sample(ctx) : motpe.sample(ctx);
    },
  };
}
