// Shared records of the search engine: trials as samplers and pruners see them, and the two plug-in
// interfaces (a sampler is one `sample`, a pruner one `prune`, as in Optuna).
import type { Rng } from '../rng.ts';
import type { Params, SearchSpace } from './space.ts';
import type { PriorObservation } from './warm-start.ts';

export type Direction = 'minimize' | 'maximize';
export type TrialState = 'running' | 'complete' | 'pruned' | 'failed';

import type { Json } from '../json.ts';

export type { Json } from '../json.ts';

/** A trial as recorded in the study: plain data, JSON-serialisable. */
export interface TrialRecord {
  readonly number: number;
  readonly params: Params;
  readonly state: TrialState;
  /** Objective value of a complete trial (the first objective's in a multi-objective study). */
  readonly value: number | undefined;
  /** Every objective's value of a complete trial in a multi-objective study (values[0] = value). */
  readonly values?: readonly number[];
  /** Reported intermediate values, ascending by step. */
  readonly intermediate: readonly (readonly [step: number, value: number])[];
  /** What the sampler chose to remember with the trial (e.g. fitted GP hyperparameters). */
  readonly system: Readonly<Record<string, Json>>;
  /**
   * Constraint values of a complete trial, each feasible when ≤ 0 (Optuna's convention); absent when the
   * study has none.
   */
  readonly constraints?: readonly number[];
}

/** A complete trial is feasible when every constraint value is ≤ 0 (trials without constraints are). */
export const isFeasible = (t: TrialRecord): boolean => !t.constraints || t.constraints.every((c) => c <= 0);

/** How far a trial is from feasible: the sum of its positive constraint values (0 when feasible). */
export const constraintViolation = (t: TrialRecord): number =>
  (t.constraints ?? []).reduce((a, c) => a + Math.max(0, c), 0);

export interface SampleContext {
  readonly space: SearchSpace;
  /** Every trial asked before this one: finished and still running (pending). */
  readonly trials: readonly TrialRecord[];
  /** Number of the trial being sampled. */
  readonly number: number;
  readonly direction: Direction;
  /**
   * One direction per objective in a multi-objective study (directions[0] = direction); absent with one
   * objective.
   */
  readonly directions?: readonly Direction[];
  /** Stream derived from (study seed, trial number): the only source of randomness. */
  readonly rng: Rng;
  /** The study seed, for samplers that derive study-wide streams (e.g. the Sobol scramble). */
  readonly seed: number;
  /**
   * Trials of another study this one was warm-started from (warm-start.ts), in minimisation form; empty
   * for a cold start. Model-based samplers may use them; they are not this study's trials.
   */
  readonly prior: readonly PriorObservation[];
}

export interface Suggestion {
  /** Values for the sampled parameters; missing or invalid ones are drawn from the prior. */
  readonly params: Partial<Params>;
  /** Stored with the trial and logged; later samples may read it back from `trials`. */
  readonly system?: Record<string, Json>;
}

export interface Sampler {
  readonly name: string;
  sample(ctx: SampleContext): Suggestion;
}

export interface PruneContext {
  /** The trial asking, with its intermediate values so far. */
  readonly trial: TrialRecord;
  readonly trials: readonly TrialRecord[];
  readonly direction: Direction;
}

export interface Pruner {
  readonly name: string;
  prune(ctx: PruneContext): boolean;
}

/** A complete trial's objective values: `values`, or [value] in a single-objective study. */
export const trialValues = (t: TrialRecord): readonly number[] =>
  t.values ?? (t.value === undefined ? [] : [t.value]);

/** A complete trial's objective values in minimisation form (maximised ones negated). */
export const lossVector = (t: TrialRecord, directions: readonly Direction[]): number[] =>
  trialValues(t).map((v, i) => minimiseSign(directions[i]) * v);

/** Sign that turns the study's objective into one to minimise. */
export const minimiseSign = (direction: Direction): number => (direction === 'minimize' ? 1 : -1);
