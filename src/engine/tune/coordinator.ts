// The search loop, Optuna's `optimize` over a pool of trial workers: while a worker is free and the budget
// allows, ask the study for a trial, run it in that worker, tell the study how it ended. During a trial every
// evaluation is reported to the study (the pruning rung), and the worker waits for the verdict: continue,
// prune (median / ASHA), or, under PBT, exploit a better trial's checkpoint with perturbed parameters.
//
// Host-agnostic: the study and the sampler live wherever this runs. In the browser, run it in a Worker of its
// own (it only needs TrialSlots, which a pool created there provides) when the sampler is heavy (GP fits);
// the page then only draws.
import type { Params, PbtOptions, Study } from '../search/index.ts';
import { createPbt, Trial } from '../search/index.ts';
import { decodeTrialCheckpoint, encodeTrialCheckpoint } from '../checkpoint/trial-checkpoint.ts';
import type { EvalMetrics, StepMetrics, TrainerCheckpoint, TrainerOptions } from '../train/trainer.ts';
import { constraintValues, type PlanConstraint } from './constraints.ts';
import { objectiveValue, type Objective } from './objective.ts';
import { objectiveValues, type PlanObjective } from './objectives.ts';
import type { EvalDirective, TrialOutcome, TrialSlots } from './protocol.ts';

export interface OptimizeOptions {
  /** Trials to bring to an end as complete or pruned, counting those already in the study. */
  trials: number;
  objective: Objective;
  /**
   * A multi-objective study's objectives (the first is `objective`, reported at every evaluation): each
   * complete trial is told one value per objective, and the result is a Pareto front.
   */
  objectives?: readonly PlanObjective[];
  /** Bounds a complete trial must keep to be feasible (told to the study as constraint values). */
  constraints?: readonly PlanConstraint[];
  /** A trial's full trainer options from its params (fixed values merged in). */
  trainerOptions(params: Params): TrainerOptions;
  /** `base_model_name_or_path` of exported adapters. */
  baseModel: string;
  /** Population-based training on top of the sampler (its interval should be a multiple of evalEvery). */
  pbt?: PbtOptions;
  /** No new trial starts after this many ms (running ones finish, as Optuna's timeout). */
  timeoutMs?: number;
  /**
   * Stops every running trial and asks no more. Aborted with the reason PAUSE (and a `checkpoints` store),
   * each running trial is checkpointed there and stays running in the study, to be continued by the next
   * `optimize` over it; otherwise they end 'failed', reason 'stopped'.
   */
  signal?: AbortSignal;
  /** Where paused trials' checkpoints are kept (the page's IndexedDB, the CLI's study folder). */
  checkpoints?: CheckpointStore;
  /** Checkpoint every running trial into `checkpoints` every this many optimizer steps (0: only at a pause). */
  checkpointEvery?: number;
  /** Give up asking after this many failures in this run. Default: `trials`. */
  maxFailures?: number;
  listener?: TuneListener;
}

/** `signal.abort(PAUSE)`: the running trials are checkpointed, not failed. */
export const PAUSE = 'pause';

/** A study's stored trial checkpoints, as bytes (encodeTrialCheckpoint); the host decides where they live. */
export interface CheckpointStore {
  write(trial: number, bytes: Uint8Array<ArrayBuffer>): Promise<void>;
  /** The stored bytes, or null when none were stored. */
  read(trial: number): Promise<Uint8Array | null>;
  remove(trial: number): Promise<void>;
  /** How the stored checkpoint is named in messages (a path, a file name). */
  describe(trial: number): string;
}

export interface TrialResult {
  number: number;
  /** 'paused': checkpointed at a pause; it stays running in the study and continues on resume. */
  state: 'complete' | 'pruned' | 'failed' | 'paused';
  value?: number;
  /** A complete trial's value of each objective, in a multi-objective study. */
  values?: number[];
  /** A complete trial's constraint values (≤ 0 feasible), when the study has constraints. */
  constraints?: number[];
  /** False for a complete trial that broke a constraint: it is never the best. */
  feasible?: boolean;
  /** Why a trial failed. */
  reason?: string;
  params: Params;
  steps: number;
  slot: number;
  seconds: number;
}

