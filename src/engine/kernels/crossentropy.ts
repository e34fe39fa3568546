// Cross-entropy of the LM head over the vocabulary in chunks (DESIGN.md: Qwen's 151,936-token vocabulary must
// never be materialised as (N, V) logits). Per chunk of Vc vocabulary rows:
//   forward:  logits (N, vc) = h (N, C) · W[v0 : v0+vc]ᵀ   (matmul, f32 scratch)
//             online (max, sumexp) and target logit per row  (ce_chunk)
//             after the last chunk: lse (N), losses (N) = lse − logit[target], loss (+)= Σ losses / normaliser
//   backward: logits recomputed as above, turned in place into dlogits = (softmax − onehot)·lossScale/normaliser,
//             dh (N, C) += dlogits (N, vc) · W[v0 : v0+vc]   (matmul, beta = 1)
// The head is frozen (LoRA never adapts it), so no dW is computed. Rows whose target is the ignore index
// (prompt / padding, −100) contribute nothing to the loss or to dh. The normaliser is supplied, not counted,
// so a training loop can divide by the valid tokens of all its accumulation micro-batches.
// Dispatches: forward 2 per chunk + 1; backward 3 per chunk.

import {
  bytesPerElement,
  grid1d,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type ScalarType,
  type TensorRef,
  type Uniforms,
} from '../gpu/index.ts';
import { matmul } from './matmul.ts';
import crossEntropyWgsl from '../../../shaders/crossentropy.wgsl?raw';

const WG = 256;
/** Vocabulary entries per chunk when the caller does not choose: 8192 f32 logits per row = 32 KiB. */
export const DEFAULT_CE_CHUNK = 8192;
export const IGNORE_INDEX = -100;

export interface CrossEntropyDims {
  /** Rows (tokens). */
  N: number;
  /** Hidden size. */
  C: number;
  /** Vocabulary size. */
  V: number;
}

