// matmul launches. Row-major operands: A is [batch, M, K] (or [batch, K, M] with transA), B is [batch, K, N]
// (or [batch, N, K] with transB), C is [batch, M, N]. A batch stride of 0 broadcasts one operand (a shared
// weight) over the batch. Tall-skinny products split K across workgroups into an f32 workspace.
//
// Variants (gpu.cpp-style, named in benchmarks): `generic` is the strided scalar kernel of shaders/matmul.wgsl
// (any layout and shape, the tested fallback); the `t…` variants are instances of shaders/matmul-tiled.wgsl with
// vec4 loads along each operand's contiguous axis and a register tile per thread, usable when those axes, the
// leading dimensions and the batch strides are multiples of 4; `skinny` (shaders/matmul-skinny.wgsl,
// matmul-skinny.ts) serves N ≤ 64 with K split across the lanes of a workgroup (the LoRA rank-r products). Which
// variant runs for a shape class is the device's autotuned choice (gpu.tuning, see autotune.ts), else the
// heuristic `defaultVariant`; a choice the call cannot use (skinny with extras it cannot fuse) falls back to
// the tiled default.

import {
  bytesPerElement,
  grid1d,
  keepProgram,
  selectSections,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type DispatchCost,
  type Gpu,
  type Program,
  type ScalarType,
  type TensorRef,
} from '../gpu/index.ts';
import dropoutHashWgsl from '../../../shaders/dropout-hash.wgsl?raw';
import { recordSkinny, skinnyFits, skinnyRefusal, SKINNY_MAX_N, type SkinnyLaunch } from './matmul-skinny.ts';
import matmulWgsl from '../../../shaders/matmul.wgsl?raw';
import matmulTiledWgsl from '../../../shaders/matmul-tiled.wgsl?raw';

const GENERIC_TILE = 64;
/** A split-K reduce's traffic is in the partial launch's cost (its workspace term): nothing more to add. */
const REDUCE_COUNTED_ABOVE: DispatchCost = { flops: 0, bytes: 0 };

export interface MatmulDims {
  M: number;
  N: number;
  K: number;
  batch?: number;
}

/**
 * LoRA dropout inside a matmul: element (i, j) of the masked tensor is kept iff hash(seed, step, stream +
 * b·streamStride, i·rowLength + j) ≥ p·2³² (the hash of shaders/dropout-hash.wgsl), and kept values are scaled by
 * 1/(1 − p). The step is word 0 of the u32 buffer `rng` plus `stepOffset`: the host writes the step's base once
 * per step and each micro-batch adds its index, so a step's uniforms and bind groups are the same every step.
 */
export interface DropoutMask {
  p: number;
  seed: number;
  stream: number;
  /** Added to the stream per batch entry (adapters stacked along the batch). Default 0. */
  streamStride?: number;
  /** Row length of the masked tensor: its element (i, j) has index i·rowLength + j. */
  rowLength: number;
  rng: BufferBinding;
  stepOffset: number;
}

/** A strided f32 matrix: element (i, j) of batch entry b is at offset + b·batchStride + i·rowStride + j·colStride. */
export interface StridedMatrix {
  binding: BufferBinding;
  offset?: number;
  rowStride: number;
  colStride: number;
  batchStride?: number;
}

