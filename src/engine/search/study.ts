// The ask/tell study. All state changes go through one `#apply(event)`, used both live (then the event is
// appended to the log and passed to `onEvent`) and when replaying a log, so a reloaded study is the same
// object an uninterrupted one would be. Randomness for trial n comes from Rng(seed, 'trial', n).
import { LOG_VERSION, parseEvent } from './events.ts';
import type { AskEvent, PbtEvent, ReportEvent, StudyEvent, StudyStartEvent, TellEvent } from './events.ts';
import { createPruner } from './pruners/index.ts';
import type { PrunerSpec } from './pruners/index.ts';
import { parseJson } from '../json.ts';
import { Rng } from '../rng.ts';
import { createSampler } from './samplers/index.ts';
import type { SamplerSpec } from './samplers/index.ts';
import { containsParams, createSpace, resolveParams } from './space.ts';
import type { Params, SearchSpace, SpaceSpec } from './space.ts';
import type { Direction, Json, Pruner, Sampler, TrialRecord, TrialState } from './types.ts';
import { isFeasible, lossVector, minimiseSign } from './types.ts';
import { paretoFront } from './pareto.ts';
import { parseWarmStart, warmStartJson } from './warm-start.ts';
import type { WarmStartSeed } from './warm-start.ts';

export interface StudyOptions {
  space: SpaceSpec;
  /** Default 'tpe' (as Optuna). */
  sampler?: SamplerSpec;
  /** Default 'minimize'. */
  direction?: Direction;
  /**
   * A multi-objective study: one direction per objective (two or more; `direction`, when given, must be the
   * first). Trials are told one value per objective; the result is a Pareto front (`bestTrials`).
   */
  directions?: readonly Direction[];
  /** Default 0. Any safe integer. */
  seed?: number;
  /** Default 'none'. */
  pruner?: PrunerSpec;
  /** Called with every event as it is appended to the log. */
  onEvent?: (event: StudyEvent) => void;
  /**
   * How the study is run beyond the search (tunelab's StudyPlan: fixed values, budget, objective), kept in
   * the log's first event so a resumed or imported study knows it. Opaque here.
   */
  plan?: { [key: string]: Json };
  /**
   * Start from a finished study (see `warmStartFrom`): its top configurations are the first asks, its
   * trials prior observations for the samplers. Kept in the log's first event.
   */
  warmStart?: WarmStartSeed;
}

export interface LineageEntry {
  step: number;
  donor: number;
  params: Params;
}

type MutableTrial = {
  number: number;
  params: Params;
  state: TrialState;
  value: number | undefined;
  values?: number[];
  intermediate: [number, number][];
  system: Record<string, Json>;
  lineage: LineageEntry[];
  constraints?: number[];
};

export type TellResult =
  | number
  /** `constraints`: one value per constraint of the study, each feasible when ≤ 0. */
  | { state: 'complete'; value: number; constraints?: readonly number[] }
  /** A multi-objective study's complete trial: one value per objective. */
  | { state: 'complete'; values: readonly number[]; constraints?: readonly number[] }
  | { state: 'pruned' | 'failed' };

/** Handle returned by `ask()`: the worker's view of one trial. */
export class Trial {
  readonly #study: Study;
  readonly number: number;

  constructor(study: Study, number: number) {
    this.#study = study;
    this.number = number;
  }

  /** Current parameters (PBT may change them mid-trial); a fresh plain object. */
  get params(): Params {
    return { ...this.#study.trial(this.number).params };
  }

  get state(): TrialState {
    return this.#study.trial(this.number).state;
  }

  report(step: number, value: number): void {
    this.#study.report(this.number, step, value);
  }

  shouldPrune(): boolean {
    return this.#study.shouldPrune(this.number);
  }
}

export class Study {
  readonly space: SearchSpace;
  readonly direction: Direction;
  /** One per objective: [direction] for a single-objective study. */
  readonly directions: readonly Direction[];
  readonly seed: number;
  readonly samplerSpec: SamplerSpec;
  readonly prunerSpec: PrunerSpec;
  /** The recipe the study was started with (StudyOptions.plan); null for logs written without one. */
  readonly plan: { [key: string]: Json } | null;
  /** The seed this study was warm-started with; null for a cold start. */
  readonly warmStart: WarmStartSeed | null;
  readonly sampler: Sampler;
  readonly pruner: Pruner;
  readonly #events: StudyEvent[] = [];
  readonly #trials: MutableTrial[] = [];
  #onEvent: ((event: StudyEvent) => void) | undefined;

