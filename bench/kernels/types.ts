// A kernel benchmark case: it allocates its inputs once, records its launches into a recorder (timed by GPU
// timestamps, one pass per dispatch), and states the work done so the runner can print GFLOP/s and GB/s.

import type { CommandRecorder, Gpu } from '../../src/engine/gpu/index.ts';
import type { TuneTask } from '../../src/engine/kernels/autotune.ts';

export interface KernelBenchCase {
  /** Row label, e.g. 'matmul q_proj fwd 1024×576×576 f16'. */
  name: string;
  /**
   * Floating-point operations per run (0 for memory-bound kernels), as the case states them: the bench prints
   * the kernels' own count (their launch costs) instead whenever every launch of the case states one.
   */
  flops: number;
  /** Bytes read plus written per run (lower bound: each tensor once); a fallback as `flops` is. */
  bytes: number;
  /** The autotuning task of the case's shape class: `--variants` times each of its variants. */
  tune?: TuneTask;
  setup(gpu: Gpu): { record(rec: CommandRecorder): void; destroy(): void };
}

/** SmolLM2-135M training shapes (issue #3): batch 4 × seq 256 tokens, LoRA r = 16. */
export const SMOL = {
  hidden: 576,
  heads: 9,
  kvHeads: 3,
  headDim: 64,
  ffn: 1536,
  vocab: 49152,
  seq: 256,
  batch: 4,
  tokens: 1024,
  rank: 16,
} as const;
