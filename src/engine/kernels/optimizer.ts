// Optimizer updates on the f32 master copy of all LoRA parameters: one flat buffer of n f32, cut into
// per-tensor segments that carry a learning-rate multiplier (layer-wise LR decay) and a weight-decay
// multiplier. One dispatch updates every tensor (a per-tensor dispatch would be ~420 for SmolLM2 all-linear
// r=16); threads find their segment by binary search in a small table (see optimizer.wgsl).
// Gradients arrive f32 and loss-scaled; the scale to apply (1/lossScale · clip) and the skip flag come from
// the step control words written on the GPU by gradNorm (gradnorm.ts), so no readback sits between them.
// Both updates overwrite params and their moments in place (state, not gradients).

import {
  grid1d,
  scalarValue,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type Scalar,
  type Uniforms,
} from '../gpu/index.ts';
import optimizerWgsl from '../../../shaders/optimizer.wgsl?raw';

const WG = 256;

export interface ParamSegment {
  /** Elements of this tensor (consecutive in the flat buffer, in table order). */
  length: number;
  /** Learning-rate multiplier. Default 1. */
  lrMult?: number;
  /** Weight-decay multiplier (0 exempts the tensor). Default 1. */
  wdMult?: number;
}

/** The segment table on the GPU: `count` entries of 16 bytes built by `segmentTable`. */
export interface SegmentTableRef {
  binding: BufferBinding;
  count: number;
}

/**
 * Host bytes of the segment table: per segment { end: u32, lrMult: f32, wdMult: f32, pad }, ends cumulative.
 * Upload once per trial (multipliers change only when the LR-decay hyperparameter does).
 */
export function segmentTable(segments: readonly ParamSegment[]): Uint32Array<ArrayBuffer> {
  if (segments.length === 0) throw new RangeError('segmentTable: at least one segment is needed');
  const words = new Uint32Array(4 * segments.length);
  const floats = new Float32Array(words.buffer);
  let end = 0;
  segments.forEach((s, i) => {
    if (!Number.isInteger(s.length) || s.length < 0) {
      throw new RangeError(`segmentTable: segments[${i}].length must be a whole number ≥ 0, got ${s.length}`);
    }
    for (const key of ['lrMult', 'wdMult'] as const) {
      const value = s[key] ?? 1;
      if (!Number.isFinite(value) || value < 0) {
        throw new RangeError(`segmentTable: segments[${i}].${key} must be finite and ≥ 0, got ${value}`);
      }
    }
    end += s.length;
    if (end > 0xffffffff) throw new RangeError('segmentTable: more than 2³²−1 parameters');
    words[4 * i] = end;
    floats[4 * i + 1] = s.lrMult ?? 1;
    floats[4 * i + 2] = s.wdMult ?? 1;
  });
  return words;
}

/** Bytes of AdamW's step state: [u32 applied steps, f32 1−β1ᵗ, f32 1−β2ᵗ, pad]; zero it at initialisation. */
export const ADAMW_STEP_BYTES = 16;

export interface AdamWState {
  /** (n) f32 master parameters. */
  params: BufferBinding;
  /** (n) f32 first moments, zero at start. */
  m: BufferBinding;
  /** (n) f32 second moments, zero at start. */
  v: BufferBinding;
  /** ADAMW_STEP_BYTES of step state, zero at start; must not share a buffer with `control`. */
  step: BufferBinding;
}

export interface AdamWHyper {
  /** A StepScalar in a replayed training step (the schedule moves it every step). */
  lr: Scalar;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
}

/**
 * One AdamW step (PyTorch semantics, decoupled weight decay, bias correction by applied steps) over n params;
 * a no-op on the GPU when the control's non-finite flag is set. Two dispatches: prepare (one thread), update.
 */
