// A frozen linear layer with an optional LoRA adapter, forward and backward side by side (llm.c style):
//   y = x·Wᵀ (+ bias) (+ R) + s · (dropout(x)·Aᵀ)·Bᵀ      W (out, in) frozen, A (r, in), B (out, r) f32 masters
// The adapter rides inside the base product (shaders/matmul-tiled.wgsl), so the forward is two dispatches:
//   u = dropout(x)·Aᵀ                       (N, r) f32, saved; the dropout mask applied as x is loaded
//   y = x·Wᵀ + s·u·Bᵀ (+ bias) (+ R)        the up-projection as an extension of K; bias and residual in the epilogue
// and the backward two per linear plus the adapters' gradients, which ACCUMULATE (gradient accumulation across
// micro-batches; the trainer zeroes them once per optimizer step) and are grouped per block phase:
//   v  = dy·B                               (N, r) f32, the adapter's columns of the layer's v
//   dx (+)= dy·W + mask ∘ (s·v·A) / (1 − p) one product: the adapter's path as an extension of K
//   dB += s · dyᵀ·u,  dA += s · vᵀ·dropout(x)   every adapter of a phase in one dispatch (kernels/lora-grads.ts)
// The dropout mask (PEFT's lora_dropout) is never stored: it is the counter hash of (seed, step, stream, index),
// regenerated wherever it is needed. Its step is read from a GPU word (LinearContext.rng) plus a per-micro-batch
// offset, so a training step records the same uniforms every time.

import type { BufferBinding, CommandRecorder, TensorRef } from '../gpu/index.ts';
import { matmul, type DropoutMask, type MatmulOptions } from '../kernels/matmul.ts';

export interface LoraAdapter {
  r: number;
  /** alpha / r, or alpha / √r with rsLoRA. */
  scaling: number;
  a: BufferBinding; // (r, in) f32
  b: BufferBinding; // (out, r) f32
  dA: BufferBinding; // (r, in) f32, accumulated
  dB: BufferBinding; // (out, r) f32, accumulated
  /** Dropout on the adapter's input: probability and this adapter's RNG stream. */
  dropout?: { p: number; seed: number; stream: number };
}

/**
 * An adapter's rank-space activations (u = x·Aᵀ, v = dy·B): columns [column, column + r) of an (N, width) f32
 * buffer that holds every adapter of a layer side by side (so grouped kernels can reach them all at once).
 */
export interface RankColumns {
  buffer: GPUBuffer;
  column: number;
  width: number;
}

/** Per-call state of the linears: where the dropout step lives, or evaluation (no dropout). */
export interface LinearContext {
  /** u32 word 0 = the step's dropout base (written by the host); null when nothing has dropout. */
  rng: GPUBuffer | null;
  /** Added to the base: the micro-batch's index within the step. */
  stepOffset: number;
  /** Evaluation mode (inference): adapters skip their dropout, as PEFT under model.eval(). */
  eval?: boolean;
}

/** The context of evaluation and inference: no dropout anywhere. */
export const EVAL_CONTEXT: LinearContext = { rng: null, stepOffset: 0, eval: true };

function dropoutOf(lora: LoraAdapter, ctx: LinearContext, rowLength: number): DropoutMask | undefined {
  if (!lora.dropout || lora.dropout.p === 0 || ctx.eval) return undefined;
  if (!ctx.rng) throw new Error('a LoRA adapter with dropout needs the context’s rng word');
  return { ...lora.dropout, rowLength, rng: ctx.rng, stepOffset: ctx.stepOffset };
}

export interface Linear {
  /** Frozen weight: (out, in) as torch.nn.Linear stores it, or (in, out) for GPT-2's Conv1D. */
  w: TensorRef;
  layout: 'out-in' | 'in-out';
  inFeatures: number;
  outFeatures: number;
  lora?: LoraAdapter;
}

/** What the forward's epilogue adds to y: a bias (out) and a residual R laid out as y. */
export interface LinearEpilogue {
  bias?: TensorRef;
  residual?: TensorRef;
}

const f32 = (binding: BufferBinding): TensorRef => ({ binding, dtype: 'f32' });

/** A byte range of a buffer, whatever form the binding has. */
function rangeOf(binding: BufferBinding): { buffer: GPUBuffer; offset: number; size: number } {
  if (!('buffer' in binding)) return { buffer: binding, offset: 0, size: binding.size };
  const offset = binding.offset ?? 0;
  return { buffer: binding.buffer, offset, size: binding.size ?? binding.buffer.size - offset };
}

/**
 * The adapters' down-projections u = dropout(x)·Aᵀ of linears that read the same x (q, k, v; gate, up) as ONE
 * batched product when they line up — A matrices at equal strides of one buffer (the LoRA layout puts a
 * layer's A's side by side), u columns side by side, consecutive dropout streams with one p — else one each.
 */
export function loraDown(
  rec: CommandRecorder,
  us: readonly (RankColumns | null)[],
  x: TensorRef,
  layers: readonly Linear[],
  tokens: number,
  ctx: LinearContext,
): void {
  const K = layers[0].inFeatures;
  const parts = layers.flatMap((layer, i) => (layer.lora ? [{ lora: layer.lora, u: us[i] }] : []));
  for (const { u } of parts) if (!u) throw new Error('loraDown: a layer with an adapter needs a u buffer');
  const stacked = parts.length > 1 && stackable(parts as { lora: LoraAdapter; u: RankColumns }[]);
  const groups = stacked ? [parts] : parts.map((p) => [p]);
  for (const group of groups) {
    const [{ lora, u }] = group as { lora: LoraAdapter; u: RankColumns }[];
    const a = rangeOf(lora.a);
    const stride = group.length > 1 ? (rangeOf(group[1].lora.a).offset - a.offset) / 4 : 0;
    const mask = dropoutOf(lora, ctx, K);
    matmul(
      rec,
      f32(u.buffer),
      x,
      f32({ buffer: a.buffer, offset: a.offset, size: stride * (group.length - 1) * 4 + a.size }),
      {
        M: tokens,
        N: lora.r,
        K,
        batch: group.length,
      },
      {
        transB: true,
        aBatchStride: 0, // x is shared
        bBatchStride: stride,
        ldc: u.width,
        cOffset: u.column,
        cBatchStride: lora.r,
        maskA: mask && { ...mask, streamStride: 1 },
      },
    );
  }
}

