// Sampler specs as they appear in a study's JSON (a name, or an object with `type` and options). As in
// Optuna, one name serves both kinds of study: in a multi-objective study 'tpe' is MOTPE, 'gp' is ParEGO over
// the GP, and 'auto' picks between those two as it does between TPE and the GP; random, grid and Sobol never
// look at values and run unchanged.
import type { SampleContext, Sampler } from '../types.ts';
import { createMotpeSampler } from './motpe.ts';
import { createParegoSampler } from './parego.ts';
import { createAutoSampler, createMultiObjectiveAutoSampler } from './auto.ts';
import type { AutoOptions } from './auto.ts';
import { createGpSampler, fallbackNote } from './gp.ts';
import type { GpOptions } from './gp.ts';
import { createGridSampler } from './grid.ts';
import type { GridOptions } from './grid.ts';
import { createRandomSampler } from './random.ts';
import { createSobolSampler } from './sobol.ts';
import type { SobolOptions } from './sobol.ts';
import { createTpeSampler } from './tpe.ts';
import type { TpeOptions } from './tpe.ts';

export const SAMPLER_NAMES = ['random', 'grid', 'sobol', 'tpe', 'gp', 'auto'] as const;
export type SamplerName = (typeof SAMPLER_NAMES)[number];
export type SamplerSpec =
  | SamplerName
  | { type: 'random' }
  | ({ type: 'grid' } & GridOptions)
  | ({ type: 'sobol' } & SobolOptions)
  | ({ type: 'tpe' } & TpeOptions)
  | ({ type: 'gp' } & GpOptions)
  | ({ type: 'auto' } & AutoOptions);

export function createSampler(spec: SamplerSpec): Sampler {
  const s = (typeof spec === 'string' ? { type: spec } : spec) as Exclude<SamplerSpec, string>;
  if (typeof s !== 'object' || s === null || !SAMPLER_NAMES.includes(s.type))
    throw new Error(`sampler: expected one of ${SAMPLER_NAMES.join(', ')} (got ${JSON.stringify(spec)})`);
  switch (s.type) {
    case 'random':
      return createRandomSampler();
    case 'grid':
      return createGridSampler(s);
    case 'sobol':
      return createSobolSampler(s);
    case 'tpe':
      return byObjectives(createTpeSampler(s), createMotpeSampler(s));
    case 'gp':
      return byObjectives(createGpSampler(s), createParegoSampler(s));
    case 'auto':
      return byObjectives(createAutoSampler(s), createMultiObjectiveAutoSampler(s));
  }
}

/** `single` for a study with one objective, `multi` for one with several, decided per ask. */
function byObjectives(single: Sampler, multi: Sampler): Sampler {
  return {
    name: single.name,
    sample: (ctx: SampleContext) => ((ctx.directions?.length ?? 1) > 1 ? multi : single).sample(ctx),
  };
}

export {
  fallbackNote,
  createAutoSampler,
  createGpSampler,
  createGridSampler,
  createRandomSampler,
  createSobolSampler,
  createTpeSampler,
};
export type { AutoOptions, GpOptions, GridOptions, SobolOptions, TpeOptions };
