// Warm-starting a study from a finished one (e.g. the same search on a smaller model of the family).
//
// Design, in two parts, both sampler-agnostic in what they store:
//  (a) Replay: the first asks of the new study are the source's top-k configurations in rank order (as
//      Optuna's enqueue_trial), so its known-good region is measured on the new objective straight away.
//  (b) Prior observations: every complete feasible source trial is handed to the model-based samplers
//      as a prior observation, never counted as one of this study's trials. Only its rank within the
//      source is trusted, not its value (the larger model's loss has another offset and scale): TPE splits
//      the source trials into good/bad by its own γ rule, separately from this study's, and adds them to
//      its two densities with a weight that shrinks as this study's own trials accumulate; the GP
//      standardises the source values and this study's values separately (a per-study offset and scale)
//      before fitting one model to both, until this study has finished its own start-up budget of trials.
// Values outside the new space are clipped to its bounds (numeric) or the trial dropped (a categorical
// choice the new space lacks); both are said in `notes`. Everything the samplers see is in the seed, which
// the study keeps in its log's first event, so a resumed or imported study asks exactly the same.
import { sha256Hex } from '../export/fingerprint.ts';
import { containsParams, isActive, isValidValue, snapNumeric } from './space.ts';
import type { Params, SearchSpace } from './space.ts';
import type { Study } from './study.ts';
import { isFeasible, minimiseSign } from './types.ts';
import type { Json } from './types.ts';

/** A source trial as a prior observation: its parameters mapped into this space, its value to minimise. */
export interface PriorObservation {
  readonly params: Params;
  /** The source's objective in minimisation form (value × the source direction's sign). */
  readonly loss: number;
}

export interface WarmStartSeed {
  /** SHA-256 of the source study's log: which study seeded this one. */
  readonly source: string;
  /** Source configurations replayed as the first asks, best first. */
  readonly replay: readonly Params[];
  /** Source trials the model-based samplers see as prior observations. */
  readonly prior: readonly PriorObservation[];
  /** What was clipped, dropped or ignored, in words. */
  readonly notes: readonly string[];
}

/** A source study that cannot seed the new space: says why. */
export class WarmStartError extends Error {
  constructor(readonly reason: string) {
    super(`warm start: ${reason}`);
    this.name = 'WarmStartError';
  }
}

export const DEFAULT_REPLAY = 5;

/**
 * The seed a finished `source` study gives a new study over `space`: its top `replay` configurations
 * (default 5) and its complete feasible trials as prior observations. Throws a WarmStartError when the
 * spaces share no sampled parameter or the source has no complete feasible trial.
 */
export function warmStartFrom(
  source: Study,
  space: SearchSpace,
  options: { replay?: number } = {},
): WarmStartSeed {
  const replayCount = options.replay ?? DEFAULT_REPLAY;
  if (!Number.isInteger(replayCount) || replayCount < 0)
    throw new WarmStartError(`replay must be a non-negative integer (got ${replayCount})`);
  const sourceNames = new Set(source.space.sampled.map((d) => d.name));
  const shared = space.sampled.filter((d) => sourceNames.has(d.name)).map((d) => d.name);
  if (shared.length === 0)
    throw new WarmStartError(
      `the source study shares no searched parameter with this one (source: ${[...sourceNames].join(', ') || 'none'}; this: ${space.sampled.map((d) => d.name).join(', ')})`,
    );
  const notes: string[] = [];
  const ignored = [...sourceNames].filter((n) => !space.sampled.some((d) => d.name === n));
  if (ignored.length > 0) notes.push(`ignored source parameters not searched here: ${ignored.join(', ')}`);
  const sign = minimiseSign(source.direction);
  const ranked = source.trials
    .filter((t) => t.state === 'complete' && Number.isFinite(t.value) && isFeasible(t))
    .map((t) => ({ number: t.number, params: t.params, loss: sign * (t.value as number) }))
    .sort((a, b) => a.loss - b.loss || a.number - b.number);
  if (ranked.length === 0) throw new WarmStartError('the source study has no complete feasible trial');

  const replay: Params[] = [];
  const prior: PriorObservation[] = [];
  const clipped = new Set<string>();
  let dropped = 0;
  let partial = 0;
  for (const t of ranked) {
    const mapped = mapParams(space, t.params, clipped);
    if (mapped === 'dropped') {
      dropped++;
      continue;
    }
    if (replay.length < replayCount && !replay.some((p) => sameParams(p, mapped.params)))
      replay.push(mapped.params);
    if (mapped.complete) prior.push({ params: mapped.params, loss: t.loss });
    else partial++;
  }
  if (clipped.size > 0)
    notes.push(`source values outside this space clipped to its bounds: ${[...clipped].join(', ')}`);
  if (dropped > 0)
    notes.push(`${dropped} source trial(s) dropped: a categorical value this space does not offer`);
  if (partial > 0)
    notes.push(
      `${partial} source trial(s) lack a parameter searched here: replayed at most (missing values drawn), not used as prior observations`,
    );
  if (replay.length === 0 && prior.length === 0)
    throw new WarmStartError('no source trial fits this space (see the dropped values)');
  return { source: sha256Hex(source.log()), replay, prior, notes };
}