function stackable(parts: { lora: LoraAdapter; u: RankColumns }[]): boolean {
  const [first] = parts;
  const a0 = rangeOf(first.lora.a);
  const stride = parts.length > 1 ? rangeOf(parts[1].lora.a).offset - a0.offset : 0;
  return parts.every(({ lora, u }, i) => {
    const a = rangeOf(lora.a);
    const d = lora.dropout;
    const d0 = first.lora.dropout;
    return (
      a.buffer === a0.buffer &&
      a.offset === a0.offset + i * stride &&
      a.size === a0.size &&
      lora.r === first.lora.r &&
      u.buffer === first.u.buffer &&
      u.width === first.u.width &&
      u.column === first.u.column + i * first.lora.r &&
      (d?.p ?? 0) === (d0?.p ?? 0) &&
      (!d || !d0 || (d.seed === d0.seed && d.stream === d0.stream + i))
    );
  });
}

/**
 * y (N, out) = x (N, in) · Wᵀ + s·u·Bᵀ (+ bias) (+ residual): the base product with the adapter's
 * up-projection as an extension of K, reading the u that `loraDown` wrote.
 */
export function linearUp(
  rec: CommandRecorder,
  y: TensorRef,
  u: RankColumns | null,
  x: TensorRef,
  layer: Linear,
  tokens: number,
  epilogue: LinearEpilogue = {},
): void {
  const { inFeatures: K, outFeatures: N, lora } = layer;
  const options: MatmulOptions = { transB: layer.layout === 'out-in', ...epilogue };
  if (lora) {
    if (!u) throw new Error('linearUp: a layer with an adapter needs the u loraDown wrote');
    options.extend = {
      a: { binding: u.buffer, offset: u.column, rowStride: u.width, colStride: 1 },
      b: { binding: lora.b, rowStride: 1, colStride: lora.r }, // B2(j, n) = B[n, j]
      K: lora.r,
      scale: lora.scaling,
    };
  }
  matmul(rec, y, x, layer.w, { M: tokens, N, K }, options);
}

/**
 * y (N, out) = x (N, in) · Wᵀ + s·u·Bᵀ (+ bias) (+ residual), with u (N, r) f32 = dropout(x)·Aᵀ written first when
 * there is an adapter (the backward reads it). y = null records only u (activation recomputation, when the
 * backward needs u but not y).
 */
export function linearForward(
  rec: CommandRecorder,
  y: TensorRef | null,
  u: RankColumns | null,
  x: TensorRef,
  layer: Linear,
  tokens: number,
  ctx: LinearContext,
  epilogue: LinearEpilogue = {},
): void {
  loraDown(rec, [u], x, [layer], tokens, ctx);
  if (y) linearUp(rec, y, u, x, layer, tokens, epilogue);
}

/**
 * Gradients of linearForward through the frozen weight and the adapter's path, leaving the adapter's own
 * gradients to `loraGradients` (every adapter of a block phase in one grouped dispatch):
 *   v (N, r) = dy·B into the adapter's columns of the layer's v (its dA reads it there),
 *   dx (+)= dy·W + mask ∘ (s·v·A) / (1 − p), one product with the adapter's path as an extension of K.
 * dx is written, or added to with `accumulateDx` (several layers reading the same input); dx = null skips it
 * (the first layer needs no input gradient).
 */
export function linearBackward(
  rec: CommandRecorder,
  dx: TensorRef | null,
  dy: TensorRef,
  layer: Linear,
  tokens: number,
  v: RankColumns | null,
  ctx: LinearContext,
  accumulateDx = false,
): void {
  const { inFeatures, outFeatures, lora } = layer;
  const base: MatmulOptions = { transB: layer.layout === 'in-out', beta: accumulateDx ? 1 : 0 };
  const dxDims = { M: tokens, N: inFeatures, K: outFeatures };
  if (!lora) {
    // dx (N, in) = dy (N, out) · W, with W (out, in); Conv1D stores Wᵀ.
    if (dx) matmul(rec, dx, dy, layer.w, dxDims, base);
    return;
  }
  if (!v) throw new Error('linearBackward: a layer with an adapter needs its columns of v');
  const { r } = lora;
  // v (N, r) = dy (N, out) · B (out, r)
  matmul(
    rec,
    f32(v.buffer),
    dy,
    f32(lora.b),
    { M: tokens, N: r, K: outFeatures },
    {
      ldc: v.width,
      cOffset: v.column,
    },
  );
  if (!dx) return;
  // dx (N, in) (+)= dy · W + mask ∘ (s · v (N, r) · A (r, in)) / (1 − p)
  matmul(rec, dx, dy, layer.w, dxDims, {
    ...base,
    extend: {
      a: { binding: v.buffer, offset: v.column, rowStride: v.width, colStride: 1 },
      b: { binding: lora.a, rowStride: inFeatures, colStride: 1 },
      K: r,
      scale: lora.scaling,
      mask: dropoutOf(lora, ctx, inFeatures),
    },
  });
}