/** A second product over K2, run first and added in: C = alpha·(scale·A2·B2 (masked) + A·B) (+ epilogue). */
export interface MatmulExtension {
  /** f32 (M, K2): u or v. */
  a: StridedMatrix;
  /** f32 (K2, N): B or A of the adapter, in any orientation. */
  b: StridedMatrix;
  K: number;
  scale: number;
  /** Dropout's backward on this product's result (its index: m·rowLength + n). */
  mask?: DropoutMask;
}

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** C = alpha·A·B + beta·C; beta = 1 accumulates into C (gradients). */
  alpha?: number;
  beta?: number;
  /** Batch strides in elements; default dense, 0 broadcasts. */
  aBatchStride?: number;
  bBatchStride?: number;
  cBatchStride?: number;
  /** Element offsets into the bindings and leading dimensions (tiled kernels only); default 0 and dense. */
  aOffset?: number;
  bOffset?: number;
  cOffset?: number;
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** K splits: 1 = none, 'auto' = chosen from the shape. More than 1 needs `workspace`. */
  splits?: number | 'auto';
  /** f32 scratch of at least `matmulWorkspaceBytes(dims, splits)` bytes. */
  workspace?: BufferBinding;
  /** Force a variant (tests, benchmarks, autotuning). */
  variant?: MatmulVariant;
  /** The fused linear's extras (tiled kernels, no split-K): see shaders/matmul-tiled.wgsl. */
  extend?: MatmulExtension;
  /** Dropout on A as it is loaded (A K-contiguous): u = dropout(x)·Aᵀ. */
  maskA?: DropoutMask;
  /** Dropout on B as it is loaded (B N-contiguous): dA = s·vᵀ·dropout(x). */
  maskB?: DropoutMask;
  /** (N) added to every row. */
  bias?: TensorRef;
  /** C = … + R, R in C's storage type and layout (offset `residualOffset`). */
  residual?: TensorRef;
  residualOffset?: number;
  /** f32 (M): C = alpha·A·B + rowScale[m]·C instead of beta. */
  rowScale?: BufferBinding;
}

/** Register-tiled variant: a BM × BN tile, BK deep, TM × TN outputs per thread. */
export interface TileShape {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

export const TILED_VARIANTS = {
  t64x64: { BM: 64, BN: 64, BK: 16, TM: 4, TN: 4 },
  t128x64: { BM: 128, BN: 64, BK: 16, TM: 8, TN: 4 },
  t64x128: { BM: 64, BN: 128, BK: 16, TM: 4, TN: 8 },
  t128x128: { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 },
  t32x32: { BM: 32, BN: 32, BK: 16, TM: 4, TN: 4 },
  /** Skinny N (N = r: x·Aᵀ, dy·B). */
  t128x16: { BM: 128, BN: 16, BK: 16, TM: 4, TN: 4 },
  /** Skinny M (M = r: the LoRA dA product). */
  t16x128: { BM: 16, BN: 128, BK: 16, TM: 4, TN: 4 },
} as const satisfies Record<string, TileShape>;

export type TiledVariant = keyof typeof TILED_VARIANTS;
export type MatmulVariant = TiledVariant | 'generic' | 'skinny';
export const MATMUL_VARIANTS: readonly MatmulVariant[] = [
  'generic',
  ...(Object.keys(TILED_VARIANTS) as TiledVariant[]),
  'skinny',
];

/** The operand layouts a tiled kernel reads as vec4: the contiguous axis of A and of B. */
export interface MatmulLayout {
  /** A is K-contiguous (not transposed). */
  aK: boolean;
  /** B is K-contiguous (transposed, as W in X·Wᵀ). */
  bK: boolean;
}

/** Workgroup bytes of a tiled variant for a layout (the shared A and B tiles, f32, K-rows padded). */
export function tiledSharedBytes(tile: TileShape, layout: MatmulLayout): number {
  const a = layout.aK ? tile.BM * (tile.BK / 4 + 1) : tile.BK * (tile.BM / 4);
  const b = layout.bK ? tile.BN * (tile.BK / 4 + 1) : tile.BK * (tile.BN / 4);
  return 16 * (a + b);
}

/** K splits worth using: only when the output has too few tiles to fill the GPU and K is long. */
export function chooseSplits(dims: MatmulDims): number {
  const { M, N, K, batch = 1 } = dims;
  const tiles = Math.ceil(M / GENERIC_TILE) * Math.ceil(N / GENERIC_TILE) * batch;
  if (tiles >= 64 || K < 512) return 1;
  const byOccupancy = Math.ceil(64 / tiles);
  const byLength = Math.floor(K / 256);
  return Math.max(1, Math.min(byOccupancy, byLength, 64));
}

export function matmulWorkspaceBytes(dims: MatmulDims, splits: number): number {
  return splits <= 1 ? 0 : 4 * splits * (dims.batch ?? 1) * dims.M * dims.N;
}

/** FLOPs and bytes of one matmul, by the kernel's own count (split-K adds its workspace traffic). */
export function matmulCost(
  dims: MatmulDims,
  types: { a: ScalarType; b: ScalarType; c: ScalarType },
  beta = 0,
  splits = 1,
): DispatchCost {
  const { M, N, K, batch = 1 } = dims;
  const c = M * N * batch;
  const bytes =
    batch * (M * K * bytesPerElement(types.a) + K * N * bytesPerElement(types.b)) +
    c * bytesPerElement(types.c) * (beta !== 0 ? 2 : 1) +
    (splits > 1 ? 2 * 4 * splits * c : 0);
  return { flops: 2 * M * N * K * batch, bytes };
}

/** The shape class a tuned choice applies to: layout, storage types and power-of-two buckets of M, N, K. */
export function matmulShapeClass(
  dims: MatmulDims,
  layout: MatmulLayout,
  types: { a: ScalarType; b: ScalarType; c: ScalarType },
): string {
  const bucket = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));
  const l = `${layout.aK ? 'k' : 'm'}${layout.bK ? 'k' : 'n'}`;
  return `${l}:${types.a}${types.b}${types.c}:${bucket(dims.M)}x${bucket(dims.N)}x${bucket(dims.K)}`;
}

