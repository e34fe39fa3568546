// A frozen linear layer with an optional LoRA adapter, forward and backward side by side (llm.c style):
//   y = x·Wᵀ (+ bias) + s · (x·Aᵀ)·Bᵀ          W (out, in) frozen, A (r, in), B (out, r) f32 masters
// Backward computes the input gradient through W and the adapter, and ACCUMULATES the adapter gradients
// (gradient accumulation across micro-batches; the trainer zeroes them once per optimizer step):
//   v  = dy·B            (N, r)      scratch
//   dB += s · dyᵀ·u      (out, r)    u = x·Aᵀ saved by the forward
//   dA += s · vᵀ·x       (r, in)
//   dx (+)= dy·W + s · v·A
// dA and dB are tall-skinny products over K = N tokens: they use split-K.
// With LoRA dropout (PEFT's lora_dropout), the adapter reads xd = dropout(x) instead of x; the mask is
// regenerated in the backward from (seed, step, stream), never stored.

import type { BufferBinding, CommandRecorder, TensorRef } from '../gpu/index.ts';
import { dropoutBackward, dropoutForward, type DropoutOptions } from '../kernels/dropout.ts';
import { chooseSplits, matmul, matmulWorkspaceBytes } from '../kernels/matmul.ts';

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

/** Per-call state of the linears: the dropout step (one per micro-batch) and an (N, in_max) act scratch. */
export interface LinearContext {
  dropoutStep: number;
  /** Holds dropout(x) in the forward, and the adapter's input gradient in the backward. */
  xDrop: BufferBinding | null;
  /** Evaluation mode (inference): adapters skip their dropout, as PEFT under model.eval(). */
  eval?: boolean;
}

function dropoutOf(lora: LoraAdapter, ctx: LinearContext): DropoutOptions | null {
  if (!lora.dropout || lora.dropout.p === 0 || ctx.eval) return null;
  if (!ctx.xDrop) throw new Error('a LoRA adapter with dropout needs the xDrop scratch');
  return { p: lora.dropout.p, seed: lora.dropout.seed, stream: lora.dropout.stream, step: ctx.dropoutStep };
}

export interface Linear {
  /** Frozen weight: (out, in) as torch.nn.Linear stores it, or (in, out) for GPT-2's Conv1D. */
  w: TensorRef;
  layout: 'out-in' | 'in-out';
  inFeatures: number;
  outFeatures: number;
  lora?: LoraAdapter;
}

/** f32 scratch shared by every linear of a model: split-K workspace for the adapter gradients. */
export function linearWorkspaceBytes(
  layers: readonly (Pick<Linear, 'inFeatures' | 'outFeatures'> & { lora?: Pick<LoraAdapter, 'r'> })[],
  tokens: number,
): number {
  let bytes = 0;
  for (const { lora, inFeatures, outFeatures } of layers) {
    if (!lora) continue;
    for (const dims of [
      { M: lora.r, N: inFeatures, K: tokens },
      { M: outFeatures, N: lora.r, K: tokens },
    ]) {
      bytes = Math.max(bytes, matmulWorkspaceBytes(dims, chooseSplits(dims)));
    }
  }
  return bytes;
}

/**
 * y (N, out) = x (N, in) · Wᵀ + s·(x·Aᵀ)·Bᵀ. `u` (N, r) f32 receives x·Aᵀ for the backward when there is an
 * adapter. Set `accumulate` to add into y (a residual connection) instead of overwriting it. y = null records
 * only u (activation recomputation, when the backward needs u but not y).
 */
export function linearForward(
  rec: CommandRecorder,
  y: TensorRef | null,
  u: BufferBinding | null,
  x: TensorRef,
  layer: Linear,
  tokens: number,
  ctx: LinearContext,
  accumulate = false,
): void {
  const { inFeatures: K, outFeatures: N, lora } = layer;
  if (y) {
    matmul(
      rec,
      y,
      x,
      layer.w,
      { M: tokens, N, K },
      { transB: layer.layout === 'out-in', beta: accumulate ? 1 : 0 },
    );
  }
  if (!lora) return;
  if (!u) throw new Error('linearForward: a layer with an adapter needs a u buffer');
  const uRef: TensorRef = { binding: u, dtype: 'f32' };
  const dropout = dropoutOf(lora, ctx);
  let input = x;
  if (dropout) {
    input = { binding: ctx.xDrop!, dtype: x.dtype };
    dropoutForward(rec, input, x, tokens * K, dropout);
  }
  matmul(rec, uRef, input, { binding: lora.a, dtype: 'f32' }, { M: tokens, N: lora.r, K }, { transB: true });
  if (!y) return;
  matmul(
    rec,
    y,
    uRef,
    { binding: lora.b, dtype: 'f32' },
    { M: tokens, N, K: lora.r },
    {
      transB: true,
      alpha: lora.scaling,
      beta: 1,
    },
  );
}

