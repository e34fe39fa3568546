// Cross-entropy of the LM head over the vocabulary in chunks (DESIGN.md: Qwen's 151,936-token vocabulary must
// never be materialised as (N, V) logits). Per chunk of Vc vocabulary rows, z (N, vc) = h (N, C) · W[v0 : v0+vc]ᵀ
// (matmul into an f32 scratch), and each row keeps an online softmax: running max m and sum l.
//
//   crossEntropyTrainForward (training, fused): the logits are computed ONCE per chunk. With m' = max(m, max z),
//     α = exp(m − m'), P = exp(z − m') (in place) and l' = α·l + Σ P, the gradient of h is accumulated in the
//     same pass, G (N, C) f32 ← α∘G + P·W_chunk, as FlashAttention accumulates O. After the last chunk:
//     lse = m + log l, row losses lse − z[target], and dh = lossScale·invNormaliser·(G/l − W[target]).
//     Dispatches: 4 per chunk (3 on the first) + 2; FLOPs of the products 4·N·V·C.
//   crossEntropyForward (evaluation): loss and lse only; 2 dispatches per chunk + 1; 2·N·V·C.
//   crossEntropyBackward (unfused, the path the fused one replaces; the models still call it until they switch):
//     recomputes each chunk's logits from the forward's lse, dlogits in place, dh += dlogits·W_chunk.
//     3 dispatches per chunk; 4·N·V·C (so forward + backward compute the logits twice and 6·N·V·C in all).
// The head is frozen (LoRA never adapts it), so no dW is computed. Rows whose target is the ignore index
// (prompt / padding, −100) contribute nothing to the loss or to dh. The normaliser is supplied, not counted,
// so a training loop can divide by the valid tokens of all its accumulation micro-batches.
// Row reductions use subgroups where the device has them (a tested workgroup-tree fallback otherwise).

import {
  bytesPerElement,
  GpuFeatureError,
  grid1d,
  scalarProduct,
  scalarValue,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type Gpu,
  type Scalar,
  type Program,
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

// The shader ends with two versions of its row reductions; a program keeps the kernels and one of them.
const [KERNELS, TREE_REDUCTIONS, SUBGROUP_REDUCTIONS] = crossEntropyWgsl.split(/^\/\/ ---- reductions: .*$/m);
if (SUBGROUP_REDUCTIONS === undefined) {
  throw new Error('crossentropy.wgsl: expected the two "// ---- reductions: …" sections');
}

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
  /** The storage type of W the plan was made for (it sets the chunk's alignment quantum). */
  weightType: ScalarType;
  /**
   * Bytes of the f32 scratch every chunked launch needs: the (N, Vc) logits chunk (P in training), then four
   * (N) arrays of per-row statistics (max, sum, target logit, α), each starting on the storage alignment.
   */
  scratchBytes: number;
  /** Byte offset of the statistics inside the scratch, and the bytes from one statistics array to the next. */
  statsOffset: number;
  statStride: number;
  /** Bytes of the second f32 scratch the fused training pass needs: G (N, C), then the targets' W rows (N, C). */
  gradScratchBytes: number;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

const alignUp = (bytes: number, align: number): number => Math.ceil(bytes / align) * align;

/**
 * Chunk size and scratch bytes for a chunked cross-entropy (evaluation, training and the unfused backward).
 * Each chunk's slice of W must start on the device's storage offset alignment, so Vc is a multiple of
 * `align / gcd(C·bytes, align)`; the (N, Vc) f32 logits and the (Vc, C) weight slice must each fit one binding.
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
  if (4 * N * vc > maxBinding || rowBytes * vc > maxBinding || 8 * N * C > maxBinding) {
    throw new RangeError(
      `crossEntropy: chunk ${vc} needs ${4 * N * vc} bytes of logits, ${rowBytes * vc} bytes of W and ` +
        `${8 * N * C} bytes of gradient scratch per binding; this GPU binds at most ${maxBinding}`,
    );
  }
  const statsOffset = alignUp(4 * N * vc, align);
  const statStride = alignUp(4 * N, align);
  return {
    chunk: vc,
    chunks: Math.ceil(V / vc),
    weightType,
    scratchBytes: statsOffset + 4 * statStride,
    statsOffset,
    statStride,
    gradScratchBytes: 8 * N * C,
  };
}

export interface CrossEntropyForwardOptions {
  /** 1 / (valid tokens of the whole optimizer step): the loss is Σ row losses times this. */
  invNormaliser: Scalar;
  /** Add into loss[0] instead of overwriting it (micro-batch accumulation). Default false. */
  accumulate?: boolean;
  /** Targets equal to this contribute nothing. Default −100. */
  ignoreIndex?: number;
  /** Vc; default from `crossEntropyPlan`. */
  chunk?: number;
  /** f32 scratch of `crossEntropyPlan(...).scratchBytes` bytes. */
  scratch: BufferBinding;
  /** Row reductions with subgroups (default: when the device has the feature); false forces the tree. */
  subgroups?: boolean;
}

