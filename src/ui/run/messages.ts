// What the page and a trial worker say to each other (structured-clone safe, typed in one place).

import type { Params } from '../../engine/search/index.ts';
import type { PrecisionChoice } from '../../engine/gpu/precision.ts';

/** Everything a worker needs to load the base model and the data once, then run many trials. */
export interface WorkerInit {
  /** The model's files by repo name (Blobs and Files clone cheaply: the bytes are not copied). */
  modelFiles: Record<string, Blob>;
  modelLabel: string;
  dataFile: string;
  dataText: string;
  seq: number;
  valRatio: number;
  seed: number;
  precision: PrecisionChoice;
}

export interface WorkerInfo {
  adapter: string;
  precision: 'f16' | 'f32';
  trainExamples: number;
  validationExamples: number;
  classes: string[] | null;
}

export interface TrialJob {
  number: number;
  /** Sampled and fixed hyperparameters together. */
  params: Params;
  steps: number;
  seed: number;
}

export interface TrialStep {
  step: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
}

export interface TrialOutcome {
  steps: number;
  aborted: boolean;
  trainLoss: number;
  valLoss: number | null;
  accuracy: number | null;
  macroF1: number | null;
  tokensPerSecond: number;
  /** PEFT files of the trained adapter (absent when aborted). */
  adapter: { config: string; weights: Uint8Array<ArrayBuffer> } | null;
}