export interface TuneListener {
  /** `resumedFrom`: the step a paused trial continues from (0 with `note` when its checkpoint was unusable). */
  trialStarted?(t: {
    number: number;
    slot: number;
    params: Params;
    totalSteps: number;
    resumedFrom?: number;
    note?: string;
  }): void;
  step?(number: number, m: StepMetrics): void;
  /** A trial is evaluating: validation micro-batches done of `total`. */
  evaluating?(number: number, done: number, total: number): void;
  evaluated?(number: number, m: EvalMetrics, value: number): void;
  exploited?(number: number, donor: number, params: Params, note?: string): void;
  trialFinished?(r: TrialResult): void;
  /** A trial finished better than every one before it (its adapter files are in `best.adapter`). */
  newBest?(best: BestTrial): void;
  /**
   * Multi-objective: the Pareto front changed (a trial joined it, perhaps pushing others off). Front trials
   * finished in this run carry their adapter; those found in a resumed log have none here.
   */
  frontChanged?(front: readonly BestTrial[]): void;
  workerReplaced?(slot: number, reason: string): void;
  /** Something went wrong that does not stop the trial (a periodic checkpoint not stored). */
  warning?(text: string): void;
}

export interface BestTrial {
  number: number;
  value: number;
  /** Every objective's value, in a multi-objective study. */
  values?: number[];
  params: Params;
  options: TrainerOptions;
  /** The final evaluation (null for a best trial found in a resumed log). */
  metrics: EvalMetrics | null;
  adapter: TrialOutcome['adapter'];
}

export interface OptimizeResult {
  results: TrialResult[];
  /** Null in a multi-objective study: its result is `front`. */
  best: BestTrial | null;
  /** Multi-objective: the Pareto front of feasible complete trials (empty for one objective). */
  front: BestTrial[];
  stopped: boolean;
  /** Trials found running in a resumed log and marked failed (no checkpoint store, or a PBT lineage lost). */
  interrupted: number[];
  /** Trials found running in a resumed log and continued (from their checkpoint, or from step 0). */
  resumed: number[];
}

/** Where an interrupted trial continues from: its checkpoint, or step 0 and why. */
interface ResumePoint {
  trial: Trial;
  from: TrainerCheckpoint | null;
  note?: string;
}

const copyCheckpoint = (c: TrainerCheckpoint): TrainerCheckpoint => ({
  ...c,
  params: c.params.slice(),
  moments: c.moments.map((m) => m.slice()),
  optimizerStep: c.optimizerStep.slice(),
});

/** Errors that say the trial's configuration cannot run, not that the worker is broken. */
const trialOnly = (e: unknown) =>
  e instanceof Error && (e.name === 'RangeError' || e.name === 'GpuLimitError');