export interface CrossEntropyPlan {
  /** Vocabulary entries per chunk (Vc). */
  chunk: number;
  chunks: number;
  /** Bytes of f32 scratch the launches need: the (N, Vc) logits chunk, then (N, 3) running statistics. */
  scratchBytes: number;
  /** Byte offset of the running statistics inside the scratch. */
  runningOffset: number;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Chunk size and scratch bytes for a chunked cross-entropy. Each chunk's slice of W must start on the device's
 * storage offset alignment, so Vc is a multiple of `align / gcd(C·bytes, align)`; the (N, Vc) f32 logits and
 * the (Vc, C) weight slice must each fit one storage binding.
 */
export function crossEntropyPlan(
  gpu: {
    limits: Pick<
      GPUSupportedLimits,
      'minStorageBufferOffsetAlignment' | 'maxStorageBufferBindingSize' | 'maxBufferSize'
    >;
  },
  dims: CrossEntropyDims,
  weightType: ScalarType,
  chunk?: number,
): CrossEntropyPlan {
  checkDims('crossEntropyPlan', dims);
  const { N, C, V } = dims;
  const align = gpu.limits.minStorageBufferOffsetAlignment;
  const rowBytes = C * bytesPerElement(weightType);
  const quantum = align / gcd(rowBytes, align);
  const maxBinding = Math.min(gpu.limits.maxStorageBufferBindingSize, gpu.limits.maxBufferSize);
  let vc: number;
  if (chunk !== undefined) {
    if (!Number.isInteger(chunk) || chunk <= 0 || chunk % quantum !== 0) {
      throw new RangeError(
        `crossEntropy: chunk must be a positive multiple of ${quantum} (so each W slice of ${rowBytes}-byte ` +
          `rows starts on the ${align}-byte storage offset alignment), got ${chunk}`,
      );
    }
    vc = Math.min(chunk, Math.ceil(V / quantum) * quantum);
  } else {
    const byBinding = Math.floor(maxBinding / Math.max(4 * N, rowBytes, 1));
    vc = Math.min(DEFAULT_CE_CHUNK, byBinding, Math.ceil(V / quantum) * quantum);
    vc = Math.floor(vc / quantum) * quantum;
    if (vc === 0) {
      throw new RangeError(
        `crossEntropy: no chunk fits: N=${N} rows of f32 logits or a W row of ${rowBytes} bytes times the ` +
          `alignment quantum ${quantum} exceed the ${maxBinding}-byte storage binding limit`,
      );
    }
  }
  if (4 * N * vc > maxBinding || rowBytes * vc > maxBinding) {
    throw new RangeError(
      `crossEntropy: chunk ${vc} needs ${4 * N * vc} bytes of logits and ${rowBytes * vc} bytes of W per ` +
        `binding; this GPU binds at most ${maxBinding}`,
    );
  }
  const runningOffset = Math.ceil((4 * N * vc) / align) * align;
  return {
    chunk: vc,
    chunks: Math.ceil(V / vc),
    scratchBytes: runningOffset + 12 * N,
    runningOffset,
  };
}

export interface CrossEntropyForwardOptions {
  /** 1 / (valid tokens of the whole optimizer step): the loss is Σ row losses times this. */
  invNormaliser: number;
  /** Add into loss[0] instead of overwriting it (micro-batch accumulation). Default false. */
  accumulate?: boolean;
  /** Targets equal to this contribute nothing. Default −100. */
  ignoreIndex?: number;
  /** Vc; default from `crossEntropyPlan`. */
  chunk?: number;
  /** f32 scratch of `crossEntropyPlan(...).scratchBytes` bytes. */
  scratch: BufferBinding;
}

export interface CrossEntropyBackwardOptions {
  invNormaliser: number;
  /** The dynamic loss scale the gradient is multiplied by. Default 1. */
  lossScale?: number;
  ignoreIndex?: number;
  chunk?: number;
  scratch: BufferBinding;
}

export interface CrossEntropyOutputs {
  /** (1) f32: Σ losses · invNormaliser, written or accumulated. */
  loss: BufferBinding;
  /** (N) f32: lse − logit[target] per row, 0 for ignored rows. */
  losses: BufferBinding;
  /** (N) f32: log-sum-exp of each row's logits, saved for backward. */
  lse: BufferBinding;
}

/**
 * Loss of h (N, C) against targets (N, i32) through the head W (V, C), in vocabulary chunks.
 * Overwrites losses and lse; writes loss[0] (or adds to it with `accumulate`).
 */
export function crossEntropyForward(
  rec: CommandRecorder,
  out: CrossEntropyOutputs,
  h: TensorRef,
  w: TensorRef,
  targets: BufferBinding,
  dims: CrossEntropyDims,
  options: CrossEntropyForwardOptions,
): void {
  const plan = crossEntropyPlan(rec.gpu, dims, w.dtype, options.chunk);
  const { N, C, V } = dims;
  if (N === 0) return;
  const scratch = splitBinding(options.scratch);
  const running = { buffer: scratch.buffer, offset: scratch.offset + plan.runningOffset, size: 12 * N };
  for (let v0 = 0; v0 < V; v0 += plan.chunk) {
    const vc = Math.min(plan.chunk, V - v0);
    const logits = { buffer: scratch.buffer, offset: scratch.offset, size: 4 * N * vc };
    logitsChunk(rec, logits, h, w, v0, vc, C, N);
    rec.dispatch(program('ce_chunk', 'f32', 'f32'), {
      uniforms: params({ N, V, v0, vc, rowStride: vc, first: v0 === 0, last: v0 + vc >= V }, options),
      buffers: [targets, logits, running, out.lse, out.losses],
      workgroups: grid1d(N, 1, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    });
  }
  total(rec, out, N, options);
}

/**
 * dh (N, C) += d loss / d h, from the lse saved by the forward; logits are recomputed chunk by chunk.
 * The gradient is scaled by lossScale·invNormaliser. W is frozen: no dW.
 */
export function crossEntropyBackward(
  rec: CommandRecorder,
  dh: TensorRef,
  lse: BufferBinding,
  h: TensorRef,
  w: TensorRef,
  targets: BufferBinding,
  dims: CrossEntropyDims,
  options: CrossEntropyBackwardOptions,
): void {
  const plan = crossEntropyPlan(rec.gpu, dims, w.dtype, options.chunk);
  const { N, C, V } = dims;
  if (N === 0 || C === 0) return;
  const scratch = splitBinding(options.scratch);
  const scale = (options.lossScale ?? 1) * options.invNormaliser;
  for (let v0 = 0; v0 < V; v0 += plan.chunk) {
    const vc = Math.min(plan.chunk, V - v0);
    const logits = { buffer: scratch.buffer, offset: scratch.offset, size: 4 * N * vc };
    logitsChunk(rec, logits, h, w, v0, vc, C, N);
    rec.dispatch(program('ce_softmax_grad_inplace', 'f32', 'f32'), {
      uniforms: params({ N, V, v0, vc, rowStride: vc, first: false, last: false }, { ...options, scale }),
      buffers: [targets, null, null, lse, null, null, null, logits],
      workgroups: grid1d(N * vc, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    });
    // dh (N, C) += dlogits (N, vc) · W[v0 : v0+vc] (vc, C)
    matmul(
      rec,
      dh,
      { binding: logits, dtype: 'f32' },
      weightSlice(rec, w, v0, vc, C),
      { M: N, N: C, K: vc },
      {
        beta: 1,
      },
    );
  }
}

export interface CrossEntropyLogitsOptions {
  invNormaliser: number;
  accumulate?: boolean;
  ignoreIndex?: number;
  /** f32 scratch of 12·N bytes (per-row running statistics). */
  scratch: BufferBinding;
}

/** The same loss when the logits (N, V) are already materialised (small vocabularies): two dispatches. */
export function crossEntropyForwardFromLogits(
  rec: CommandRecorder,
  out: CrossEntropyOutputs,
  logits: TensorRef,
  targets: BufferBinding,
  dims: { N: number; V: number },
  options: CrossEntropyLogitsOptions,
): void {
  const { N, V } = dims;
  checkDims('crossEntropyForwardFromLogits', { N, V, C: 1 });
  if (N === 0) return;
  rec.dispatch(program('ce_chunk', logits.dtype, 'f32'), {
    uniforms: params({ N, V, v0: 0, vc: V, rowStride: V, first: true, last: true }, options),
    buffers: [targets, logits.binding, options.scratch, out.lse, out.losses],
    workgroups: grid1d(N, 1, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
  total(rec, out, N, options);
}

/** Overwrites dlogits (N, V) with (softmax − onehot)·lossScale·invNormaliser (0 on ignored rows). */
export function crossEntropyBackwardFromLogits(
  rec: CommandRecorder,
  dlogits: TensorRef,
  lse: BufferBinding,
  logits: TensorRef,
  targets: BufferBinding,
  dims: { N: number; V: number },
  options: { invNormaliser: number; lossScale?: number; ignoreIndex?: number },
): void {
  const { N, V } = dims;
  checkDims('crossEntropyBackwardFromLogits', { N, V, C: 1 });
  const scale = (options.lossScale ?? 1) * options.invNormaliser;
  rec.dispatch(program('ce_softmax_grad', logits.dtype, dlogits.dtype), {
    uniforms: params({ N, V, v0: 0, vc: V, rowStride: V, first: false, last: false }, { ...options, scale }),
    buffers: [targets, logits.binding, null, lse, null, null, dlogits.binding],
    workgroups: grid1d(N * V, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}

// ---------------------------------------------------------------------------------------------------------

function program(entryPoint: string, logitType: ScalarType, dlogitType: ScalarType) {
  return {
    name: `crossentropy.${entryPoint}`,
    source: crossEntropyWgsl,
    entryPoint,
    aliases: { logit_t: logitType, dlogit_t: dlogitType },
    overrides: { WG },
  };
}

interface ChunkParams {
  N: number;
  V: number;
  v0: number;
  vc: number;
  rowStride: number;
  first: boolean;
  last: boolean;
}

function params(
  c: ChunkParams,
  options: { ignoreIndex?: number; invNormaliser: number; accumulate?: boolean; scale?: number },
): Uniforms {
  return uniforms()
    .u32(c.N)
    .u32(c.V)
    .u32(c.v0)
    .u32(c.vc)
    .u32(c.rowStride)
    .u32(c.first ? 1 : 0)
    .u32(c.last ? 1 : 0)
    .i32(options.ignoreIndex ?? IGNORE_INDEX)
    .f32(options.scale ?? options.invNormaliser)
    .u32(options.accumulate ? 1 : 0)
    .u32(0)
    .u32(0);
}

function total(
  rec: CommandRecorder,
  out: CrossEntropyOutputs,
  N: number,
  options: { invNormaliser: number; accumulate?: boolean; ignoreIndex?: number },
): void {
  if (!Number.isFinite(options.invNormaliser)) {
    throw new RangeError(`crossEntropy: invNormaliser must be finite, got ${options.invNormaliser}`);
  }
  rec.dispatch(program('ce_total', 'f32', 'f32'), {
    uniforms: params({ N, V: 0, v0: 0, vc: 0, rowStride: 0, first: false, last: false }, options),
    buffers: [null, null, null, null, out.losses, out.loss],
    workgroups: [1],
  });
}

function checkDims(what: string, dims: CrossEntropyDims): void {
  for (const [name, value] of Object.entries(dims)) {
    if (!Number.isInteger(value) || value < 0)
      throw new RangeError(`${what}: ${name} must be a whole number ≥ 0`);
  }
  if (dims.V === 0) throw new RangeError(`${what}: V must be ≥ 1`);
}

function splitBinding(binding: BufferBinding): { buffer: GPUBuffer; offset: number } {
  return 'buffer' in binding
    ? { buffer: binding.buffer, offset: binding.offset ?? 0 }
    : { buffer: binding, offset: 0 };
}

/** W[v0 : v0+vc] (vc, C) as a byte range of W's buffer; the plan made the offset aligned. */
function weightSlice(rec: CommandRecorder, w: TensorRef, v0: number, vc: number, C: number): TensorRef {
  const { buffer, offset } = splitBinding(w.binding);
  const bytes = bytesPerElement(w.dtype);
  const sliceOffset = offset + v0 * C * bytes;
  if (sliceOffset % rec.gpu.limits.minStorageBufferOffsetAlignment !== 0) {
    throw new RangeError(
      `crossEntropy: W's binding offset ${offset} is not a multiple of ${rec.gpu.limits.minStorageBufferOffsetAlignment}`,
    );
  }
  // Bind whole 4-byte words: an f16 slice of odd length still ends inside W's (padded) buffer.
  const size = Math.ceil((vc * C * bytes) / 4) * 4;
  return { binding: { buffer, offset: sliceOffset, size: Math.max(4, size) }, dtype: w.dtype };
}

// logits (N, vc) = h (N, C) · W[v0 : v0+vc]ᵀ
function logitsChunk(
  rec: CommandRecorder,
  logits: BufferBinding,
  h: TensorRef,
  w: TensorRef,
  v0: number,
  vc: number,
  C: number,
  N: number,
): void {
  matmul(
    rec,
    { binding: logits, dtype: 'f32' },
    h,
    weightSlice(rec, w, v0, vc, C),
    { M: N, N: vc, K: C },
    {
      transB: true,
    },
  );
}
