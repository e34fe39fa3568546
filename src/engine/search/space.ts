// Search space: JSON-serialisable parameter specs, their validation, the unit-cube encoding shared by the
// model-based samplers, and resolution of conditional and derived parameters.
import type { Rng } from '../rng.ts';

export type Choice = number | string | boolean;
export type Params = Record<string, Choice>;

/** The parameter exists only when `param` currently takes one of the listed values. */
export interface Condition {
  param: string;
  in: Choice[];
}

export interface FloatSpec {
  type: 'float';
  low: number;
  high: number;
  log?: boolean;
  /** Optional discretisation; values are low + k·step. Not allowed with log. */
  step?: number;
  condition?: Condition;
}

export interface IntSpec {
  type: 'int';
  low: number;
  high: number;
  log?: boolean;
  step?: number;
  condition?: Condition;
}

export interface CategoricalSpec {
  type: 'categorical';
  choices: Choice[];
  condition?: Condition;
}

/** value = scale·from + offset (rounded if `round`); present exactly when `from` is. */
export interface DerivedSpec {
  type: 'derived';
  from: string;
  scale?: number;
  offset?: number;
  round?: boolean;
}

export type ParamSpec = FloatSpec | IntSpec | CategoricalSpec | DerivedSpec;
export type SpaceSpec = Record<string, ParamSpec>;

export type NumericDef = {
  name: string;
  kind: 'float' | 'int';
  low: number;
  high: number;
  log: boolean;
  /** 0 for a continuous float. */
  step: number;
  condition: Condition | undefined;
  /** Bounds of the unit-cube encoding in (log-)value space, widened by step/2 for discrete params. */
  encLow: number;
  encHigh: number;
};
export type CategoricalDef = {
  name: string;
  kind: 'categorical';
  choices: Choice[];
  condition: Condition | undefined;
};
export type DerivedDef = {
  name: string;
  kind: 'derived';
  from: string;
  scale: number;
  offset: number;
  round: boolean;
};
export type SampledDef = NumericDef | CategoricalDef;
export type ParamDef = SampledDef | DerivedDef;

export interface SearchSpace {
  /** The spec exactly as given (after validation), for the study log. */
  readonly spec: SpaceSpec;
  /** All parameters, parents before the parameters that depend on them. */
  readonly params: readonly ParamDef[];
  /** Parameters a sampler chooses (not derived), in the same order. */
  readonly sampled: readonly SampledDef[];
  readonly hasConditions: boolean;
}

const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isChoice = (v: unknown): v is Choice =>
  typeof v === 'string' || typeof v === 'boolean' || isFiniteNumber(v);

/** A space spec that cannot be searched: names the parameter and what was expected. */
export class SearchSpaceError extends Error {
  constructor(
    /** The parameter as the spec names it; '' for the spec as a whole. */
    readonly param: string,
    readonly reason: string,
  ) {
    super(param === '' ? `search space: ${reason}` : `search space: parameter '${param}': ${reason}`);
    this.name = 'SearchSpaceError';
  }
}

function fail(name: string, expected: string): never {
  throw new SearchSpaceError(name, expected);
}

function parseCondition(name: string, raw: unknown): Condition | undefined {
  if (raw === undefined) return undefined;
  if (typeof raw !== 'object' || raw === null) fail(name, 'condition must be an object {param, in}');
  const c = raw as Record<string, unknown>;
  if (typeof c.param !== 'string') fail(name, 'condition.param must be a parameter name');
  if (!Array.isArray(c.in) || c.in.length === 0 || !c.in.every(isChoice))
    fail(name, 'condition.in must be a non-empty array of values');
  return { param: c.param, in: [...(c.in as Choice[])] };
}

