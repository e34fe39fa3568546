// The form's memory rule: the largest batch, rank and sequence a search can reach must fit the GPU's buffer
// limits (the engine's estimate, `estimateMemory` + `memoryProblems`, the one the Model step shows), or every
// trial at those values would fail when it allocates. Which setting is at fault: the sequence when even batch 1
// does not fit, else the batch.
import type { ModelSpec } from '../../engine/model/config.ts';
import { DEFAULT_BINDING_LIMITS } from '../../engine/model/family.ts';
import {
  estimateMemory,
  memoryProblems,
  type DeviceMemoryLimits,
  type StoragePrecision,
} from '../../engine/model/memory.ts';

/** What the memory rule needs: the loaded model, the GPU's buffer limits and its precision. */
export interface FormMemory {
  spec: ModelSpec;
  limits: DeviceMemoryLimits;
  /** What 'auto' precision means on this GPU. */
  precision: StoragePrecision;
}

/** The largest values a search reaches (whole numbers; seq within the model's positions). */
export interface MemoryShape {
  batch: number;
  rank: number;
  seq: number;
  precision: StoragePrecision | 'auto';
  recompute: boolean;
}

export interface MemoryProblem {
  setting: 'batch' | 'seq';
  message: string;
}

/** The first buffer that would not fit at the search's largest values, or null when all fit. */
export function memoryProblem(shape: MemoryShape, memory: FormMemory): MemoryProblem | null {
  const precision = shape.precision === 'auto' ? memory.precision : shape.precision;
  const firstProblem = (batch: number): string | null => {
    const estimate = estimateMemory(memory.spec, {
      batch,
      seq: shape.seq,
      precision,
      lora: { rank: shape.rank, targets: 'all-linear' },
      recompute: shape.recompute,
      limits: { ...DEFAULT_BINDING_LIMITS, ...memory.limits },
    });
    return memoryProblems(estimate, memory.limits)[0] ?? null;
  };
  const atLargest = firstProblem(shape.batch);
  if (atLargest === null) return null;
  if (shape.batch > 1 && firstProblem(1) === null)
    return { setting: 'batch', message: `at batch ${shape.batch} (sequence ${shape.seq}) the ${atLargest}` };
  return { setting: 'seq', message: `even at batch 1 the ${atLargest}` };
}