export interface CrossEntropyTrainOptions extends CrossEntropyForwardOptions {
  /** The dynamic loss scale dh is multiplied by (a StepScalar in a replayed training step). Default 1. */
  lossScale?: Scalar;
  /** f32 scratch of `crossEntropyPlan(...).gradScratchBytes` bytes, in a different buffer from `scratch`. */
  gradScratch: BufferBinding;
}

export interface CrossEntropyBackwardOptions {
  invNormaliser: Scalar;
  /** The dynamic loss scale the gradient is multiplied by. Default 1. */
  lossScale?: Scalar;
  ignoreIndex?: number;
  chunk?: number;
  scratch: BufferBinding;
}

export interface CrossEntropyOutputs {
  /** (1) f32: Σ losses · invNormaliser, written or accumulated. */
  loss: BufferBinding;
  /** (N) f32: lse − logit[target] per row, 0 for ignored rows, NaN for targets outside [0, V). */
  losses: BufferBinding;
  /** (N) f32: log-sum-exp of each row's logits. */
  lse: BufferBinding;
}

export interface CrossEntropyTrainOutputs extends CrossEntropyOutputs {
  /** (N, C) f16 or f32: d(loss·lossScale)/dh, WRITTEN (not added): no clear is needed before. */
  dh: TensorRef;
}

/**
 * Loss of h (N, C) against targets (N, i32) through the head W (V, C), in vocabulary chunks (evaluation).
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
  checkNormaliser(options.invNormaliser);
  const sg = useSubgroups(rec.gpu, options.subgroups);
  if (N === 0) return;
  const s = scratchViews(plan, dims, options.scratch);
  for (let v0 = 0; v0 < V; v0 += plan.chunk) {
    const vc = Math.min(plan.chunk, V - v0);
    logitsChunk(rec, s.logits(vc), h, w, v0, vc, C, N);
    rec.dispatch(program('ce_chunk', sg), {
      uniforms: params({ N, V, C, v0, vc, rowStride: vc, statStride: plan.statStride / 4 }, options),
      buffers: bind({ targets, logits: s.logits(vc), stats: s.stats, lse: out.lse, losses: out.losses }),
      workgroups: grid1d(N, 1, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    });
  }
  total(rec, out, N, options, sg);
}

/**
 * Fused training pass: loss, lse and dh (N, C) = d(loss·lossScale)/dh in one sweep over the vocabulary, the
 * logits computed once per chunk. dh is written, not added (the head is the only consumer of the final hidden
 * state, so nothing else adds into it). Same loss and lse as `crossEntropyForward`.
 */