function parseNumeric(name: string, raw: Record<string, unknown>, kind: 'float' | 'int'): NumericDef {
  const { low, high } = raw;
  if (!isFiniteNumber(low) || !isFiniteNumber(high)) fail(name, 'low and high must be finite numbers');
  if (kind === 'int' && (!Number.isInteger(low) || !Number.isInteger(high)))
    fail(name, `low and high must be integers for type 'int' (got ${low}, ${high})`);
  if (!(low < high)) fail(name, `expected low < high (got low=${low}, high=${high})`);
  const log = raw.log === undefined ? false : raw.log;
  if (typeof log !== 'boolean') fail(name, 'log must be a boolean');
  if (log && low <= 0) fail(name, `log scale needs low > 0 (got low=${low})`);
  let step = kind === 'int' ? 1 : 0;
  if (raw.step !== undefined) {
    if (!isFiniteNumber(raw.step) || raw.step <= 0)
      fail(name, `step must be a positive number (got ${raw.step})`);
    if (kind === 'int' && !Number.isInteger(raw.step)) fail(name, 'step must be an integer for int');
    if (log && raw.step !== 1) fail(name, 'step other than 1 cannot be combined with log');
    if (kind === 'float' && log) fail(name, 'a float with step cannot also be log');
    if (raw.step > high - low) fail(name, `step ${raw.step} is larger than the range ${low} .. ${high}`);
    step = raw.step;
  }
  // Bounds near ±1.8e308 overflow the span, and a step that tiny has more grid points than floats.
  if (!Number.isFinite(high - low) || (step > 0 && !Number.isFinite((high - low) / step)))
    fail(name, `the range ${low} .. ${high}${step > 0 ? ` in steps of ${step}` : ''} is too large to sample`);
  const half = step / 2;
  const encLow = log ? Math.log(Math.max(low - half, low / 2)) : low - half;
  const encHigh = log ? Math.log(high + half) : high + half;
  if (!Number.isFinite(encHigh - encLow)) fail(name, `the range ${low} .. ${high} is too large to sample`);
  return {
    name,
    kind,
    low,
    high,
    log,
    step,
    condition: parseCondition(name, raw.condition),
    encLow,
    encHigh,
  };
}

/** Validate a JSON space spec; errors name the parameter and what was expected. */
export function createSpace(spec: unknown): SearchSpace {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec))
    fail('', 'expected an object mapping parameter names to specs');
  const entries = Object.entries(spec as Record<string, unknown>);
  if (entries.length === 0) fail('', 'expected at least one parameter');
  const defs = new Map<string, ParamDef>();
  for (const [name, rawSpec] of entries) {
    // A trial's params are a plain object: this name would set its prototype instead of a value.
    if (name === '__proto__') fail(name, 'is not a usable parameter name');
    if (typeof rawSpec !== 'object' || rawSpec === null) fail(name, 'expected an object with a type');
    const raw = rawSpec as Record<string, unknown>;
    switch (raw.type) {
      case 'float':
      case 'int':
        defs.set(name, parseNumeric(name, raw, raw.type));
        break;
      case 'categorical': {
        const choices = raw.choices;
        if (!Array.isArray(choices) || choices.length === 0) fail(name, 'choices must be a non-empty array');
        if (!choices.every(isChoice)) fail(name, 'choices must be numbers, strings or booleans');
        if (new Set(choices).size !== choices.length) fail(name, 'choices must be distinct');
        defs.set(name, {
          name,
          kind: 'categorical',
          choices: [...choices],
          condition: parseCondition(name, raw.condition),
        });
        break;
      }
      case 'derived': {
        if (typeof raw.from !== 'string') fail(name, "derived needs 'from', the name of a parameter");
        const scale = raw.scale ?? 1;
        const offset = raw.offset ?? 0;
        if (!isFiniteNumber(scale) || !isFiniteNumber(offset))
          fail(name, 'scale and offset must be finite numbers');
        if (raw.round !== undefined && typeof raw.round !== 'boolean') fail(name, 'round must be a boolean');
        if (raw.condition !== undefined)
          fail(name, "derived parameters follow their 'from' parameter; no condition");
        defs.set(name, { name, kind: 'derived', from: raw.from, scale, offset, round: raw.round === true });
        break;
      }
      default:
        fail(
          name,
          `unknown type ${JSON.stringify(raw.type)} (expected 'float', 'int', 'categorical' or 'derived')`,
        );
    }
  }
  // References: conditions point at sampled parameters with matching values; derived at numeric ones.
  for (const def of defs.values()) {
    if (def.kind === 'derived') {
      const src = defs.get(def.from);
      if (!src) fail(def.name, `derived from unknown parameter '${def.from}'`);
      if (src.kind === 'derived') fail(def.name, `derived from '${def.from}', which is itself derived`);
      if (src.kind === 'categorical' && !src.choices.every((c) => typeof c === 'number'))
        fail(def.name, `derived from '${def.from}', whose choices are not all numbers`);
    } else if (def.condition) {
      const parent = defs.get(def.condition.param);
      if (!parent) fail(def.name, `condition on unknown parameter '${def.condition.param}'`);
      if (parent.kind === 'derived') fail(def.name, `condition on derived parameter '${parent.name}'`);
      if (parent.kind === 'categorical') {
        const bad = def.condition.in.find((v) => !parent.choices.includes(v));
        if (bad !== undefined)
          fail(def.name, `condition value ${JSON.stringify(bad)} is not a choice of '${parent.name}'`);
      }
    }
  }
  // Topological order (parents first), rejecting cycles.
  const ordered: ParamDef[] = [];
  const mark = new Map<string, 'visiting' | 'done'>();
  const visit = (def: ParamDef): void => {
    const m = mark.get(def.name);
    if (m === 'done') return;
    if (m === 'visiting') fail(def.name, 'conditions form a cycle');
    mark.set(def.name, 'visiting');
    const parent = def.kind === 'derived' ? def.from : def.condition?.param;
    if (parent !== undefined) visit(defs.get(parent) as ParamDef);
    mark.set(def.name, 'done');
    ordered.push(def);
  };
  for (const def of defs.values()) visit(def);
  const sampled = ordered.filter((d): d is SampledDef => d.kind !== 'derived');
  return {
    spec: JSON.parse(JSON.stringify(spec)) as SpaceSpec,
    params: ordered,
    sampled,
    hasConditions: sampled.some((d) => d.condition !== undefined),
  };
}