/** Whether a tiled kernel can read an operand as vec4: its contiguous axis, ld, offset and batch stride ÷ 4. */
function vec4Readable(contiguous: number, ld: number, offset: number, batchStride: number): boolean {
  return [contiguous, ld, offset, batchStride].every((n) => n % 4 === 0);
}

/** Whether the tiled kernels can read these operands as vec4 (dense layouts, no offsets). */
export function tiledEligible(
  dims: MatmulDims,
  layout: MatmulLayout,
  aBatch: number,
  bBatch: number,
): boolean {
  const { M, N, K } = dims;
  if (!layout.aK && layout.bK) return false;
  const a = layout.aK ? K : M;
  const b = layout.bK ? K : N;
  return vec4Readable(a, a, 0, aBatch) && vec4Readable(b, b, 0, bBatch);
}

/** A variant usable on this device for this layout (workgroup memory and size limits; skinny needs A K-contiguous). */
export function variantFits(gpu: Gpu, variant: MatmulVariant, layout: MatmulLayout): boolean {
  if (variant === 'generic') return true;
  if (variant === 'skinny') return layout.aK && skinnyFits(gpu);
  const tile = TILED_VARIANTS[variant];
  const threads = (tile.BM / tile.TM) * (tile.BN / tile.TN);
  return (
    tiledSharedBytes(tile, layout) <= gpu.limits.maxComputeWorkgroupStorageSize &&
    threads <= gpu.limits.maxComputeInvocationsPerWorkgroup
  );
}

/**
 * Whether a product's shape suits the skinny kernel: A K-contiguous and read as vec4 (K a multiple of 4, dense),
 * 1 ≤ N ≤ 64. (A call may still bring what it cannot fuse: see skinnyRefusal. A plain M = 1 product runs the
 * generic kernel's matvec before any variant is chosen.)
 */
export function skinnyShape(dims: MatmulDims, layout: MatmulLayout): boolean {
  return layout.aK && dims.N >= 1 && dims.N <= SKINNY_MAX_N && dims.K % 4 === 0;
}

/**
 * The heuristic choice when nothing is tuned: on a hardware GPU the skinny kernel for N ≤ 64 (the rank-r LoRA
 * products: it fills the GPU where a tile per 32..128 rows leaves it idle), else `defaultTiledVariant`. Software
 * drivers keep the tiled choice: on lavapipe's few CPU threads the tiled kernels are as fast and compile
 * once for every shape (see BENCHMARKS.md).
 */
export function defaultVariant(gpu: Gpu, dims: MatmulDims, layout: MatmulLayout): MatmulVariant {
  if (!gpu.isSoftware && skinnyShape(dims, layout) && skinnyFits(gpu)) return 'skinny';
  return defaultTiledVariant(gpu, dims, layout);
}

/**
 * The tiled choice: small products take the small tile (one variant, so few pipelines to compile), a skinny tile
 * serves rank-r sides, else the largest tile that still gives about 128 workgroups (enough to keep a large GPU's
 * compute units busy).
 */
