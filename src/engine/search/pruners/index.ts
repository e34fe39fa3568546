// Pruner specs as they appear in a study's JSON.
import type { Pruner } from '../types.ts';
import { createAshaPruner } from './asha.ts';
import type { AshaOptions } from './asha.ts';
import { createMedianPruner } from './median.ts';
import type { MedianOptions } from './median.ts';

export type PrunerSpec =
  | 'none'
  | 'median'
  | 'asha'
  | { type: 'none' }
  | ({ type: 'median' } & MedianOptions)
  | ({ type: 'asha' } & AshaOptions);

export function createNopPruner(): Pruner {
  return { name: 'none', prune: () => false };
}

export function createPruner(spec: PrunerSpec): Pruner {
  const s = (typeof spec === 'string' ? { type: spec } : spec) as Exclude<PrunerSpec, string>;
  if (typeof s !== 'object' || s === null)
    throw new Error(`pruner: expected 'none', 'median', 'asha' or an object`);
  switch (s.type) {
    case 'none':
      return createNopPruner();
    case 'median':
      return createMedianPruner(s);
    case 'asha':
      return createAshaPruner(s);
    default:
      throw new Error(`pruner: expected type 'none', 'median' or 'asha' (got ${JSON.stringify(spec)})`);
  }
}

export { createAshaPruner, createMedianPruner };
export type { AshaOptions, MedianOptions };