export function isActive(def: ParamDef, params: Params): boolean {
  if (def.kind === 'derived') return params[def.from] !== undefined;
  if (!def.condition) return true;
  const v = params[def.condition.param];
  return v !== undefined && def.condition.in.includes(v);
}

/** Snap a numeric value onto the parameter's grid and bounds. */
export function snapNumeric(def: NumericDef, value: number): number {
  let v = Math.min(def.high, Math.max(def.low, value));
  if (def.step > 0) {
    v = def.low + Math.round((v - def.low) / def.step) * def.step;
    if (v > def.high) v -= def.step;
    if (def.kind === 'int') v = Math.round(v);
    else v = Number(v.toPrecision(15)); // drop float noise of low + k·step
    // Rounding may cross a bound (a range ending at 0.9999999999999999 rounds to 1).
    v = Math.min(def.high, Math.max(def.low, v));
  }
  return v;
}

/** Numeric value → [0, 1] (log space for log params). */
export function toUnit(def: NumericDef, value: number): number {
  const x = def.log ? Math.log(value) : value;
  return (x - def.encLow) / (def.encHigh - def.encLow);
}

/** [0, 1] → numeric value on the parameter's grid. */
export function fromUnit(def: NumericDef, u: number): number {
  const x = def.encLow + Math.min(1, Math.max(0, u)) * (def.encHigh - def.encLow);
  return snapNumeric(def, def.log ? Math.exp(x) : x);
}

export function sampleFromPrior(def: SampledDef, rng: Rng): Choice {
  if (def.kind === 'categorical') return rng.choice(def.choices);
  return fromUnit(def, rng.random());
}

export function isValidValue(def: SampledDef, value: unknown): value is Choice {
  if (def.kind === 'categorical') return isChoice(value) && def.choices.includes(value);
  if (!isFiniteNumber(value) || value < def.low || value > def.high) return false;
  return def.step === 0 || Math.abs(snapNumeric(def, value) - value) <= 1e-9 * Math.max(1, Math.abs(value));
}

/**
 * Build a complete parameter set from a sampler's proposal: active sampled params take the proposed
 * value when it is valid (else a prior draw), inactive ones are dropped, derived ones computed.
 */
export function resolveParams(space: SearchSpace, proposal: Partial<Params>, rng: Rng): Params {
  const out: Params = {};
  for (const def of space.params) {
    if (!isActive(def, out)) continue;
    if (def.kind === 'derived') {
      const v = def.scale * (out[def.from] as number) + def.offset;
      out[def.name] = def.round ? Math.round(v) : v;
    } else {
      const p = proposal[def.name];
      out[def.name] = isValidValue(def, p) ? p : sampleFromPrior(def, rng);
    }
  }
  return out;
}

/** True when `params` is exactly a valid, complete assignment of the space. */
export function containsParams(space: SearchSpace, params: Params): boolean {
  const expected = new Set<string>();
  const seen: Params = {};
  for (const def of space.params) {
    if (!isActive(def, seen)) continue;
    const v = params[def.name];
    if (v === undefined) return false;
    if (def.kind === 'derived') {
      const want = def.scale * (seen[def.from] as number) + def.offset;
      if (v !== (def.round ? Math.round(want) : want)) return false;
    } else if (!isValidValue(def, v)) return false;
    seen[def.name] = v;
    expected.add(def.name);
  }
  return Object.keys(params).every((k) => expected.has(k));
}