export function defaultTiledVariant(gpu: Gpu, dims: MatmulDims, layout: MatmulLayout): TiledVariant {
  const { M, N, batch = 1 } = dims;
  if (M * N * batch < 64 * 64) return 't32x32';
  const fits = (v: TiledVariant) => variantFits(gpu, v, layout);
  if (N <= 16 && fits('t128x16')) return 't128x16';
  if (M <= 16 && fits('t16x128')) return 't16x128';
  const groups = (v: TiledVariant) =>
    Math.ceil(M / TILED_VARIANTS[v].BM) * Math.ceil(N / TILED_VARIANTS[v].BN) * batch;
  for (const v of ['t128x128', 't128x64', 't64x128', 't64x64'] as const) {
    if (fits(v) && groups(v) >= 128) return v;
  }
  return 't64x64';
}

function chooseVariant(
  gpu: Gpu,
  dims: MatmulDims,
  layout: MatmulLayout,
  types: { a: ScalarType; b: ScalarType; c: ScalarType },
): MatmulVariant {
  const tuned = gpu.tuning.get('matmul', matmulShapeClass(dims, layout, types));
  if (tuned === 'generic') return 'generic'; // timed faster than every tiled variant on this device
  if (tuned === 'skinny' && variantFits(gpu, 'skinny', layout)) return 'skinny';
  if (tuned && tuned in TILED_VARIANTS && variantFits(gpu, tuned as TiledVariant, layout)) {
    return tuned as TiledVariant;
  }
  return defaultVariant(gpu, dims, layout);
}

export function matmul(
  rec: CommandRecorder,
  c: TensorRef,
  a: TensorRef,
  b: TensorRef,
  dims: MatmulDims,
  options: MatmulOptions = {},
): void {
  const { M, N, K, batch = 1 } = dims;
  for (const [name, value] of Object.entries({ M, N, K, batch })) {
    if (!Number.isInteger(value) || value < 0)
      throw new RangeError(`matmul: ${name} must be a whole number ≥ 0`);
  }
  const { transA = false, transB = false, alpha = 1, beta = 0 } = options;
  const layout: MatmulLayout = { aK: !transA, bK: transB };
  const types = { a: a.dtype, b: b.dtype, c: c.dtype };
  const fused = hasExtras(options);
  const tiledPossible = !(transA && transB);
  let variant: MatmulVariant;
  const matvec = M === 1 && !fused && !hasStrides(options) && options.variant === undefined;
  if (options.variant === 'generic' || !tiledPossible || matvec) {
    if (fused || hasStrides(options)) {
      throw new RangeError('matmul: offsets, leading dimensions and the fused extras need a tiled variant');
    }
    variant = 'generic'; // M = 1 (decode) runs its matvec kernel
  } else if (options.variant && options.variant !== 'skinny') {
    if (!variantFits(rec.gpu, options.variant, layout)) {
      throw new RangeError(`matmul: variant '${options.variant}' exceeds this GPU's workgroup limits`);
    }
    variant = options.variant;
  } else {
    variant = options.variant ?? chooseVariant(rec.gpu, dims, layout, types);
  }

  const splits = options.splits === 'auto' ? chooseSplits(dims) : (options.splits ?? 1);
  if (variant === 'skinny') {
    const launch = skinnyLaunch(dims, options, splits);
    const refusal = skinnyRefusal(rec.gpu, launch);
    if (refusal === null) {
      recordSkinny(rec, c, a, b, launch, matmulCost(dims, types, beta));
      return;
    }
    if (options.variant === 'skinny')
      throw new RangeError(`matmul: variant 'skinny' cannot run this: ${refusal}`);
    variant = defaultTiledVariant(rec.gpu, dims, layout); // a tuned choice this call's extras rule out
  }
  const bk = variant === 'generic' ? 16 : TILED_VARIANTS[variant].BK;
  const kChunk = Math.ceil(K / splits / bk) * bk; // whole BK tiles per split
  const effectiveSplits = Math.max(1, Math.ceil(K / Math.max(kChunk, 1)));
  if (effectiveSplits > 1 && !options.workspace) {
    throw new Error(
      `matmul: ${effectiveSplits} K splits need a workspace of ${matmulWorkspaceBytes(dims, effectiveSplits)} bytes`,
    );
  }
  if (effectiveSplits > 1 && options.extend) {
    throw new RangeError('matmul: split-K cannot carry a K-extension (each split would add it)');
  }
  const launch: Launch = {
    dims,
    alpha,
    beta,
    aBatch: options.aBatchStride ?? M * K,
    bBatch: options.bBatchStride ?? K * N,
    transA,
    transB,
    kChunk,
    splits: effectiveSplits,
  };
  const cost = matmulCost(dims, types, beta, effectiveSplits);
  if (options.extend) {
    const extra = matmulCost({ M, N, K: options.extend.K, batch }, { a: 'f32', b: 'f32', c: c.dtype });
    cost.flops += extra.flops;
    cost.bytes += extra.bytes - M * N * batch * bytesPerElement(c.dtype);
  }
  if (variant === 'generic') recordGeneric(rec, c, a, b, launch, cost, options.workspace);
  else recordTiled(rec, c, a, b, variant, launch, options, cost);
}

