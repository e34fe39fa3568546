// The search loop, Optuna's `optimize` over a pool of trial workers: while a worker is free and the budget
// allows, ask the study for a trial, run it in that worker, tell the study how it ended. During a trial every
// evaluation is reported to the study (the pruning rung), and the worker waits for the verdict: continue,
// prune (median / ASHA), or, under PBT, exploit a better trial's checkpoint with perturbed parameters.
//
// Host-agnostic: the study and the sampler live wherever this runs. In the browser, run it in a Worker of its
// own (it only needs TrialSlots, which a pool created there provides) when the sampler is heavy (GP fits);
// the page then only draws.
import type { Params, PbtOptions, Study, Trial } from '../search/index.ts';
import { createPbt } from '../search/index.ts';
import type { EvalMetrics, StepMetrics, TrainerCheckpoint, TrainerOptions } from '../train/trainer.ts';
import { constraintValues, type PlanConstraint } from './constraints.ts';
import { objectiveValue, type Objective } from './objective.ts';
import type { EvalDirective, TrialOutcome, TrialSlots } from './protocol.ts';

export interface OptimizeOptions {
  /** Trials to bring to an end as complete or pruned, counting those already in the study. */
  trials: number;
  objective: Objective;
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
  /** Stops every running trial (they end 'failed', reason 'stopped') and asks no more. */
  signal?: AbortSignal;
  /** Give up asking after this many failures in this run. Default: `trials`. */
  maxFailures?: number;
  listener?: TuneListener;
}

export interface TrialResult {
  number: number;
  state: 'complete' | 'pruned' | 'failed';
  value?: number;
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
  trialStarted?(t: { number: number; slot: number; params: Params; totalSteps: number }): void;
  step?(number: number, m: StepMetrics): void;
  evaluated?(number: number, m: EvalMetrics, value: number): void;
  exploited?(number: number, donor: number, params: Params, note?: string): void;
  trialFinished?(r: TrialResult): void;
  /** A trial finished better than every one before it (its adapter files are in `best.adapter`). */
  newBest?(best: BestTrial): void;
  workerReplaced?(slot: number, reason: string): void;
}

export interface BestTrial {
  number: number;
  value: number;
  params: Params;
  options: TrainerOptions;
  /** The final evaluation (null for a best trial found in a resumed log). */
  metrics: EvalMetrics | null;
  adapter: TrialOutcome['adapter'];
}

export interface OptimizeResult {
  results: TrialResult[];
  best: BestTrial | null;
  stopped: boolean;
  /** Trials found running in a resumed log and marked failed. */
  interrupted: number[];
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

  // A log that ends with trials still running was stopped hard: those trials fail now and are asked again
  // (with new parameters; the budget counts complete and pruned trials only).
  const interrupted = study.trials.filter((t) => t.state === 'running').map((t) => t.number);
  for (const n of interrupted) study.tell(n, { state: 'failed' });
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

  const counted = () => study.trials.filter((t) => t.state === 'complete' || t.state === 'pruned').length;
  const mayAsk = () =>
    !signal?.aborted &&
    failures < maxFailures &&
    counted() + running.size < options.trials &&
    (options.timeoutMs === undefined || performance.now() - started < options.timeoutMs);

  const onAbort = () => running.forEach((slot) => slots.stop(slot));
  signal?.addEventListener('abort', onAbort);

  const free = Array.from({ length: slots.size }, (_, i) => i);
  const inFlight = new Set<Promise<void>>();
  try {
    for (;;) {
      while (free.length > 0 && mayAsk()) {
        const slot = free.shift()!;
        const trial = study.ask(); // ask
        const done = runTrial(slot, trial).then((alive) => {
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
  return { results, best, stopped: signal?.aborted ?? false, interrupted };

  /** Runs one trial in `slot` and tells the study; resolves false when the slot could not be revived. */
  async function runTrial(slot: number, trial: Trial): Promise<boolean> {
    const t0 = performance.now();
    const trainerOptions = options.trainerOptions(trial.params);
    running.set(trial.number, slot);
    let steps = 0;
    let lastStep: StepMetrics | null = null;
    const finish = (r: Omit<TrialResult, 'number' | 'params' | 'slot' | 'seconds' | 'steps'>) => {
      running.delete(trial.number);
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
      });
      const outcome = await slots.run(
        slot,
        {
          number: trial.number,
          options: trainerOptions,
          keepCheckpoint: pbt !== null,
          exportAdapter: true,
          baseModel: options.baseModel,
        },
        {
          onStep: (m) => {
            steps = m.step;
            lastStep = m;
            listener.step?.(trial.number, m);
          },
          onEval: (m, final) => decide(trial, m, final),
        },
      );
      steps = outcome.steps;
      if (outcome.state === 'stopped') {
        study.tell(trial, { state: 'failed' });
        finish({ state: 'failed', reason: 'stopped' });
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
      const bounds = options.constraints ?? [];
      const constraints =
        bounds.length > 0
          ? constraintValues(bounds, { evaluation: outcome.lastEval, lastStep, gpuBytes: outcome.gpuBytes })
          : undefined;
      study.tell(trial, { state: 'complete', value, ...(constraints ? { constraints } : {}) }); // tell
      const feasible = constraints?.every((c) => c <= 0) ?? true;
      if (outcome.checkpoint) finalCheckpoints.set(trial.number, outcome.checkpoint);
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
    if (study.trial(trial.number).state !== 'running') return { action: 'continue' };
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
