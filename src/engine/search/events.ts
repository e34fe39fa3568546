// The study's append-only event log (one JSON object per line). The first event describes the study;
// every later one records a single state change. Replaying the events rebuilds the study exactly.
import type { PrunerSpec } from './pruners/index.ts';
import type { SamplerSpec } from './samplers/index.ts';
import type { Params, SpaceSpec } from './space.ts';
import type { Direction, Json } from './types.ts';

export const LOG_VERSION = 1;

export interface StudyStartEvent {
  type: 'study';
  version: number;
  space: SpaceSpec;
  sampler: SamplerSpec;
  pruner: PrunerSpec;
  direction: Direction;
  /** A multi-objective study's directions, one per objective (directions[0] = direction); absent with one. */
  directions?: Direction[];
  seed: number;
  /** How the study is run beyond the search (StudyOptions.plan); absent in logs written without one. */
  plan?: { [key: string]: Json };
  /** The seed of a warm-started study (warm-start.ts): replayed configurations and prior observations. */
  warmStart?: { [key: string]: Json };
}
export interface AskEvent {
  type: 'ask';
  number: number;
  params: Params;
  /** Sampler memory stored with the trial (e.g. GP hyperparameters); absent when empty. */
  system?: Record<string, Json>;
}
export interface ReportEvent {
  type: 'report';
  number: number;
  step: number;
  /** null encodes a NaN/infinite report, which JSON cannot carry. */
  value: number | null;
}
export interface TellEvent {
  type: 'tell';
  number: number;
  state: 'complete' | 'pruned' | 'failed';
  value?: number;
  /** A multi-objective study's complete trial: one value per objective (values[0] = value). */
  values?: number[];
  /** Constraint values of a complete trial (feasible when all ≤ 0); absent when the study has none. */
  constraints?: number[];
}
/** Population-based training: at `step` the trial copied `donor`'s checkpoint and continued with `params`. */
export interface PbtEvent {
  type: 'pbt';
  number: number;
  step: number;
  donor: number;
  params: Params;
}

/**
 * A transfer check (`tunelab transfer`): the study's top configurations re-run on a larger model with the same
 * data and budget. Changes no trial; kept in the log with the study it checks.
 */
export interface TransferEvent {
  type: 'transfer';
  /** The larger model as given (a directory or an id) and its parameter count. */
  model: string;
  params: number;
  /** Per configuration: the study's trial number, its value there, its value on the larger model (null: failed). */
  results: { number: number; small: number; large: number | null }[];
  /** Kendall τ-b of the two rankings; null when undefined (fewer than two scored, or a constant list). */
  tau: number | null;
  smallBest: number;
  largeBest: number;
  gapPercent: number;
  withinPercent: number;
}

export type StudyEvent = StudyStartEvent | AskEvent | ReportEvent | TellEvent | PbtEvent | TransferEvent;

const isObj = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);
const isFiniteList = (v: unknown): v is number[] =>
  Array.isArray(v) && v.length > 0 && v.every((c) => typeof c === 'number' && Number.isFinite(c));
const isIndex = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** Structural check of one decoded line; semantic checks (trial exists, order) happen on replay. */
export function parseEvent(raw: unknown): StudyEvent {
  if (!isObj(raw)) throw new Error('event is not an object');
  switch (raw.type) {
    case 'study':
      if (!isObj(raw.space)) throw new Error('study event: space must be an object');
      if (raw.direction !== 'minimize' && raw.direction !== 'maximize')
        throw new Error("study event: direction must be 'minimize' or 'maximize'");
      if (typeof raw.seed !== 'number') throw new Error('study event: seed must be a number');
      if (
        raw.directions !== undefined &&
        !(
          Array.isArray(raw.directions) &&
          raw.directions.length >= 2 &&
          raw.directions.every((d) => d === 'minimize' || d === 'maximize') &&
          raw.directions[0] === raw.direction
        )
      )
        throw new Error(
          "study event: directions must be a list of two or more 'minimize'/'maximize', the first = direction",
        );
      if (raw.version !== LOG_VERSION)
        throw new Error(`study event: unsupported version ${JSON.stringify(raw.version)}`);
      if (raw.plan !== undefined && !isObj(raw.plan)) throw new Error('study event: plan must be an object');
      if (raw.warmStart !== undefined && !isObj(raw.warmStart))
        throw new Error('study event: warmStart must be an object');
      return raw as unknown as StudyStartEvent;
    case 'ask':
      if (!isIndex(raw.number)) throw new Error('ask event: number must be a non-negative integer');
      if (!isObj(raw.params)) throw new Error('ask event: params must be an object');
      if (raw.system !== undefined && !isObj(raw.system))
        throw new Error('ask event: system must be an object');
      return raw as unknown as AskEvent;
    case 'report':
      if (!isIndex(raw.number)) throw new Error('report event: number must be a non-negative integer');
      if (!isIndex(raw.step)) throw new Error('report event: step must be a non-negative integer');
      if (raw.value !== null && typeof raw.value !== 'number')
        throw new Error('report event: value must be a number');
      return raw as unknown as ReportEvent;
    case 'tell':
      if (!isIndex(raw.number)) throw new Error('tell event: number must be a non-negative integer');
      if (raw.state !== 'complete' && raw.state !== 'pruned' && raw.state !== 'failed')
        throw new Error("tell event: state must be 'complete', 'pruned' or 'failed'");
      if (raw.state === 'complete' && !(typeof raw.value === 'number' && Number.isFinite(raw.value)))
        throw new Error('tell event: a complete trial needs a finite value');
      if (raw.values !== undefined) {
        if (raw.state !== 'complete') throw new Error('tell event: only a complete trial has values');
        if (!isFiniteList(raw.values) || raw.values[0] !== raw.value)
          throw new Error('tell event: values must be a list of finite numbers, the first = value');
      }
      if (raw.constraints !== undefined) {
        if (raw.state !== 'complete') throw new Error('tell event: only a complete trial has constraints');
        if (!isFiniteList(raw.constraints))
          throw new Error('tell event: constraints must be a non-empty list of finite numbers');
      }
      return raw as unknown as TellEvent;
    case 'pbt':
      if (!isIndex(raw.number) || !isIndex(raw.donor) || !isIndex(raw.step))
        throw new Error('pbt event: number, donor and step must be non-negative integers');
      if (!isObj(raw.params)) throw new Error('pbt event: params must be an object');
      return raw as unknown as PbtEvent;
    case 'transfer':
      if (typeof raw.model !== 'string') throw new Error('transfer event: model must be a string');
      if (!Array.isArray(raw.results) || !raw.results.every((r) => isObj(r) && isIndex(r.number)))
        throw new Error('transfer event: results must be a list of {number, small, large}');
      return raw as unknown as TransferEvent;
    default:
      throw new Error(`unknown event type ${JSON.stringify(raw.type)}`);
  }
}