/** The skinny kernel's view of a call: dense defaults filled in, the extras it cannot fuse named. */
function skinnyLaunch(dims: MatmulDims, o: MatmulOptions, splits: number): SkinnyLaunch {
  const { M, N, K, batch = 1 } = dims;
  const { transA = false, transB = false } = o;
  const extras = {
    extend: o.extend,
    maskB: o.maskB,
    bias: o.bias,
    residual: o.residual,
    rowScale: o.rowScale,
  };
  const ldc = o.ldc ?? N;
  return {
    M,
    N,
    K,
    batch,
    transA,
    transB,
    lda: o.lda ?? (transA ? M : K),
    ldb: o.ldb ?? (transB ? K : N),
    ldc,
    aOffset: o.aOffset ?? 0,
    bOffset: o.bOffset ?? 0,
    cOffset: o.cOffset ?? 0,
    aBatch: o.aBatchStride ?? M * K,
    bBatch: o.bBatchStride ?? K * N,
    cBatch: o.cBatchStride ?? M * ldc,
    alpha: o.alpha ?? 1,
    beta: o.beta ?? 0,
    splits,
    unsupported: Object.entries(extras).flatMap(([name, v]) => (v === undefined ? [] : [name])),
    maskA: o.maskA && { ...maskParams(o.maskA), rng: o.maskA.rng },
  };
}

function hasExtras(o: MatmulOptions): boolean {
  return Boolean(o.extend || o.maskA || o.maskB || o.bias || o.residual || o.rowScale);
}

function hasStrides(o: MatmulOptions): boolean {
  return [o.aOffset, o.bOffset, o.cOffset, o.lda, o.ldb, o.ldc, o.cBatchStride].some((v) => v !== undefined);
}

interface Launch {
  dims: MatmulDims;
  alpha: number;
  beta: number;
  aBatch: number;
  bBatch: number;
  transA: boolean;
  transB: boolean;
  kChunk: number;
  splits: number;
}

