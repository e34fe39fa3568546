// Learning-rate schedules, exactly as transformers' optimization.py defines their LambdaLR multipliers.
// HF calls scheduler.step() after optimizer.step(), so the k-th optimizer update (k = 0, 1, ...) uses
// lr = baseLr · multiplier(k): with warmup the very first update has lr 0, as in HF.

export type ScheduleKind = 'constant' | 'linear' | 'cosine';

export interface ScheduleConfig {
  kind: ScheduleKind;
  /** Total optimizer steps (num_training_steps). */
  totalSteps: number;
  /** warmup_steps; when > 0 it wins over warmupRatio, as in TrainingArguments.get_warmup_steps. */
  warmupSteps?: number;
  /** warmup_ratio in [0, 1]: ⌈totalSteps · ratio⌉ warmup steps. */
  warmupRatio?: number;
  /** Cosine only: num_cycles, default 0.5 (one half-cosine down to 0). */
  numCycles?: number;
  /** Cosine only: the floor as a fraction of the base LR (get_cosine_with_min_lr_schedule_with_warmup's min_lr_rate). */
  minLrRatio?: number;
}

/** TrainingArguments.get_warmup_steps. */
export function warmupSteps(
  config: Pick<ScheduleConfig, 'totalSteps' | 'warmupSteps' | 'warmupRatio'>,
): number {
  const { totalSteps, warmupSteps: steps = 0, warmupRatio = 0 } = config;
  if (!Number.isInteger(steps) || steps < 0) {
    throw new RangeError(`schedule: warmupSteps must be a whole number ≥ 0, got ${steps}`);
  }
  if (!(warmupRatio >= 0 && warmupRatio <= 1)) {
    throw new RangeError(`schedule: warmupRatio must be in [0, 1], got ${warmupRatio}`);
  }
  return steps > 0 ? steps : Math.ceil(totalSteps * warmupRatio);
}

/** The multiplier of the base LR at optimizer step `step` (0-based). */
export type Schedule = (step: number) => number;

export function makeSchedule(config: ScheduleConfig): Schedule {
  const { kind, totalSteps, numCycles = 0.5, minLrRatio = 0 } = config;
  if (!Number.isInteger(totalSteps) || totalSteps < 1) {
    throw new RangeError(`schedule: totalSteps must be a whole number ≥ 1, got ${totalSteps}`);
  }
  if (!(numCycles > 0) || !Number.isFinite(numCycles)) {
    throw new RangeError(`schedule: numCycles must be a finite number > 0, got ${numCycles}`);
  }
  if (!(minLrRatio >= 0 && minLrRatio <= 1)) {
    throw new RangeError(`schedule: minLrRatio must be in [0, 1], got ${minLrRatio}`);
  }
  if (kind !== 'cosine' && minLrRatio !== 0)
    throw new RangeError('schedule: minLrRatio applies to cosine only');
  const W = warmupSteps(config);
  const warm = (step: number): number => step / Math.max(1, W);
  switch (kind) {
    case 'constant':
      // get_constant_schedule_with_warmup (get_constant_schedule when W = 0).
      return (step) => (step < W ? warm(step) : 1);
    case 'linear':
      // get_linear_schedule_with_warmup
      return (step) =>
        step < W ? warm(step) : Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - W));
    case 'cosine':
      // get_cosine_schedule_with_warmup; with minLrRatio, get_cosine_with_min_lr_schedule_with_warmup.
      return (step) => {
        if (step < W) return warm(step);
        const progress = (step - W) / Math.max(1, totalSteps - W);
        const factor = 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress));
        return Math.max(0, factor * (1 - minLrRatio) + minLrRatio);
      };
    default:
      throw new RangeError(`schedule: kind must be constant, linear or cosine, got '${String(kind)}'`);
  }
}

/**
 * Layer-wise LR decay: block l of L gets decay^(L−1−l), so the last block trains at the full LR and earlier
 * ones progressively slower. decay = 1 turns it off.
 */
export function layerDecay(layers: number, decay: number): (layer: number) => number {
  if (!Number.isInteger(layers) || layers < 1) {
    throw new RangeError(`layerDecay: layers must be a whole number ≥ 1, got ${layers}`);
  }
  if (!(decay > 0 && decay <= 1)) throw new RangeError(`layerDecay: decay must be in (0, 1], got ${decay}`);
  return (layer) => {
    if (!Number.isInteger(layer) || layer < 0 || layer >= layers) {
      throw new RangeError(`layerDecay: layer must be in [0, ${layers}), got ${layer}`);
    }
    return decay ** (layers - 1 - layer);
  };
}
