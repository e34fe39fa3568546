// Global gradient norm over the flat f32 gradient buffer of all LoRA parameters, the clipping factor, the
// loss-scale unscale and the non-finite flag, written to a 4-word "step control" buffer on the GPU that the
// optimizers read (optimizer.ts): nothing comes back to the CPU between the norm and the update.
// Two dispatches: partial sums of squares (≤ 256 workgroups), then one workgroup that finalises. Their
// workgroup sums use subgroups where the device has them, else the workgroup tree (reductions.ts).

import {
  scalarInverse,
  scalarValue,
  type Scalar,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type DispatchCost,
  type Program,
} from '../gpu/index.ts';
import gradnormWgsl from '../../../shaders/gradnorm.wgsl?raw';
import { chooseReduction, reductionEnables, withReductions, type Reduction } from './reductions.ts';

const WG = 256;
/** Stage-1 workgroups at most; the partials scratch holds 2·GRADNORM_PARTIALS f32. */
export const GRADNORM_PARTIALS = 256;
export const GRADNORM_PARTIALS_BYTES = 8 * GRADNORM_PARTIALS;

/**
 * Layout of the step control buffer (4 words, 16 bytes), shared by gradnorm and the optimizers:
 * word 0 f32 grad scale (multiply raw gradients by it: 1/lossScale · clip; 0 when non-finite),
 * word 1 u32 non-finite flag (the optimizer step is a no-op when set),
 * word 2 f32 norm of the unscaled gradient before clipping (for logging),
 * word 3 u32 count of non-finite (skipped) steps so far: zero it once; gradNorm only increments it.
 */
export const CONTROL = { gradScale: 0, nonFinite: 1, norm: 2, skipped: 3, words: 4, bytes: 16 } as const;

export interface GradNormOptions {
  /** The loss scale the gradients carry; the norm is of g / lossScale. Default 1. */
  lossScale?: Scalar;
  /** Clip to this global norm; ≤ 0 or Infinity disables clipping. Default 0 (off). */
  maxNorm?: number;
  /** A u32 count of non-finite values found elsewhere (e.g. scaleCast overflow); non-zero marks the step. */
  overflow?: BufferBinding;
  /**
   * Workgroup sums with subgroup operations (true) or the workgroup tree (false). Default: subgroups when the
   * device has the 'subgroups' feature; true without it throws GpuFeatureError.
   */
  subgroups?: boolean;
}

/** The three entry points × two reductions, built once. */
const programs = new Map<string, Program>();

function program(entryPoint: string, reduction: Reduction): Program {
  const key = `${entryPoint}:${reduction}`;
  let p = programs.get(key);
  if (!p) {
    p = {
      name: `gradnorm.${entryPoint}${reduction === 'subgroups' ? '.subgroups' : ''}`,
      source: withReductions(gradnormWgsl, reduction),
      entryPoint,
      overrides: { WG },
      enables: reductionEnables(reduction),
    };
    programs.set(key, p);
  }
  return p;
}

/**
 * FLOPs and bytes of gradNorm's two launches over n gradients in `groups` partials: (g·s)² summed per element,
 * every g read once; the finalising fold of the partials and the control words.
 */
export function gradNormCost(n: number, groups: number): { partial: DispatchCost; finalize: DispatchCost } {
  return {
    partial: { flops: 3 * n, bytes: 4 * n + 8 * groups },
    finalize: { flops: 2 * groups + 8, bytes: 8 * groups + 2 * 16 + 4 },
  };
}

/**
 * Writes the step control words (CONTROL) from grads (n f32). `partials` is scratch of
 * GRADNORM_PARTIALS_BYTES. Overwrites control words 0–2 and adds to word 3.
 */
export function gradNorm(
  rec: CommandRecorder,
  control: BufferBinding,
  grads: BufferBinding,
  n: number,
  partials: BufferBinding,
  options: GradNormOptions = {},
): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`gradNorm: n must be a whole number ≥ 0, got ${n}`);
  const lossScale = options.lossScale ?? 1;
  const value = scalarValue(lossScale);
  if (!(value > 0) || !Number.isFinite(value)) {
    throw new RangeError(`gradNorm: lossScale must be finite and > 0, got ${value}`);
  }
  const invLossScale = scalarInverse(lossScale);
  const maxNorm = options.maxNorm ?? 0;
  if (Number.isNaN(maxNorm)) throw new RangeError('gradNorm: maxNorm is NaN');
  const clipAt = Number.isFinite(maxNorm) ? maxNorm : 0;
  const reduction = chooseReduction(rec.gpu, options.subgroups, 'gradNorm');
  const groups = Math.max(1, Math.min(GRADNORM_PARTIALS, Math.ceil(n / (4 * WG))));
  const cost = gradNormCost(n, groups);
  const params = (count: number) => uniforms().u32(count).f32(invLossScale).f32(clipAt).u32(0);
  rec.dispatch(program('gradnorm_partial', reduction), {
    uniforms: params(n),
    buffers: [grads, partials],
    workgroups: [groups],
    cost: cost.partial,
  });
  const withOverflow = options.overflow !== undefined;
  rec.dispatch(program(withOverflow ? 'gradnorm_finalize_overflow' : 'gradnorm_finalize', reduction), {
    uniforms: params(groups),
    buffers: [null, partials, control, options.overflow ?? null],
    workgroups: [1],
    cost: cost.finalize,
  });
}