function recordGeneric(
  rec: CommandRecorder,
  c: TensorRef,
  a: TensorRef,
  b: TensorRef,
  l: Launch,
  cost: DispatchCost,
  workspace: BufferBinding | undefined,
): void {
  const { M, N, K, batch = 1 } = l.dims;
  const [aRow, aCol] = l.transA ? [1, M] : [K, 1];
  const [bRow, bCol] = l.transB ? [1, K] : [N, 1];
  const params = uniforms()
    .u32(M)
    .u32(N)
    .u32(K)
    .u32(batch)
    .u32(aRow)
    .u32(aCol)
    .u32(l.aBatch)
    .u32(l.splits)
    .u32(bRow)
    .u32(bCol)
    .u32(l.bBatch)
    .u32(l.kChunk)
    .u32(N)
    .u32(M * N)
    .f32(l.alpha)
    .f32(l.beta);
  const program = (entryPoint: string): Program => ({
    name: `matmul${entryPoint === 'matmul' ? '' : '.' + entryPoint}`,
    source: matmulWgsl,
    entryPoint,
    aliases: { a_t: a.dtype, b_t: b.dtype, c_t: c.dtype },
  });
  const tiles: [number, number] = [Math.ceil(N / GENERIC_TILE), Math.ceil(M / GENERIC_TILE)];
  if (M === 1 && l.splits <= 1) {
    rec.dispatch(program('matvec'), {
      uniforms: params,
      buffers: [a.binding, b.binding, c.binding],
      workgroups: [Math.ceil(N / 4), 1, batch],
      cost,
    });
    return;
  }
  if (l.splits <= 1 || K === 0) {
    rec.dispatch(program('matmul'), {
      uniforms: params,
      buffers: [a.binding, b.binding, c.binding],
      workgroups: [...tiles, batch],
      cost,
    });
    return;
  }
  rec.dispatch(program('matmul_partial'), {
    uniforms: params,
    buffers: [a.binding, b.binding, null, workspace!],
    workgroups: [...tiles, batch * l.splits],
    cost,
  });
  rec.dispatch(program('splitk_reduce'), {
    uniforms: params,
    buffers: [null, null, c.binding, workspace!],
    workgroups: grid1d(batch * M * N, 256, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    cost: REDUCE_COUNTED_ABOVE,
  });
}

const NO_MASK = {
  threshold: 0,
  keepScale: 1,
  seed: 0,
  stream: 0,
  streamStride: 0,
  rowLength: 0,
  stepOffset: 0,
};

function maskParams(mask: DropoutMask | undefined) {
  if (!mask) return NO_MASK;
  if (!(mask.p >= 0 && mask.p < 1))
    throw new RangeError(`matmul: dropout p must be in [0, 1), got ${mask.p}`);
  return {
    threshold: Math.min(0xffffffff, Math.round(mask.p * 2 ** 32)),
    keepScale: 1 / (1 - mask.p),
    seed: mask.seed >>> 0,
    stream: mask.stream >>> 0,
    streamStride: mask.streamStride ?? 0,
    rowLength: mask.rowLength,
    stepOffset: mask.stepOffset,
  };
}

/**
 * Programs by a key of everything they are made from: a step records the same few programs hundreds of times, and
 * building one (its source from sections, its cache key) costs more host time than the dispatch itself.
 */
const tiledPrograms = new Map<string, Program>();
function tiledProgram(key: string, make: () => Program): Program {
  let program = tiledPrograms.get(key);
  if (!program) {
    program = keepProgram(make());
    tiledPrograms.set(key, program);
  }
  return program;
}

function recordTiled(
  rec: CommandRecorder,
  c: TensorRef,
  a: TensorRef,
  b: TensorRef,
  variant: TiledVariant,
  l: Launch,
  o: MatmulOptions,
  cost: DispatchCost,
): void {
  const { M, N, K, batch = 1 } = l.dims;
  const tile = TILED_VARIANTS[variant];
  const lda = o.lda ?? (l.transA ? M : K);
  const ldb = o.ldb ?? (l.transB ? K : N);
  const ldc = o.ldc ?? N;
  const [aOff, bOff, cOff] = [o.aOffset ?? 0, o.bOffset ?? 0, o.cOffset ?? 0];
  const ext = o.extend;
  if (o.maskA && l.transA) throw new RangeError('matmul: maskA needs a K-contiguous A');
  if (o.maskB && l.transB) throw new RangeError('matmul: maskB needs an N-contiguous B');
  const masks = [o.maskA, o.maskB, ext?.mask].filter((m) => m !== undefined);
  if (masks.length > 1) throw new RangeError('matmul: one dropout mask per launch');
  if (o.bias && o.rowScale) throw new RangeError('matmul: bias and rowScale share a binding: use one');
  const mask = maskParams(masks[0]);
  const params = uniforms()
    .u32(M)
    .u32(N)
    .u32(K)
    .u32(batch)
    .u32(lda)
    .u32(ldb)
    .u32(ldc)
    .u32(l.splits)
    .u32(l.aBatch)
    .u32(l.bBatch)
    .u32(o.cBatchStride ?? M * ldc)
    .u32(l.kChunk)
    .u32(aOff)
    .u32(bOff)
    .u32(cOff)
    .u32(o.residualOffset ?? 0)
    .f32(l.alpha)
    .f32(l.beta)
    .f32(ext?.scale ?? 1)
    .f32(mask.keepScale)
    .u32(ext?.K ?? 0)
    .u32(ext?.a.rowStride ?? 0)
    .u32(ext?.a.colStride ?? 0)
    .u32(ext?.a.offset ?? 0)
    .u32(ext?.b.rowStride ?? 0)
    .u32(ext?.b.colStride ?? 0)
    .u32(ext?.b.offset ?? 0)
    .u32(mask.rowLength)
    .u32(ext?.a.batchStride ?? 0)
    .u32(ext?.b.batchStride ?? 0)
    .u32(mask.seed)
    .u32(mask.threshold)
    .u32(mask.stream)
    .u32(mask.streamStride)
    .u32(mask.stepOffset)
    .u32(0);
  const vecA = vec4Readable(l.transA ? M : K, lda, aOff, l.aBatch);
  const vecB = vec4Readable(l.transB ? K : N, ldb, bOff, l.bBatch);
  const sections = {
    kloop: rec.gpu.isSoftware ? 'rolled' : 'unrolled',
    a: vecA ? 'vec4' : 'scalar',
    b: vecB ? 'vec4' : 'scalar',
    seg2: ext ? 'on' : 'off',
    mask_seg2: ext?.mask ? 'on' : 'off',
    mask_a: o.maskA ? 'on' : 'off',
    mask_b: o.maskB ? 'on' : 'off',
    rng: masks.length > 0 ? 'on' : 'off',
    bias: o.bias ? 'on' : 'off',
    rowscale: o.rowScale ? 'on' : 'off',
    residual: o.residual ? 'on' : 'off',
  };
  const extras = Object.entries(sections)
    .filter(([, choice]) => choice === 'on')
    .map(([name]) => `+${name}`)
    .join('');
  const loads = vecA && vecB ? '' : `.${vecA ? 'v' : 's'}${vecB ? 'v' : 's'}`;
  const kloop = sections.kloop === 'rolled' ? '~' : '';
  const types = `${a.dtype},${b.dtype},${c.dtype},${o.bias?.dtype ?? 'f32'}`;
  const program = (entryPoint: string): Program =>
    tiledProgram(
      `${variant}${kloop}${loads}${extras}|${l.transA ? 1 : 0}${l.transB ? 1 : 0}|${types}|${entryPoint}`,
      () => ({
        name: `matmul.${variant}${loads}${extras}${entryPoint === 'matmul_tiled' ? '' : entryPoint.replace('matmul_tiled', '')}`,
        source: `${selectSections(matmulTiledWgsl, sections)}\n${dropoutHashWgsl}`,
        entryPoint,
        aliases: { a_t: a.dtype, b_t: b.dtype, c_t: c.dtype, e_t: o.bias?.dtype ?? 'f32' },
        consts: { ...tile, A_K: l.transA ? 0 : 1, B_K: l.transB ? 1 : 0 },
      }),
    );
  const rng = masks[0]?.rng ?? null;
  const epi = o.bias?.binding ?? o.rowScale ?? null;
  const buffers = (withInputs: boolean, withOutput: boolean, ws: BufferBinding | null) => [
    withInputs ? a.binding : null,
    withInputs ? b.binding : null,
    withOutput ? c.binding : null,
    ws,
    withInputs && ext ? ext.a.binding : null,
    withInputs && ext ? ext.b.binding : null,
    withOutput ? epi : null,
    withOutput ? (o.residual?.binding ?? null) : null,
    withInputs ? rng : null,
  ];
  const groups: [number, number] = [Math.ceil(N / tile.BN), Math.ceil(M / tile.BM)];
  if (l.splits <= 1 || K === 0) {
    rec.dispatch(program('matmul_tiled'), {
      uniforms: params,
      buffers: buffers(true, true, null),
      workgroups: [...groups, batch],
      cost,
    });
    return;
  }
  rec.dispatch(program('matmul_tiled_partial'), {
    uniforms: params,
    buffers: buffers(true, false, o.workspace!),
    workgroups: [...groups, batch * l.splits],
    cost,
  });
  rec.dispatch(program('matmul_tiled_reduce'), {
    uniforms: params,
    buffers: buffers(false, true, o.workspace!),
    workgroups: grid1d(batch * M * N, 256, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    cost: REDUCE_COUNTED_ABOVE,
  });
}
