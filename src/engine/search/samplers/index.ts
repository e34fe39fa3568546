// Sampler specs as they appear in a study's JSON (a name, or an object with `type` and options).
import type { Sampler } from '../types.ts';
import { createAutoSampler } from './auto.ts';
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
      return createTpeSampler(s);
    case 'gp':
      return createGpSampler(s);
    case 'auto':
      return createAutoSampler(s);
  }
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