export function adamwUpdate(
  rec: CommandRecorder,
  state: AdamWState,
  grads: BufferBinding,
  control: BufferBinding,
  segments: SegmentTableRef,
  n: number,
  hyper: AdamWHyper,
): void {
  const { lr, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0 } = hyper;
  checkCommon('adamwUpdate', n, segments, lr, weightDecay);
  for (const [name, beta] of [
    ['beta1', beta1],
    ['beta2', beta2],
  ] as const) {
    if (!(beta >= 0 && beta < 1)) throw new RangeError(`adamwUpdate: ${name} must be in [0, 1), got ${beta}`);
  }
  if (!(eps > 0) || !Number.isFinite(eps)) throw new RangeError(`adamwUpdate: eps must be > 0, got ${eps}`);
  const u = params(n, segments.count, false, lr, beta1, beta2, eps, weightDecay);
  rec.dispatch(program('adamw_prepare'), {
    uniforms: u,
    buffers: [null, null, null, null, null, control, state.step],
    workgroups: [1],
  });
  rec.dispatch(program('adamw_update'), {
    uniforms: u,
    buffers: [state.params, grads, state.m, state.v, segments.binding, control, null, state.step],
    workgroups: grid1d(n, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}

export interface SgdState {
  /** (n) f32 master parameters. */
  params: BufferBinding;
  /** (n) f32 momentum buffer, zero at start; may be omitted when momentum is 0. */
  momentum?: BufferBinding;
}

export interface SgdHyper {
  lr: Scalar;
  momentum?: number;
  nesterov?: boolean;
  /** Coupled L2 weight decay, as torch.optim.SGD. */
  weightDecay?: number;
}

/** One SGD step (PyTorch semantics, dampening 0); a no-op on the GPU when the non-finite flag is set. */
export function sgdUpdate(
  rec: CommandRecorder,
  state: SgdState,
  grads: BufferBinding,
  control: BufferBinding,
  segments: SegmentTableRef,
  n: number,
  hyper: SgdHyper,
): void {
  const { lr, momentum = 0, nesterov = false, weightDecay = 0 } = hyper;
  checkCommon('sgdUpdate', n, segments, lr, weightDecay);
  if (!(momentum >= 0 && momentum < 1)) {
    throw new RangeError(`sgdUpdate: momentum must be in [0, 1), got ${momentum}`);
  }
  if (nesterov && momentum === 0) throw new RangeError('sgdUpdate: nesterov needs momentum > 0');
  if (momentum > 0 && !state.momentum) throw new RangeError('sgdUpdate: momentum > 0 needs state.momentum');
  const plain = momentum === 0;
  rec.dispatch(program(plain ? 'sgd_plain_update' : 'sgd_update'), {
    uniforms: params(n, segments.count, nesterov, lr, momentum, 0, 0, weightDecay),
    buffers: [state.params, grads, plain ? null : state.momentum!, null, segments.binding, control],
    workgroups: grid1d(n, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}

function program(entryPoint: string) {
  return { name: `optimizer.${entryPoint}`, source: optimizerWgsl, entryPoint, overrides: { WG } };
}

function params(
  n: number,
  segments: number,
  nesterov: boolean,
  lr: Scalar,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
): Uniforms {
  return uniforms()
    .u32(n)
    .u32(segments)
    .u32(nesterov ? 1 : 0)
    .u32(0)
    .f32(lr)
    .f32(beta1)
    .f32(beta2)
    .f32(eps)
    .f32(weightDecay)
    .u32(0)
    .u32(0)
    .u32(0);
}

function checkCommon(
  what: string,
  n: number,
  segments: SegmentTableRef,
  lrScalar: Scalar,
  weightDecay: number,
): void {
  const lr = scalarValue(lrScalar);
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${what}: n must be a whole number ≥ 0, got ${n}`);
  if (!Number.isInteger(segments.count) || segments.count < 1) {
    throw new RangeError(`${what}: segments.count must be ≥ 1, got ${segments.count}`);
  }
  if (!(lr >= 0) || !Number.isFinite(lr))
    throw new RangeError(`${what}: lr must be finite and ≥ 0, got ${lr}`);
  if (!(weightDecay >= 0) || !Number.isFinite(weightDecay)) {
    throw new RangeError(`${what}: weightDecay must be finite and ≥ 0, got ${weightDecay}`);
  }
}
