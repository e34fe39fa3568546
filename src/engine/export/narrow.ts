// Narrowing a search space around the best trial, for continuing the search on a bigger model: log-scaled
// ranges shrink to [best / f, best · f] (f = 3), linear ones to best ± 25 % of the original span, both clipped to
// the original bounds and snapped outward onto the parameter's step grid; categorical and derived parameters
// and conditions are kept as they are. The result is a valid space that contains the best point.
import { createSpace, isActive } from '../search/space.ts';
import type {
  FloatSpec,
  IntSpec,
  NumericDef,
  Params,
  ParamSpec,
  SearchSpace,
  SpaceSpec,
} from '../search/space.ts';

export interface NarrowOptions {
  /** Log ranges become [best / logFactor, best · logFactor]. Default 3. */
  logFactor?: number;
  /** Linear ranges become best ± linearFraction · (high − low). Default 0.25. */
  linearFraction?: number;
}

/** Round x to 4 significant digits, down or up, so the bounds print readably. */
function roundSig(x: number, dir: 'down' | 'up'): number {
  if (x === 0) return 0;
  const e = Math.floor(Math.log10(Math.abs(x))) - 3;
  const scale = 10 ** e;
  const m = x / scale;
  const r = dir === 'down' ? Math.floor(m + 1e-9) : Math.ceil(m - 1e-9);
  return Number((r * scale).toPrecision(4));
}

function narrowNumeric(
  def: NumericDef,
  spec: ParamSpec,
  best: number,
  opts: Required<NarrowOptions>,
): ParamSpec {
  let lo: number;
  let hi: number;
  if (def.log) {
    lo = best / opts.logFactor;
    hi = best * opts.logFactor;
  } else {
    const half = opts.linearFraction * (def.high - def.low);
    lo = best - half;
    hi = best + half;
  }
  lo = Math.max(def.low, Math.min(best, roundSig(lo, 'down')));
  hi = Math.min(def.high, Math.max(best, roundSig(hi, 'up')));
  if (def.step > 0) {
    // Outward onto the grid low + k·step, which the best value is on.
    const k0 = Math.floor((lo - def.low) / def.step + 1e-9);
    const k1 = Math.ceil((hi - def.low) / def.step - 1e-9);
    lo = def.low + k0 * def.step;
    hi = Math.min(def.high, def.low + k1 * def.step);
    if (def.kind === 'float') {
      lo = Number(lo.toPrecision(12));
      hi = Number(hi.toPrecision(12));
    }
  }
  if (def.kind === 'int') {
    lo = Math.max(def.low, Math.floor(lo));
    hi = Math.min(def.high, Math.ceil(hi));
  }
  if (!(lo < hi)) return { type: 'categorical', choices: [best], ...condition(spec) };
  const out: FloatSpec | IntSpec = { type: def.kind, low: lo, high: hi };
  if (def.log) out.log = true;
  if ('step' in spec && spec.step !== undefined) out.step = spec.step;
  return { ...out, ...condition(spec) };
}

function condition(spec: ParamSpec): Pick<Extract<ParamSpec, { type: 'float' }>, 'condition'> {
  return 'condition' in spec && spec.condition !== undefined
    ? { condition: { param: spec.condition.param, in: [...spec.condition.in] } }
    : {};
}

/**
 * The space narrowed around `best` (a complete assignment of `space`, e.g. the best trial's params).
 * Parameters inactive in `best` keep their original range.
 */
export function narrowSpace(space: SearchSpace, best: Params, options: NarrowOptions = {}): SpaceSpec {
  const opts = { logFactor: 3, linearFraction: 0.25, ...options };
  if (!(opts.logFactor > 1))
    throw new RangeError(`narrowSpace: logFactor must be > 1, got ${opts.logFactor}`);
  if (!(opts.linearFraction > 0))
    throw new RangeError(`narrowSpace: linearFraction must be > 0, got ${opts.linearFraction}`);
  const out: SpaceSpec = {};
  for (const [name, spec] of Object.entries(space.spec)) {
    const def = space.params.find((d) => d.name === name);
    const value = best[name];
    if (def === undefined || def.kind === 'derived' || def.kind === 'categorical' || !isActive(def, best)) {
      out[name] = JSON.parse(JSON.stringify(spec)) as ParamSpec;
    } else if (typeof value !== 'number') {
      throw new Error(`narrowSpace: the best point has no numeric value for '${name}'`);
    } else {
      out[name] = narrowNumeric(def, spec, value, opts);
    }
  }
  createSpace(out);
  return out;
}