/**
 * A source trial's parameters in `space`: numeric values clipped and snapped onto its grid, derived ones
 * recomputed; 'dropped' when a categorical value is not a choice here. `complete` when every active
 * sampled parameter had a value.
 */
function mapParams(
  space: SearchSpace,
  source: Params,
  clipped: Set<string>,
): { params: Params; complete: boolean } | 'dropped' {
  const params: Params = {};
  let complete = true;
  for (const def of space.params) {
    if (!isActive(def, params)) continue;
    if (def.kind === 'derived') {
      const v = def.scale * (params[def.from] as number) + def.offset;
      params[def.name] = def.round ? Math.round(v) : v;
      continue;
    }
    const v = source[def.name];
    if (v === undefined) {
      complete = false;
      continue;
    }
    if (def.kind === 'categorical') {
      if (!isValidValue(def, v)) return 'dropped';
      params[def.name] = v;
    } else {
      if (typeof v !== 'number') return 'dropped';
      const snapped = snapNumeric(def, v);
      if (v < def.low || v > def.high) clipped.add(def.name);
      params[def.name] = snapped;
    }
  }
  return { params, complete };
}

function sameParams(a: Params, b: Params): boolean {
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length && keys.every((k) => a[k] === b[k]);
}

/** The seed as it is written into the log's first event. */
export function warmStartJson(seed: WarmStartSeed): { [key: string]: Json } {
  return {
    source: seed.source,
    replay: seed.replay.map((p) => ({ ...p })),
    prior: seed.prior.map((o) => ({ params: { ...o.params }, loss: o.loss })),
    notes: [...seed.notes],
  };
}

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** A seed read back from a log (or given by a caller), checked against the study's space. */
export function parseWarmStart(raw: unknown, space: SearchSpace): WarmStartSeed {
  if (!isObj(raw)) throw new WarmStartError('the seed must be an object {source, replay, prior, notes}');
  if (typeof raw.source !== 'string') throw new WarmStartError('seed.source must be a string');
  if (!Array.isArray(raw.replay) || !Array.isArray(raw.prior) || !Array.isArray(raw.notes))
    throw new WarmStartError('seed.replay, seed.prior and seed.notes must be lists');
  raw.replay.forEach((p, i) => {
    if (!isObj(p)) throw new WarmStartError(`seed.replay[${i}] must be a parameter object`);
  });
  raw.prior.forEach((o, i) => {
    if (!isObj(o) || !isObj(o.params) || !containsParams(space, o.params as Params))
      throw new WarmStartError(`seed.prior[${i}].params is not a complete assignment of the space`);
    if (typeof o.loss !== 'number' || !Number.isFinite(o.loss))
      throw new WarmStartError(`seed.prior[${i}].loss must be a finite number`);
  });
  if (!raw.notes.every((n) => typeof n === 'string')) throw new WarmStartError('seed.notes must be strings');
  return raw as unknown as WarmStartSeed;
}
