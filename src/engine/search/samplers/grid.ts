// Exhaustive grid over categorical values, integers and a discretised float axis, enumerated respecting
// conditions (an inactive parameter adds no branches), visited in an order shuffled by the study seed.
// Each trial records its grid index; the next trial takes the first index no live trial holds.
import { Rng } from '../../rng.ts';
import { fromUnit, isActive, snapNumeric } from '../space.ts';
import type { Choice, Params, SampledDef, SearchSpace } from '../space.ts';
import type { SampleContext, Sampler, Suggestion } from '../types.ts';

export interface GridOptions {
  /** Points per continuous float axis (evenly spaced in linear or log space). Default 5. */
  floatPoints?: number;
  /** Integers with more values than this are thinned to this many evenly spaced values. Default 16. */
  maxIntPoints?: number;
  /** Refuse grids larger than this. Default 100 000. */
  maxSize?: number;
}

function axis(def: SampledDef, floatPoints: number, maxIntPoints: number): Choice[] {
  if (def.kind === 'categorical') return def.choices;
  const count = def.step > 0 ? Math.floor((def.high - def.low) / def.step + 1e-9) + 1 : Infinity;
  const points =
    def.step > 0 ? Math.min(count, def.kind === 'int' ? maxIntPoints : floatPoints) : floatPoints;
  if (points === count)
    return Array.from({ length: count }, (_, i) => snapNumeric(def, def.low + i * def.step));
  const values: number[] = [];
  for (let i = 0; i < points; i++) {
    // Evenly spaced between the bounds themselves (not the half-step-widened encoding).
    const t = points === 1 ? 0.5 : i / (points - 1);
    const x = def.log
      ? Math.exp(Math.log(def.low) + t * (Math.log(def.high) - Math.log(def.low)))
      : def.low + t * (def.high - def.low);
    const v = fromUnit(
      def,
      (def.log ? Math.log(x) - def.encLow : x - def.encLow) / (def.encHigh - def.encLow),
    );
    if (!values.includes(v)) values.push(v);
  }
  return values;
}

/**
 * Walks the grid's points in canonical order, handing `visit` each one (a shared object: copy it to keep it),
 * until `visit` returns false.
 */
function walkGrid(space: SearchSpace, options: GridOptions, visit: (point: Params) => boolean): void {
  const axes = new Map(
    space.sampled.map((d) => [d.name, axis(d, options.floatPoints ?? 5, options.maxIntPoints ?? 16)]),
  );
  let going = true;
  const walk = (i: number, partial: Params): void => {
    if (!going) return;
    if (i === space.sampled.length) {
      going = visit(partial);
      return;
    }
    const def = space.sampled[i];
    if (!isActive(def, partial)) return walk(i + 1, partial);
    for (const v of axes.get(def.name) as Choice[]) {
      partial[def.name] = v;
      walk(i + 1, partial);
    }
    delete partial[def.name];
  };
  walk(0, {});
}

/** All distinct configurations of the grid, in canonical (unshuffled) order. */
export function enumerateGrid(space: SearchSpace, options: GridOptions = {}): Params[] {
  const maxSize = options.maxSize ?? 100_000;
  const out: Params[] = [];
  walkGrid(space, options, (point) => {
    if (out.length >= maxSize)
      throw new Error(`grid sampler: the grid has more than maxSize=${maxSize} points`);
    out.push({ ...point });
    return true;
  });
  return out;
}

/**
 * How many points `enumerateGrid` gives, counted without building them and no further than `limit` (so a
 * check of a huge grid stays quick).
 */
export function gridSize(space: SearchSpace, options: GridOptions = {}, limit = Infinity): number {
  let count = 0;
  walkGrid(space, options, () => ++count <= limit);
  return count;
}

export function createGridSampler(options: GridOptions = {}): Sampler {
  for (const key of ['floatPoints', 'maxIntPoints', 'maxSize'] as const) {
    const v = options[key];
    if (v !== undefined && (!Number.isInteger(v) || v < 1))
      throw new Error(`grid sampler: ${key} must be a positive integer (got ${v})`);
  }
  let cacheKey = '';
  let order: Params[] = [];
  return {
    name: 'grid',
    sample(ctx: SampleContext): Suggestion {
      const key = `${ctx.seed}:${JSON.stringify(ctx.space.spec)}`;
      if (key !== cacheKey) {
        order = new Rng(ctx.seed, 'grid').shuffle(enumerateGrid(ctx.space, options));
        cacheKey = key;
      }
      const taken = new Set<number>();
      for (const t of ctx.trials) {
        const g = t.system.grid;
        if (t.state !== 'failed' && typeof g === 'number') taken.add(g);
      }
      let index = order.findIndex((_, i) => !taken.has(i));
      if (index < 0) index = ctx.number % order.length; // grid exhausted: revisit in the same order
      return { params: order[index], system: { grid: index } };
    },
  };
}