  /** Use `createStudy` or `loadStudy`. */
  constructor(options: StudyOptions) {
    if (typeof options !== 'object' || options === null)
      throw new Error('createStudy: expected an options object');
    const directions = studyDirections(options);
    const direction = directions[0];
    const seed = options.seed ?? 0;
    if (!Number.isSafeInteger(seed))
      throw new Error(`createStudy: seed must be a safe integer (got ${seed})`);
    if (options.onEvent !== undefined && typeof options.onEvent !== 'function')
      throw new Error('createStudy: onEvent must be a function');
    this.space = createSpace(options.space);
    this.direction = direction;
    this.directions = directions;
    this.seed = seed;
    this.samplerSpec = options.sampler ?? 'tpe';
    this.prunerSpec = options.pruner ?? 'none';
    // Optuna's rule: pruning compares one value per step, and a trial poor on the first objective may be on
    // the Pareto front, so a multi-objective study does not prune.
    if (directions.length > 1 && this.prunerSpec !== 'none')
      throw new Error(
        `createStudy: pruner ${JSON.stringify(this.prunerSpec)}: a multi-objective study (${directions.length} ` +
          "objectives) cannot prune (a trial poor on one objective may be on the Pareto front); use 'none'",
      );
    if (directions.length > 1 && options.warmStart !== undefined)
      throw new Error(
        'createStudy: warmStart: a multi-objective study cannot be warm-started (one loss per prior trial)',
      );
    this.plan = options.plan ?? null;
    try {
      this.warmStart =
        options.warmStart === undefined
          ? null
          : parseWarmStart(structuredClone(options.warmStart), this.space);
    } catch (e) {
      throw new Error(`createStudy: ${(e as Error).message}`);
    }
    try {
      this.sampler = createSampler(this.samplerSpec);
    } catch (e) {
      throw new Error(`createStudy: ${(e as Error).message}`);
    }
    try {
      this.pruner = createPruner(this.prunerSpec);
    } catch (e) {
      throw new Error(`createStudy: ${(e as Error).message}`);
    }
    this.#onEvent = options.onEvent;
    this.#emit({
      type: 'study',
      version: LOG_VERSION,
      space: this.space.spec,
      sampler: this.samplerSpec,
      pruner: this.prunerSpec,
      direction,
      ...(directions.length > 1 ? { directions: [...directions] } : {}),
      seed,
      ...(this.plan ? { plan: this.plan } : {}),
      ...(this.warmStart ? { warmStart: warmStartJson(this.warmStart) } : {}),
    });
  }

  /** All trials so far, as plain records (shared, do not mutate). */
  get trials(): readonly TrialRecord[] {
    return this.#trials;
  }

  /** The study has more than one objective (its result is `bestTrials`, a Pareto front). */
  get isMultiObjective(): boolean {
    return this.directions.length > 1;
  }

  /**
   * The Pareto front of the feasible complete trials, by trial number (Optuna's best_trials); with one
   * objective, the best trial and every trial tied with it.
   */
  get bestTrials(): TrialRecord[] {
    const feasible = this.#trials.filter((t) => t.state === 'complete' && isFeasible(t));
    const front = paretoFront(feasible.map((t) => lossVector(t, this.directions)));
    return front.map((i) => feasible[i]);
  }

  /**
   * Best feasible complete trial, or undefined while none has completed feasibly; always undefined in a
   * multi-objective study, which has a front of them (`bestTrials`).
   */
  get bestTrial(): TrialRecord | undefined {
    if (this.isMultiObjective) return undefined;
    const sign = minimiseSign(this.direction);
    let best: MutableTrial | undefined;
    for (const t of this.#trials)
      if (
        t.state === 'complete' &&
        isFeasible(t) &&
        (best === undefined || sign * (t.value as number) < sign * (best.value as number))
      )
        best = t;
    return best;
  }

  get bestValue(): number | undefined {
    return this.bestTrial?.value;
  }

  trial(number: number): TrialRecord {
    return this.#get(number, 'trial');
  }

  /** The events so far (a copy). */
  get events(): StudyEvent[] {
    return this.#events.slice();
  }

  /** The event log as JSON lines (newline-terminated). */
  log(): string {
    return this.#events.map((e) => JSON.stringify(e) + '\n').join('');
  }

  /** Set (or clear) the live event listener, e.g. after `loadStudy`. */
  set onEvent(listener: ((event: StudyEvent) => void) | undefined) {
    this.#onEvent = listener;
  }

  /**
   * Start trial number `trials.length` with the sampler's suggestion, or, for the first trials of a
   * warm-started study, with the source's next best configuration.
   */
  ask(): Trial {
    const number = this.#trials.length;
    const rng = new Rng(this.seed, 'trial', number);
    const replay = this.warmStart?.replay[number];
    const suggestion = replay
      ? { params: replay, system: { warmStart: 'replay' } }
      : this.sampler.sample({
          space: this.space,
          trials: this.#trials,
          number,
          direction: this.direction,
          ...(this.isMultiObjective ? { directions: this.directions } : {}),
          rng,
          seed: this.seed,
          prior: this.warmStart?.prior ?? [],
        });
    const params = resolveParams(this.space, suggestion.params, rng);
    const event: AskEvent = { type: 'ask', number, params };
    if (suggestion.system && Object.keys(suggestion.system).length > 0) event.system = suggestion.system;
    this.#emit(event);
    return new Trial(this, number);
  }

  report(number: number, step: number, value: number): void {
    if (typeof value !== 'number') throw new Error(`report: value must be a number (got ${typeof value})`);
    this.#emit({ type: 'report', number, step, value: Number.isFinite(value) ? value : null });
  }

  shouldPrune(number: number): boolean {
    const trial = this.#get(number, 'shouldPrune');
    if (trial.state !== 'running') return false;
    return this.pruner.prune({ trial, trials: this.#trials, direction: this.direction });
  }

  /** Finish a trial with its objective value, or as pruned / failed. A non-finite value marks it failed. */
  tell(trial: Trial | number, result: TellResult): void {
    const number = typeof trial === 'number' ? trial : trial?.number;
    const ending = typeof result === 'object' && result !== null && result.state !== 'complete';
    if (this.isMultiObjective && !ending) return this.#emit(this.#valuesEvent(number, result));
    let event: TellEvent;
    if (typeof result === 'number') {
      event = Number.isFinite(result)
        ? { type: 'tell', number, state: 'complete', value: result }
        : { type: 'tell', number, state: 'failed' };
    } else if (typeof result === 'object' && result !== null) {
      if (result.state === 'complete') {
        if ('values' in result) throw new Error('tell: this study has one objective: tell { value }');
        if (!(typeof result.value === 'number' && Number.isFinite(result.value)))
          throw new Error('tell: a complete trial needs a finite value');
        event = { type: 'tell', number, state: 'complete', value: result.value };
        if (result.constraints !== undefined) event.constraints = checkedConstraints(result.constraints);
      } else if (result.state === 'pruned' || result.state === 'failed') {
        event = { type: 'tell', number, state: result.state };
      } else {
        throw new Error(`tell: state must be 'complete', 'pruned' or 'failed'`);
      }
    } else {
      throw new Error('tell: expected a value or { state }');
    }
    this.#emit(event);
  }

  /** A multi-objective study's complete tell: one finite value per objective (`value` is the first). */
  #valuesEvent(number: number, result: TellResult): TellEvent {
    const count = this.directions.length;
    const told = typeof result === 'object' && result !== null ? result : null;
    const values = told && 'values' in told ? told.values : undefined;
    if (
      !Array.isArray(values) ||
      values.length !== count ||
      !values.every((v) => typeof v === 'number' && Number.isFinite(v))
    )
      throw new Error(`tell: a complete trial of this study needs { values: ${count} finite numbers }`);
    const event: TellEvent = {
      type: 'tell',
      number,
      state: 'complete',
      value: values[0],
      values: [...values],
    };
    if (told && 'constraints' in told && told.constraints !== undefined)
      event.constraints = checkedConstraints(told.constraints);
    return event;
  }

  /** Record a PBT exploit/explore decision: the trial continues from `donor`'s checkpoint with `params`. */
  recordPbt(number: number, step: number, donor: number, params: Params): void {
    this.#emit({ type: 'pbt', number, step, donor, params });
  }

  lineage(number: number): readonly LineageEntry[] {
    return this.#get(number, 'lineage').lineage;
  }

  #get(number: number, what: string): MutableTrial {
    const t = Number.isInteger(number) ? this.#trials[number] : undefined;
    if (!t) throw new Error(`${what}: no trial number ${number}`);
    return t;
  }

  #emit(event: StudyEvent): void {
    this.applyEvent(event);
    this.#onEvent?.(event);
  }

  /** Validate and apply one event, appending it to the log. Throws (leaving the study unchanged) if invalid. */
  applyEvent(event: StudyEvent): void {
    switch (event.type) {
      case 'study':
        if (this.#events.length > 0) throw new Error('study event: only allowed as the first event');
        break;
      case 'ask': {
        if (event.number !== this.#trials.length)
          throw new Error(`ask: expected trial number ${this.#trials.length}, got ${event.number}`);
        if (!containsParams(this.space, event.params))
          throw new Error(`ask: params of trial ${event.number} are not in the space`);
        this.#trials.push({
          number: event.number,
          params: { ...event.params },
          state: 'running',
          value: undefined,
          intermediate: [],
          system: event.system ? structuredClone(event.system) : {},
          lineage: [],
        });
        break;
      }
      case 'report': {
        const t = this.#running(event, 'report');
        if (!Number.isInteger(event.step) || event.step < 0)
          throw new Error(`report: step must be a non-negative integer (got ${event.step})`);
        const last = t.intermediate[t.intermediate.length - 1];
        if (last && event.step <= last[0])
          throw new Error(
            `report: step ${event.step} of trial ${t.number} is not after its last step ${last[0]}`,
          );
        t.intermediate.push([event.step, event.value === null ? NaN : event.value]);
        break;
      }
      case 'tell': {
        const t = this.#running(event, 'tell');
        if (event.constraints) this.#checkConstraintCount(event.number, event.constraints.length);
        this.#checkValueCount(event);
        t.state = event.state;
        t.value = event.state === 'complete' ? event.value : undefined;
        if (event.values) t.values = [...event.values];
        if (event.constraints) t.constraints = [...event.constraints];
        break;
      }
      case 'transfer':
        for (const r of event.results) {
          const t = this.#get(r.number, 'transfer');
          if (t.state !== 'complete')
            throw new Error(`transfer: trial ${r.number} is ${t.state}, not complete`);
        }
        break;
      case 'pbt': {
        const t = this.#running(event, 'pbt');
        this.#get(event.donor, 'pbt donor');
        if (!containsParams(this.space, event.params))
          throw new Error(`pbt: params of trial ${event.number} are not in the space`);
        t.params = { ...event.params };
        t.lineage.push({ step: event.step, donor: event.donor, params: { ...event.params } });
        break;
      }
    }
    this.#events.push(event);
  }

  /** A complete trial has one value per objective: `values` in a multi-objective study, `value` alone else. */
  #checkValueCount(event: TellEvent): void {
    if (event.state !== 'complete') return;
    const count = this.directions.length;
    const got = event.values?.length ?? 1;
    if (event.values !== undefined ? got !== count : count > 1)
      throw new Error(
        `tell: trial ${event.number} has ${got} objective values, the study has ${count} objectives`,
      );
  }

  /** Every constrained trial of a study reports the same number of constraints. */
  #checkConstraintCount(number: number, count: number): void {
    const other = this.#trials.find((t) => t.constraints !== undefined);
    if (other && other.constraints?.length !== count)
      throw new Error(
        `tell: trial ${number} has ${count} constraint values, trial ${other.number} had ${other.constraints?.length}`,
      );
  }

  #running(event: ReportEvent | TellEvent | PbtEvent, what: string): MutableTrial {
    const t = this.#get(event.number, what);
    if (t.state !== 'running') throw new Error(`${what}: trial ${event.number} is already ${t.state}`);
    return t;
  }
}