export interface LinearBackwardScratch {
  /** (N, r) f32 for dy·B. */
  v: BufferBinding;
  /** Split-K workspace of `linearWorkspaceBytes` bytes. */
  workspace: BufferBinding;
}

/**
 * Gradients of linearForward. dx is written, or added to with `accumulateDx` (several layers reading the same
 * input); pass dx = null to skip it (the first layer needs no input gradient). Adapter gradients accumulate.
 */
export function linearBackward(
  rec: CommandRecorder,
  dx: TensorRef | null,
  dy: TensorRef,
  x: TensorRef,
  u: BufferBinding | null,
  layer: Linear,
  tokens: number,
  scratch: LinearBackwardScratch,
  ctx: LinearContext,
  accumulateDx = false,
): void {
  const { inFeatures, outFeatures, lora } = layer;
  if (dx) {
    // dx (N, in) = dy (N, out) · W, with W (out, in); Conv1D stores Wᵀ.
    matmul(
      rec,
      dx,
      dy,
      layer.w,
      { M: tokens, N: inFeatures, K: outFeatures },
      {
        transB: layer.layout === 'in-out',
        beta: accumulateDx ? 1 : 0,
      },
    );
  }
  if (!lora) return;
  if (!u) throw new Error('linearBackward: a layer with an adapter needs the u saved by the forward');
  const s = lora.scaling;
  const v: TensorRef = { binding: scratch.v, dtype: 'f32' };
  const splitK = (M: number, N: number) => ({
    splits: chooseSplits({ M, N, K: tokens }),
    workspace: scratch.workspace,
  });
  // v (N, r) = dy (N, out) · B (out, r)
  matmul(rec, v, dy, { binding: lora.b, dtype: 'f32' }, { M: tokens, N: lora.r, K: outFeatures });
  // dB (out, r) += s · dyᵀ (out, N) · u (N, r)
  matmul(
    rec,
    { binding: lora.dB, dtype: 'f32' },
    dy,
    { binding: u, dtype: 'f32' },
    { M: outFeatures, N: lora.r, K: tokens },
    {
      transA: true,
      alpha: s,
      beta: 1,
      ...splitK(outFeatures, lora.r),
    },
  );
  const dropout = dropoutOf(lora, ctx);
  const xDrop: TensorRef | null = dropout ? { binding: ctx.xDrop!, dtype: x.dtype } : null;
  if (dropout) dropoutForward(rec, xDrop!, x, tokens * inFeatures, dropout); // the forward's mask, again
  // dA (r, in) += s · vᵀ (r, N) · xd (N, in)
  matmul(
    rec,
    { binding: lora.dA, dtype: 'f32' },
    v,
    xDrop ?? x,
    { M: lora.r, N: inFeatures, K: tokens },
    {
      transA: true,
      alpha: s,
      beta: 1,
      ...splitK(lora.r, inFeatures),
    },
  );
  if (!dx) return;
  const a: TensorRef = { binding: lora.a, dtype: 'f32' };
  if (dropout) {
    // dxd (N, in) = s · v · A into the scratch, then dx += mask ∘ dxd / (1 − p).
    matmul(rec, xDrop!, v, a, { M: tokens, N: inFeatures, K: lora.r }, { alpha: s });
    dropoutBackward(rec, dx, xDrop!, tokens * inFeatures, { ...dropout, accumulate: true });
  } else {
    // dx (N, in) += s · v (N, r) · A (r, in)
    matmul(rec, dx, v, a, { M: tokens, N: inFeatures, K: lora.r }, { alpha: s, beta: 1 });
  }
}
