// Independent uniform draws from each parameter's prior (log-uniform for log params).
import { sampleFromPrior } from '../space.ts';
import type { Params } from '../space.ts';
import type { SampleContext, Sampler, Suggestion } from '../types.ts';

export function createRandomSampler(): Sampler {
  return {
    name: 'random',
    sample(ctx: SampleContext): Suggestion {
      const params: Params = {};
      for (const def of ctx.space.sampled) params[def.name] = sampleFromPrior(def, ctx.rng);
      return { params };
    },
  };
}
