// Scrambled Sobol points, one dimension per sampled parameter; trial n takes point n, so the sampler is
// a pure function of (seed, trial number) and pending trials never collide.
import { SOBOL_MAX_DIMS, sobolSequence } from '../qmc.ts';
import { fromUnit } from '../space.ts';
import type { Params } from '../space.ts';
import type { SampleContext, Sampler, Suggestion } from '../types.ts';
import { createRandomSampler } from './random.ts';

export interface SobolOptions {
  /** Scramble (linear matrix scramble + digital shift) seeded by the study seed. Default true. */
  scramble?: boolean;
}

export function createSobolSampler(options: SobolOptions = {}): Sampler {
  const scramble = options.scramble ?? true;
  if (typeof scramble !== 'boolean') throw new Error('sobol sampler: scramble must be a boolean');
  const fallback = createRandomSampler();
  return {
    name: 'sobol',
    sample(ctx: SampleContext): Suggestion {
      const defs = ctx.space.sampled;
      // Beyond the table's dimensions a quasi-random point is no better than a random one.
      if (defs.length > SOBOL_MAX_DIMS) return fallback.sample(ctx);
      const u = sobolSequence(defs.length, scramble ? ctx.seed : null).point(ctx.number);
      const params: Params = {};
      defs.forEach((def, d) => {
        params[def.name] =
          def.kind === 'categorical'
            ? def.choices[Math.min(def.choices.length - 1, Math.floor(u[d] * def.choices.length))]
            : fromUnit(def, u[d]);
      });
      return { params };
    },
  };
}