/** The directions of a study's objectives from its options, checked. */
function studyDirections(options: StudyOptions): Direction[] {
  const valid = (d: unknown): d is Direction => d === 'minimize' || d === 'maximize';
  if (options.directions === undefined) {
    const direction = options.direction ?? 'minimize';
    if (!valid(direction))
      throw new Error(
        `createStudy: direction must be 'minimize' or 'maximize' (got ${JSON.stringify(direction)})`,
      );
    return [direction];
  }
  const list = options.directions;
  if (!Array.isArray(list) || list.length === 0 || !list.every(valid))
    throw new Error(
      `createStudy: directions must be a non-empty list of 'minimize'/'maximize' (got ${JSON.stringify(list)})`,
    );
  if (options.direction !== undefined && options.direction !== list[0])
    throw new Error(
      `createStudy: direction ${JSON.stringify(options.direction)} is not the first of directions ${JSON.stringify(list)}`,
    );
  return [...list];
}

/** Constraint values as a tell takes them: a non-empty list of finite numbers, copied. */
function checkedConstraints(c: readonly number[]): number[] {
  if (!Array.isArray(c) || c.length === 0 || !c.every((v) => typeof v === 'number' && Number.isFinite(v)))
    throw new Error('tell: constraints must be a non-empty list of finite numbers');
  return [...c];
}

