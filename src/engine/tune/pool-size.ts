// How many trial workers to start when the user does not say. Each worker holds its own copy of the base
// weights plus one trial's adapter, optimizer state and activations (the memory estimate), and WebGPU does
// not tell how much memory the GPU has: assume `budgetBytes` (default 4 GiB, a modest discrete or integrated
// GPU) unless told. Workers on the same GPU share its compute, so more than 4 rarely helps; on a software
// adapter (lavapipe, SwiftShader) they share the CPU instead, so use one per two cores.
import type { ModelSpec } from '../model/config.ts';
import { estimateMemory, optimizerMoments } from '../model/memory.ts';
import type { TrainerOptions } from '../train/trainer.ts';

export interface PoolSizeInput {
  spec: ModelSpec;
  /** The largest trial the space allows (batch, seq, rank, targets). */
  options: TrainerOptions;
  precision: 'f16' | 'f32';
  /** True for CPU adapters. */
  software: boolean;
  cores: number;
  budgetBytes?: number;
}

export function defaultPoolSize(input: PoolSizeInput): { size: number; perWorkerBytes: number; why: string } {
  const { options: o, spec } = input;
  const perWorkerBytes = estimateMemory(spec, {
    batch: o.batch,
    seq: o.seq,
    precision: input.precision,
    lora: { rank: o.lora.r, targets: o.lora.targets, dropout: o.lora.dropout },
    recompute: o.recompute,
    accum: o.accum,
    moments: optimizerMoments(o),
  }).totalBytes;
  if (input.software) {
    const size = Math.max(1, Math.min(4, Math.floor(input.cores / 2)));
    return { size, perWorkerBytes, why: `software adapter: one worker per two of ${input.cores} cores` };
  }
  const budget = input.budgetBytes ?? 4 * 2 ** 30;
  const size = Math.max(1, Math.min(4, Math.floor(budget / perWorkerBytes)));
  return {
    size,
    perWorkerBytes,
    why: `${(perWorkerBytes / 2 ** 20).toFixed(0)} MiB per worker in a ${(budget / 2 ** 30).toFixed(1)} GiB budget`,
  };
}
