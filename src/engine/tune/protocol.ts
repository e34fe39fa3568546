// What the coordinator and a trial worker say to each other, typed in one place (structured-clone safe).
// A worker loads the base model once (`init`) and then runs trials one after another (`run`), each with a
// fresh adapter; during a trial it calls back with every step and, at every evaluation, waits for the
// coordinator's directive (continue, prune, or exploit another trial's checkpoint under PBT).
import type { PrecisionChoice, TuningRecord } from '../gpu/index.ts';
import type { PeftAdapterFiles } from '../lora/peft.ts';
import type { Example } from '../train/data.ts';
import type { EvalMetrics, StepMetrics, TrainerCheckpoint, TrainerOptions } from '../train/trainer.ts';

/** Where the base model comes from: a directory (Node worker threads only) or its files' bytes. */
export type ModelSource =
  | { kind: 'dir'; path: string }
  | { kind: 'files'; label: string; files: Record<string, Blob | ArrayBuffer | Uint8Array> };

export interface WorkerInit {
  model: ModelSource;
  precision: PrecisionChoice;
  train: readonly Example[];
  validation: readonly Example[];
  padId: number;
  /** Kernel choices tuned once by the host for this adapter; loaded before any trial (workers never tune). */
  tuning?: TuningRecord;
}

export interface WorkerInfo {
  adapter: string;
  precision: 'f16' | 'f32';
  /** Bytes of the frozen base weights on this worker's device. */
  weightBytes: number;
  /** Kernel choices the worker loaded from `WorkerInit.tuning` (0: the heuristic defaults). */
  tunedClasses?: number;
}

export interface TrialJob {
  number: number;
  options: TrainerOptions;
  /** Return the final checkpoint with the outcome (PBT: a finished trial can still be a donor). */
  keepCheckpoint: boolean;
  /** Return the PEFT files of the trained adapter (the coordinator keeps only the best trial's). */
  exportAdapter: boolean;
  /** `base_model_name_or_path` in adapter_config.json. */
  baseModel: string;
  /** A paused trial: continue from this checkpoint (its step, data position, optimizer and scaler state). */
  resumeFrom?: TrainerCheckpoint;
  /** Hand a checkpoint to `onCheckpoint` every this many optimizer steps (0 or absent: never). */
  checkpointEvery?: number;
}

export type EvalDirective =
  | { action: 'continue' }
  | { action: 'prune' }
  /**
   * Load `checkpoint`'s weights and optimizer state (null: keep this trial's own), keep this trial's step and
   * data position, continue with `options`.
   */
  | { action: 'exploit'; donor: number; checkpoint: TrainerCheckpoint | null; options: TrainerOptions };

/** Called from the worker; proxied back to the coordinator (comlink.proxy). */
export interface TrialCallbacks {
  onStep(m: StepMetrics): void;
  onEval(m: EvalMetrics, final: boolean): Promise<EvalDirective> | EvalDirective;
  /** During an evaluation: validation micro-batches done of `total` (every few batches). */
  onEvalProgress?(done: number, total: number): void;
  /** A periodic checkpoint (TrialJob.checkpointEvery); the trial waits until it is stored. */
  onCheckpoint?(c: TrainerCheckpoint): Promise<void> | void;
}

export interface TrialOutcome {
  state: 'complete' | 'pruned' | 'stopped';
  steps: number;
  lastEval: EvalMetrics | null;
  adapter: PeftAdapterFiles | null;
  /** 'stopped': where it stopped (a pause keeps it); 'complete' with keepCheckpoint: its final state. */
  checkpoint: TrainerCheckpoint | null;
  /** GPU bytes the trial held: the frozen weights plus its trainer's (adapter, optimizer state, activations). */
  gpuBytes?: number;
}

/** What the coordinator needs from whatever runs trials: a pool of workers, or the in-process runner. */
export interface TrialSlots {
  readonly size: number;
  run(slot: number, job: TrialJob, callbacks: TrialCallbacks): Promise<TrialOutcome>;
  /** The checkpoint of trial `number`, running in `slot` now. */
  checkpoint(slot: number, number: number): Promise<TrainerCheckpoint>;
  stop(slot: number): void;
  /** Replace the worker of `slot` (after a crash or a lost device): a new one, the model loaded again. */
  restart(slot: number): Promise<WorkerInfo>;
  close(): Promise<void>;
}