export function createStudy(options: StudyOptions): Study {
  return new Study(options);
}

export interface LoadError {
  /** 1-based line number in the log text (or index + 1 in an event array). */
  line: number;
  reason: string;
}

export interface LoadedStudy {
  study: Study;
  /** Lines that could not be loaded (corrupt, truncated or inconsistent); all others were applied. */
  errors: LoadError[];
}

/**
 * Rebuild a study from its log (JSON-lines text or parsed events). Every valid event is applied; the
 * rest are reported. The first event must describe the study, else this throws.
 */
export function loadStudy(
  log: string | readonly unknown[],
  options: { onEvent?: (e: StudyEvent) => void } = {},
): LoadedStudy {
  const items: { line: number; parse: () => unknown }[] = [];
  if (typeof log === 'string') {
    log.split('\n').forEach((text, i) => {
      // Depth-checked: a deeply nested line is reported as such, not as a stack overflow in parseEvent.
      if (text.trim() !== '') items.push({ line: i + 1, parse: () => parseJson(text, 'study log') });
    });
  } else if (Array.isArray(log)) {
    log.forEach((e, i) => items.push({ line: i + 1, parse: () => e }));
  } else {
    throw new Error('loadStudy: expected JSON-lines text or an array of events');
  }
  if (items.length === 0) throw new Error('loadStudy: the log is empty');
  let head: StudyStartEvent;
  try {
    const e = parseEvent(items[0].parse());
    if (e.type !== 'study') throw new Error(`first event is '${e.type}', expected 'study'`);
    head = e;
  } catch (e) {
    throw new Error(`loadStudy: line ${items[0].line}: ${(e as Error).message}`);
  }
  const study = studyOfHead(head);
  const errors: LoadError[] = [];
  for (const item of items.slice(1)) {
    try {
      study.applyEvent(parseEvent(item.parse()));
    } catch (e) {
      errors.push({ line: item.line, reason: (e as Error).message });
    }
  }
  study.onEvent = options.onEvent;
  return { study, errors };
}

/** An empty study as a log's first event (type 'study') describes it: its space, sampler, pruner, seed and plan. */
export function studyOfHead(head: StudyStartEvent): Study {
  return new Study({
    space: head.space,
    sampler: head.sampler,
    pruner: head.pruner,
    direction: head.direction,
    ...(head.directions ? { directions: head.directions } : {}),
    seed: head.seed,
    ...(head.plan ? { plan: head.plan } : {}),
    ...(head.warmStart ? { warmStart: parseWarmStart(head.warmStart, createSpace(head.space)) } : {}),
  });
}