export function crossEntropyTrainForward(
  rec: CommandRecorder,
  out: CrossEntropyTrainOutputs,
  h: TensorRef,
  w: TensorRef,
  targets: BufferBinding,
  dims: CrossEntropyDims,
  options: CrossEntropyTrainOptions,
): void {
  const plan = crossEntropyPlan(rec.gpu, dims, w.dtype, options.chunk);
  const { N, C, V } = dims;
  if (C === 0) throw new RangeError('crossEntropyTrainForward: C must be ≥ 1');
  checkNormaliser(options.invNormaliser);
  const scale = scalarProduct(options.lossScale ?? 1, options.invNormaliser);
  if (!Number.isFinite(scalarValue(scale))) {
    throw new RangeError(`crossEntropyTrainForward: lossScale must be finite, got ${options.lossScale}`);
  }
  const sg = useSubgroups(rec.gpu, options.subgroups);
  if (N === 0) return;
  const s = scratchViews(plan, dims, options.scratch);
  const grad = gradViews(dims, options.gradScratch, s.buffer);
  const statStride = plan.statStride / 4;
  for (let v0 = 0; v0 < V; v0 += plan.chunk) {
    const vc = Math.min(plan.chunk, V - v0);
    const wChunk = weightSlice(rec, w, v0, vc, C);
    logitsChunk(rec, s.logits(vc), h, w, v0, vc, C, N);
    rec.dispatch(program('ce_chunk_train', sg, { w_t: w.dtype }), {
      uniforms: params({ N, V, C, v0, vc, rowStride: vc, statStride }, options),
      buffers: bind({
        targets,
        logits: s.logits(vc),
        stats: s.stats,
        lse: out.lse,
        losses: out.losses,
        wChunk: wChunk.binding,
        grad: grad.all,
      }),
      workgroups: grid1d(N, 1, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    });
    accumulateChunkGradient(rec, grad.g, { binding: s.logits(vc), dtype: 'f32' }, wChunk, s.alpha, {
      N,
      C,
      vc,
      first: v0 === 0,
    });
  }
  rec.dispatch(program('ce_grad', false, { dh_t: out.dh.dtype }), {
    uniforms: params({ N, V, C, v0: 0, vc: 0, rowStride: 0, statStride }, { ...options, scale }),
    buffers: bind({ targets, stats: s.stats, grad: grad.all, dh: out.dh.binding }),
    workgroups: grid1d(N * C, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
  total(rec, out, N, options, sg);
}

/**
 * G (N, C) ← α∘G + P (N, vc) · W_chunk (vc, C): one matmul whose epilogue scales G's rows by α (its per-row β);
 * on the first chunk G ← P·W_chunk (G's old contents, garbage, are never read).
 */
function accumulateChunkGradient(
  rec: CommandRecorder,
  g: TensorRef,
  probs: TensorRef,
  wChunk: TensorRef,
  alpha: BufferBinding,
  d: { N: number; C: number; vc: number; first: boolean },
): void {
  matmul(rec, g, probs, wChunk, { M: d.N, N: d.C, K: d.vc }, d.first ? {} : { rowScale: alpha });
}

/**
 * Unfused: dh (N, C) += d loss / d h from the lse saved by `crossEntropyForward`, the logits recomputed chunk by
 * chunk, scaled by lossScale·invNormaliser. The path `crossEntropyTrainForward` replaces (which computes each
 * chunk's logits once, where this and the forward compute them twice); kept while the models still call it.
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
  const s = scratchViews(plan, dims, options.scratch);
  const scale = scalarProduct(options.lossScale ?? 1, options.invNormaliser);
  for (let v0 = 0; v0 < V; v0 += plan.chunk) {
    const vc = Math.min(plan.chunk, V - v0);
    const logits = s.logits(vc);
    logitsChunk(rec, logits, h, w, v0, vc, C, N);
    rec.dispatch(program('ce_softmax_grad_inplace', false), {
      uniforms: params({ N, V, C, v0, vc, rowStride: vc, statStride: 0 }, { ...options, scale }),
      buffers: bind({ targets, lse, dchunk: logits }),
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
  subgroups?: boolean;
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
  checkNormaliser(options.invNormaliser);
  const sg = useSubgroups(rec.gpu, options.subgroups);
  if (N === 0) return;
  checkSize('crossEntropyForwardFromLogits: scratch', options.scratch, 12 * N);
  rec.dispatch(program('ce_chunk', sg, { logit_t: logits.dtype }), {
    uniforms: params({ N, V, C: 0, v0: 0, vc: V, rowStride: V, statStride: N }, options),
    buffers: bind({
      targets,
      logits: logits.binding,
      stats: options.scratch,
      lse: out.lse,
      losses: out.losses,
    }),
    workgroups: grid1d(N, 1, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
  total(rec, out, N, options, sg);
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
  rec.dispatch(program('ce_softmax_grad', false, { logit_t: logits.dtype, dlogit_t: dlogits.dtype }), {
    uniforms: params({ N, V, C: 0, v0: 0, vc: V, rowStride: V, statStride: 0 }, { ...options, scale }),
    buffers: bind({ targets, logits: logits.binding, lse, dlogits: dlogits.binding }),
    workgroups: grid1d(N * V, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}

export interface KernelCost {
  /** Floating-point operations (exp and log count as one). */
  flops: number;
  /** Bytes read plus written, each tensor once per dispatch that touches it (a lower bound). */
  bytes: number;
  dispatches: number;
}

/**
 * Work of one launch, counted from the same chunk loop the launchers run: 'eval' = crossEntropyForward,
 * 'train' = crossEntropyTrainForward, 'backward' = the unfused crossEntropyBackward (so the path the fused one
 * replaces is eval + backward). h and dh are counted in the plan's weight type, as the models store them.
 */
export function crossEntropyCost(
  dims: CrossEntropyDims,
  plan: Pick<CrossEntropyPlan, 'chunk' | 'weightType'>,
  mode: 'eval' | 'train' | 'backward',
): KernelCost {
  const { N, C, V } = dims;
  const e = bytesPerElement(plan.weightType);
  const cost: KernelCost = { flops: 0, bytes: 0, dispatches: 0 };
  const add = (flops: number, bytes: number, dispatches = 1) => {
    cost.flops += flops;
    cost.bytes += bytes;
    cost.dispatches += dispatches;
  };
  if (N === 0) return cost;
  const rowStats = 4 * N + 3 * 8 * N; // targets, then (m, l, target logit) read and written
  for (let v0 = 0; v0 < V; v0 += plan.chunk) {
    const vc = Math.min(plan.chunk, V - v0);
    const product = (otherBytes: number) => add(2 * N * vc * C, 4 * N * vc + vc * C * e + otherBytes);
    product(N * C * e); // logits = h·W_chunkᵀ (h read, the f32 logits written)
    if (mode === 'eval') add(4 * N * vc, 4 * N * vc + rowStats); // max, then Σ exp(z − m'): 4 per logit
    if (mode === 'train') {
      add(4 * N * vc, 8 * N * vc + rowStats + 4 * N); // the same, P written in place, α saved
      product(v0 > 0 ? 8 * N * C + 4 * N : 4 * N * C); // G ← α∘G + P·W_chunk (α read as the per-row β)
    }
    if (mode === 'backward') {
      add(4 * N * vc, 8 * N * vc + 8 * N); // dlogits = (exp(z − lse) − onehot)·scale, in place
      product(2 * N * C * e); // dh += dlogits·W_chunk
    }
  }
  if (mode === 'train') {
    add(0, N * C * (e + 4), 0); // the targets' W rows copied out by ce_chunk_train
    add(3 * N * C, 8 * N * C + N * C * e + 8 * N); // ce_grad: dh = scale·(G/l − W[target])
  }
  if (mode !== 'backward') add(N, 4 * N + 4); // ce_total
  return cost;
}

// ---------------------------------------------------------------------------------------------------------

/** Subgroup reductions when asked for or, by default, when the device has the feature. */
function useSubgroups(gpu: Gpu, requested: boolean | undefined): boolean {
  const has = gpu.features.has('subgroups');
  if (requested === true && !has) {
    throw new GpuFeatureError(
      `crossEntropy: subgroups were requested but the device has no 'subgroups' feature`,
    );
  }
  return requested ?? has;
}

/** The shader's storage bindings in @binding order from 1 (0 is the uniforms). */
const BINDINGS = [
  'targets',
  'logits',
  'stats',
  'lse',
  'losses',
  'loss',
  'dlogits',
  'dchunk',
  'wChunk',
  'grad',
  'dh',
] as const;

/** The dispatch's buffer list from named bindings; the ones an entry point does not use are left out. */
function bind(named: Partial<Record<(typeof BINDINGS)[number], BufferBinding>>): (BufferBinding | null)[] {
  return BINDINGS.map((name) => named[name] ?? null);
}

type Aliases = Partial<Record<'logit_t' | 'dlogit_t' | 'w_t' | 'dh_t', ScalarType>>;

function program(entryPoint: string, subgroups: boolean, aliases: Aliases = {}): Program {
  return {
    name: `crossentropy.${entryPoint}${subgroups ? '.subgroups' : ''}`,
    source: KERNELS + (subgroups ? SUBGROUP_REDUCTIONS : TREE_REDUCTIONS),
    entryPoint,
    // Every alias is declared in every program (module-scope bindings name them); unused ones stay f32.
    aliases: { logit_t: 'f32', dlogit_t: 'f32', w_t: 'f32', dh_t: 'f32', ...aliases },
    overrides: { WG },
    enables: subgroups ? ['subgroups'] : undefined,
  };
}

interface ChunkParams {
  N: number;
  V: number;
  C: number;
  v0: number;
  vc: number;
  rowStride: number;
  /** Elements from one statistics array to the next. */
  statStride: number;
}

function params(
  c: ChunkParams,
  options: { ignoreIndex?: number; invNormaliser: Scalar; accumulate?: boolean; scale?: Scalar },
): Uniforms {
  return uniforms()
    .u32(c.N)
    .u32(c.V)
    .u32(c.v0)
    .u32(c.vc)
    .u32(c.rowStride)
    .u32(c.v0 === 0 ? 1 : 0)
    .u32(c.v0 + c.vc >= c.V ? 1 : 0)
    .i32(options.ignoreIndex ?? IGNORE_INDEX)
    .f32(options.scale ?? options.invNormaliser)
    .u32(options.accumulate ? 1 : 0)
    .u32(c.C)
    .u32(c.statStride);
}

function total(
  rec: CommandRecorder,
  out: CrossEntropyOutputs,
  N: number,
  options: { invNormaliser: Scalar; accumulate?: boolean; ignoreIndex?: number },
  subgroups: boolean,
): void {
  rec.dispatch(program('ce_total', subgroups), {
    uniforms: params({ N, V: 0, C: 0, v0: 0, vc: 0, rowStride: 0, statStride: 0 }, options),
    buffers: bind({ losses: out.losses, loss: out.loss }),
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

function checkNormaliser(invNormaliser: Scalar): void {
  const value = scalarValue(invNormaliser);
  if (!Number.isFinite(value)) {
    throw new RangeError(`crossEntropy: invNormaliser must be finite, got ${value}`);
  }
}

function splitBinding(binding: BufferBinding): { buffer: GPUBuffer; offset: number; size: number } {
  const { buffer, offset = 0 } = 'buffer' in binding ? binding : { buffer: binding };
  const size = ('buffer' in binding ? binding.size : undefined) ?? buffer.size - offset;
  return { buffer, offset, size };
}

function checkSize(what: string, binding: BufferBinding, bytes: number): void {
  const { size } = splitBinding(binding);
  if (size < bytes) throw new RangeError(`${what} has ${size} bytes; this launch needs ${bytes}`);
}

/** The scratch's regions: the logits chunk (vc columns), all four statistics arrays, and α alone. */
function scratchViews(plan: CrossEntropyPlan, dims: CrossEntropyDims, scratch: BufferBinding) {
  checkSize('crossEntropy: scratch', scratch, plan.scratchBytes);
  const { buffer, offset } = splitBinding(scratch);
  const statsAt = offset + plan.statsOffset;
  return {
    buffer,
    logits: (vc: number): BufferBinding => ({ buffer, offset, size: 4 * dims.N * vc }),
    stats: { buffer, offset: statsAt, size: 4 * plan.statStride },
    alpha: { buffer, offset: statsAt + 3 * plan.statStride, size: 4 * dims.N },
  };
}

/** The gradient scratch: G alone (the matmul's C) and G with the targets' W rows (the kernels' `grad`). */
function gradViews(
  dims: CrossEntropyDims,
  gradScratch: BufferBinding,
  scratchBuffer: GPUBuffer,
): { g: TensorRef; all: BufferBinding } {
  const bytes = 8 * dims.N * dims.C;
  checkSize('crossEntropyTrainForward: gradScratch', gradScratch, bytes);
  const { buffer, offset } = splitBinding(gradScratch);
  if (buffer === scratchBuffer) {
    // P is the matmul's read-only A while G is its writable C: WebGPU refuses one buffer in both roles.
    throw new RangeError('crossEntropyTrainForward: gradScratch must be a different buffer from scratch');
  }
  return {
    g: { binding: { buffer, offset, size: bytes / 2 }, dtype: 'f32' },
    all: { buffer, offset, size: bytes },
  };
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