export async function optimize(
  study: Study,
  slots: TrialSlots,
  options: OptimizeOptions,
): Promise<OptimizeResult> {
  const { listener = {}, signal } = options;
  const pbt = options.pbt ? createPbt(study, options.pbt) : null;
  const started = performance.now();
  const results: TrialResult[] = [];
  const running = new Map<number, number>(); // trial → slot
  const finalCheckpoints = new Map<number, TrainerCheckpoint>(); // finished PBT donors
  const maxFailures = options.maxFailures ?? options.trials;
  let failures = 0;
  let best: BestTrial | null = null;
  const multi = options.objectives !== undefined && options.objectives.length > 1;
  // Multi-objective: the front trials' records as the export needs them, adapters of this run's ones kept.
  let front: BestTrial[] = [];

  // A log that ends with trials still running was paused or stopped hard: with a checkpoint store they
  // continue (from their checkpoint, else from step 0: a trial is a deterministic function of its params and
  // seed); without one, or when a PBT exploit happened after the checkpoint, they fail and new ones are asked.
  const interrupted: number[] = [];
  const toResume: ResumePoint[] = [];
  for (const t of study.trials.filter((t) => t.state === 'running')) {
    const point = options.checkpoints ? await resumePoint(study, t.number, options.checkpoints) : null;
    if (point) toResume.push(point);
    else {
      interrupted.push(t.number);
      study.tell(t.number, { state: 'failed' });
    }
  }
  const resumed = toResume.map((p) => p.trial.number);
  const prior = study.bestTrial;
  if (prior)
    best = {
      number: prior.number,
      value: prior.value!,
      params: prior.params,
      options: options.trainerOptions(prior.params),
      metrics: null,
      adapter: null,
    };

  if (multi) front = frontOf(new Map());

  const counted = () => study.trials.filter((t) => t.state === 'complete' || t.state === 'pruned').length;
  const mayAsk = () =>
    !signal?.aborted &&
    failures < maxFailures &&
    counted() + running.size + toResume.length < options.trials &&
    (options.timeoutMs === undefined || performance.now() - started < options.timeoutMs);

  const onAbort = () => running.forEach((slot) => slots.stop(slot));
  signal?.addEventListener('abort', onAbort);

  const free = Array.from({ length: slots.size }, (_, i) => i);
  const inFlight = new Set<Promise<void>>();
  try {
    for (;;) {
      while (free.length > 0 && (toResume.length > 0 ? !signal?.aborted : mayAsk())) {
        const slot = free.shift()!;
        const point = toResume.shift() ?? { trial: study.ask(), from: null }; // paused trials first, then ask
        const done = runTrial(slot, point).then((alive) => {
          inFlight.delete(done);
          if (alive) free.push(slot);
        });
        inFlight.add(done);
      }
      if (inFlight.size === 0) break;
      await Promise.race(inFlight);
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  return { results, best, front, stopped: signal?.aborted ?? false, interrupted, resumed };

  /** The study's front, keeping what is known of trials already on it and adding `fresh` ones. */
  function frontOf(fresh: Map<number, BestTrial>): BestTrial[] {
    const known = new Map(front.map((f) => [f.number, f]));
    return study.bestTrials.map(
      (t) =>
        fresh.get(t.number) ??
        known.get(t.number) ?? {
          number: t.number,
          value: t.value!,
          values: [...(t.values ?? [])],
          params: t.params,
          options: options.trainerOptions(t.params),
          metrics: null,
          adapter: null,
        },
    );
  }

  /** Runs one trial in `slot` and tells the study; resolves false when the slot could not be revived. */
  async function runTrial(slot: number, point: ResumePoint): Promise<boolean> {
    const { trial, from } = point;
    const store = options.checkpoints;
    const t0 = performance.now();
    const trainerOptions = options.trainerOptions(trial.params);
    running.set(trial.number, slot);
    let steps = from?.step ?? 0;
    let lastStep: StepMetrics | null = null;
    const finish = (r: Omit<TrialResult, 'number' | 'params' | 'slot' | 'seconds' | 'steps'>) => {
      running.delete(trial.number);
      // Its checkpoint is no longer needed once it ended; a paused trial's is what it continues from.
      if (r.state !== 'paused') void store?.remove(trial.number).catch(() => {});
      const result: TrialResult = {
        number: trial.number,
        params: trial.params,
        slot,
        steps,
        seconds: (performance.now() - t0) / 1000,
        ...r,
      };
      results.push(result);
      listener.trialFinished?.(result);
    };
    try {
      listener.trialStarted?.({
        number: trial.number,
        slot,
        params: trial.params,
        totalSteps: trainerOptions.steps ?? 0,
        // A resumed trial has its checkpoint, or the note saying why it has none.
        ...(from || point.note !== undefined ? { resumedFrom: from?.step ?? 0 } : {}),
        ...(point.note ? { note: point.note } : {}),
      });
      const outcome = await slots.run(
        slot,
        {
          number: trial.number,
          options: trainerOptions,
          keepCheckpoint: pbt !== null,
          exportAdapter: true,
          baseModel: options.baseModel,
          ...(from ? { resumeFrom: from } : {}),
          ...(store && options.checkpointEvery ? { checkpointEvery: options.checkpointEvery } : {}),
        },
        {
          onStep: (m) => {
            steps = m.step;
            lastStep = m;
            listener.step?.(trial.number, m);
          },
          onEval: (m, final) => decide(trial, m, final),
          onEvalProgress: (done, total) => listener.evaluating?.(trial.number, done, total),
          // A lost periodic checkpoint only means a crash resumes from an older one: said, not fatal.
          onCheckpoint: (c) =>
            store
              ?.write(trial.number, encodeTrialCheckpoint(trial.number, c))
              .catch((error: unknown) =>
                listener.warning?.(
                  `trial ${trial.number}: its step-${c.step} checkpoint could not be stored (${(error as Error).message})`,
                ),
              ),
        },
      );
      steps = outcome.steps;
      if (outcome.state === 'stopped') {
        let reason = 'stopped';
        if (signal?.reason === PAUSE && store && outcome.checkpoint) {
          try {
            await store.write(trial.number, encodeTrialCheckpoint(trial.number, outcome.checkpoint));
            finish({ state: 'paused' });
            return true;
          } catch (error) {
            reason = `paused, but its checkpoint could not be stored (${(error as Error).message})`;
          }
        }
        study.tell(trial, { state: 'failed' });
        finish({ state: 'failed', reason });
        return true;
      }
      if (outcome.state === 'pruned') {
        study.tell(trial, { state: 'pruned' });
        finish({ state: 'pruned' });
        return true;
      }
      const value = outcome.lastEval ? objectiveValue(options.objective, outcome.lastEval) : NaN;
      if (!outcome.lastEval || !Number.isFinite(value)) {
        study.tell(trial, { state: 'failed' });
        failures++;
        finish({ state: 'failed', reason: outcome.lastEval ? `objective is ${value}` : 'no evaluation' });
        return true;
      }
      const measures = { evaluation: outcome.lastEval, lastStep, gpuBytes: outcome.gpuBytes };
      const values = multi ? objectiveValues(options.objectives!, measures) : undefined;
      const unmeasured = values?.findIndex((v) => !Number.isFinite(v)) ?? -1;
      if (values && unmeasured >= 0) {
        study.tell(trial, { state: 'failed' });
        failures++;
        const metric = options.objectives![unmeasured].metric;
        finish({ state: 'failed', reason: `objective ${metric} is ${values[unmeasured]} (not measured)` });
        return true;
      }
      const bounds = options.constraints ?? [];
      const constraints = bounds.length > 0 ? constraintValues(bounds, measures) : undefined;
      const told = values ? { values } : { value };
      study.tell(trial, { state: 'complete', ...told, ...(constraints ? { constraints } : {}) }); // tell
      const feasible = constraints?.every((c) => c <= 0) ?? true;
      if (outcome.checkpoint) finalCheckpoints.set(trial.number, outcome.checkpoint);
      if (values) {
        const entry: BestTrial = {
          number: trial.number,
          value,
          values,
          params: trial.params,
          options: options.trainerOptions(trial.params),
          metrics: outcome.lastEval,
          adapter: outcome.adapter,
        };
        const next = frontOf(new Map([[trial.number, entry]]));
        const changed = next.length !== front.length || next.some((f, i) => f.number !== front[i].number);
        front = next;
        if (changed) listener.frontChanged?.(front);
        finish({ state: 'complete', value, values, ...(constraints ? { constraints, feasible } : {}) });
        return true;
      }
      const sign = study.direction === 'minimize' ? 1 : -1;
      if (feasible && (!best || sign * value < sign * best.value)) {
        best = {
          number: trial.number,
          value,
          params: trial.params,
          options: options.trainerOptions(trial.params),
          metrics: outcome.lastEval,
          adapter: outcome.adapter,
        };
        listener.newBest?.(best);
      }
      finish({ state: 'complete', value, ...(constraints ? { constraints, feasible } : {}) });
      return true;
    } catch (error) {
      failures++;
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      if (study.trial(trial.number).state === 'running') study.tell(trial, { state: 'failed' });
      finish({ state: 'failed', reason });
      if (trialOnly(error)) return true;
      // The worker threw, crashed or lost its device: replace it and go on.
      listener.workerReplaced?.(slot, reason);
      try {
        await slots.restart(slot);
        return true;
      } catch (restartError) {
        listener.workerReplaced?.(slot, `could not restart: ${(restartError as Error).message}`);
        return false;
      }
    }
  }

  /** At an evaluation point: report → shouldPrune → PBT. */
  async function decide(trial: Trial, m: EvalMetrics, final: boolean): Promise<EvalDirective> {
    const value = objectiveValue(options.objective, m);
    const record = study.trial(trial.number);
    if (record.state !== 'running') return { action: 'continue' };
    // A resumed trial reaches again the evaluations made after its checkpoint: the study has them (the same
    // values: same params, seed and state) and its decision then was to continue.
    if (m.step <= (record.intermediate.at(-1)?.[0] ?? -1)) return { action: 'continue' };
    trial.report(m.step, value);
    listener.evaluated?.(trial.number, m, value);
    if (final) return { action: 'continue' };
    if (trial.shouldPrune()) return { action: 'prune' };
    const decision = pbt?.decide(trial);
    if (!decision) return { action: 'continue' };
    const next = options.trainerOptions(decision.params);
    const checkpoint = await donorCheckpoint(decision.exploit);
    if (!checkpoint) {
      // The donor ended without a checkpoint here (e.g. it finished before a resume): explore only.
      listener.exploited?.(
        trial.number,
        decision.exploit,
        decision.params,
        'donor checkpoint unavailable: explore only',
      );
      return { action: 'exploit', donor: decision.exploit, checkpoint: null, options: next };
    }
    listener.exploited?.(trial.number, decision.exploit, decision.params);
    return { action: 'exploit', donor: decision.exploit, checkpoint, options: next };
  }

  async function donorCheckpoint(donor: number): Promise<TrainerCheckpoint | null> {
    const slot = running.get(donor);
    if (slot !== undefined) {
      try {
        return await slots.checkpoint(slot, donor);
      } catch {
        // finished meanwhile: fall through to its final checkpoint
      }
    }
    const kept = finalCheckpoints.get(donor);
    return kept ? copyCheckpoint(kept) : null;
  }
}

/**
 * Where interrupted trial `number` continues from: its stored checkpoint when it reads back whole, else step 0
 * with the reason (a corrupt or missing checkpoint is said, never skipped silently). Null when it cannot
 * continue: a PBT exploit after the checkpoint changed its weights to a donor's that are gone.
 */
async function resumePoint(
  study: Study,
  number: number,
  store: CheckpointStore,
): Promise<ResumePoint | null> {
  const trial = new Trial(study, number);
  let from: TrainerCheckpoint | null = null;
  let note: string | undefined;
  try {
    const bytes = await store.read(number);
    if (bytes) from = await decodeTrialCheckpoint(bytes, store.describe(number), number);
    else note = 'no checkpoint was stored: restarting from step 0';
  } catch (error) {
    note = `its checkpoint was refused (${(error as Error).message}): restarting from step 0`;
  }
  const lastExploit = study.lineage(number).at(-1)?.step ?? -1;
  if (lastExploit >= (from?.step ?? 0)) return null;
  return { trial, from, ...(note ? { note } : {}) };
}
