// matmul launches. Row-major operands: A is [batch, M, K] (or [batch, K, M] with transA), B is [batch, K, N]
// (or [batch, N, K] with transB), C is [batch, M, N]. A batch stride of 0 broadcasts one operand (a shared
// weight) over the batch. Tall-skinny products split K across workgroups into an f32 workspace.
//
// Variants (gpu.cpp-style, named in benchmarks): `generic` is the strided scalar kernel of shaders/matmul.wgsl
// (any layout and shape, the tested fallback); the `t…` variants are instances of shaders/matmul-tiled.wgsl with
// vec4 loads along each operand's contiguous axis and a register tile per thread, usable when those axes, the
// leading dimensions and the batch strides are multiples of 4. Which tiled variant runs for a shape class is
// the device's autotuned choice (gpu.tuning, see autotune.ts), else the heuristic `defaultVariant`.

import {
  bytesPerElement,
  grid1d,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type DispatchCost,
  type Gpu,
  type Program,
  type ScalarType,
  type TensorRef,
} from '../gpu/index.ts';
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

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** C = alpha·A·B + beta·C; beta = 1 accumulates into C (gradients). */
  alpha?: number;
  beta?: number;
  /** Batch strides in elements; default dense, 0 broadcasts. */
  aBatchStride?: number;
  bBatchStride?: number;
  /** K splits: 1 = none, 'auto' = chosen from the shape. More than 1 needs `workspace`. */
  splits?: number | 'auto';
  /** f32 scratch of at least `matmulWorkspaceBytes(dims, splits)` bytes. */
  workspace?: BufferBinding;
  /** Force a variant (tests, benchmarks, autotuning); an ineligible tiled variant throws. */
  variant?: MatmulVariant;
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
export type MatmulVariant = TiledVariant | 'generic';
export const MATMUL_VARIANTS: readonly MatmulVariant[] = [
  'generic',
  ...(Object.keys(TILED_VARIANTS) as TiledVariant[]),
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

/** Whether the tiled kernels can read these operands as vec4 (else the generic kernel runs). */
export function tiledEligible(
  dims: MatmulDims,
  layout: MatmulLayout,
  aBatch: number,
  bBatch: number,
): boolean {
  const { M, N, K } = dims;
  if (!layout.aK && layout.bK) return false; // Aᵀ·Bᵀ: no caller; the generic kernel covers it
  const aContig = layout.aK ? K : M;
  const bContig = layout.bK ? K : N;
  return [aContig, bContig, aBatch, bBatch].every((n) => n % 4 === 0);
}

/** A tiled variant usable on this device for this layout (workgroup memory and size limits). */
export function variantFits(gpu: Gpu, variant: TiledVariant, layout: MatmulLayout): boolean {
  const tile = TILED_VARIANTS[variant];
  const threads = (tile.BM / tile.TM) * (tile.BN / tile.TN);
  return (
    tiledSharedBytes(tile, layout) <= gpu.limits.maxComputeWorkgroupStorageSize &&
    threads <= gpu.limits.maxComputeInvocationsPerWorkgroup
  );
}

/**
 * The heuristic choice when nothing is tuned: a skinny tile for rank-r sides, else the largest tile that still
 * gives about 128 workgroups (enough to keep a large GPU's compute units busy).
 */
export function defaultVariant(gpu: Gpu, dims: MatmulDims, layout: MatmulLayout): TiledVariant {
  const { M, N, batch = 1 } = dims;
  const fits = (v: TiledVariant) => variantFits(gpu, v, layout);
  if (N <= 16 && fits('t128x16')) return 't128x16';
  if (M <= 16 && fits('t16x128')) return 't16x128';
  const groups = (v: TiledVariant) =>
    Math.ceil(M / TILED_VARIANTS[v].BM) * Math.ceil(N / TILED_VARIANTS[v].BN) * batch;
  for (const v of ['t128x128', 't128x64', 't64x128', 't64x64'] as const) {
    if (fits(v) && groups(v) >= 128) return v;
  }
  return M * N * batch >= 64 * 64 * 16 ? 't64x64' : 't32x32';
}

function chooseVariant(
  gpu: Gpu,
  dims: MatmulDims,
  layout: MatmulLayout,
  types: { a: ScalarType; b: ScalarType; c: ScalarType },
): MatmulVariant {
  const tuned = gpu.tuning.get('matmul', matmulShapeClass(dims, layout, types));
  if (tuned === 'generic') return 'generic'; // timed faster than every tiled variant on this device
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
  const aBatch = options.aBatchStride ?? M * K;
  const bBatch = options.bBatchStride ?? K * N;
  const layout: MatmulLayout = { aK: !transA, bK: transB };
  const types = { a: a.dtype, b: b.dtype, c: c.dtype };
  const eligible = tiledEligible(dims, layout, aBatch, bBatch);
  let variant: MatmulVariant;
  if (options.variant && options.variant !== 'generic') {
    if (!eligible) {
      throw new RangeError(
        `matmul: variant '${options.variant}' needs vec4 operands (contiguous axes, leading dimensions and ` +
          `batch strides multiples of 4, not Aᵀ·Bᵀ); got M=${M} N=${N} K=${K} transA=${transA} transB=${transB}`,
      );
    }
    if (!variantFits(rec.gpu, options.variant, layout)) {
      throw new RangeError(`matmul: variant '${options.variant}' exceeds this GPU's workgroup limits`);
    }
    variant = options.variant;
  } else if (options.variant === 'generic' || !eligible || M === 1) {
    variant = 'generic'; // M = 1 (decode) runs the matvec kernel
  } else {
    variant = chooseVariant(rec.gpu, dims, layout, types);
  }

  const splits = options.splits === 'auto' ? chooseSplits(dims) : (options.splits ?? 1);
  const bk = variant === 'generic' ? 16 : TILED_VARIANTS[variant].BK;
  const kChunk = Math.ceil(K / splits / bk) * bk; // whole BK tiles per split
  const effectiveSplits = Math.max(1, Math.ceil(K / Math.max(kChunk, 1)));
  if (effectiveSplits > 1 && !options.workspace) {
    throw new Error(
      `matmul: ${effectiveSplits} K splits need a workspace of ${matmulWorkspaceBytes(dims, effectiveSplits)} bytes`,
    );
  }
  const launch = { dims, alpha, beta, aBatch, bBatch, transA, transB, kChunk, splits: effectiveSplits };
  const cost = matmulCost(dims, types, beta, effectiveSplits);
  if (variant === 'generic') recordGeneric(rec, c, a, b, launch, cost, options.workspace);
  else recordTiled(rec, c, a, b, variant, launch, cost, options.workspace);
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

function recordTiled(
  rec: CommandRecorder,
  c: TensorRef,
  a: TensorRef,
  b: TensorRef,
  variant: TiledVariant,
  l: Launch,
  cost: DispatchCost,
  workspace: BufferBinding | undefined,
): void {
  const { M, N, K, batch = 1 } = l.dims;
  const tile = TILED_VARIANTS[variant];
  const params = uniforms()
    .u32(M)
    .u32(N)
    .u32(K)
    .u32(batch)
    .u32(l.transA ? M : K) // lda
    .u32(l.transB ? K : N) // ldb
    .u32(N) // ldc
    .u32(l.splits)
    .u32(l.aBatch)
    .u32(l.bBatch)
    .u32(M * N)
    .u32(l.kChunk)
    .f32(l.alpha)
    .f32(l.beta)
    .u32(0)
    .u32(0);
  const program = (entryPoint: string): Program => ({
    name: `matmul.${variant}${entryPoint === 'matmul_tiled' ? '' : entryPoint.replace('matmul_tiled', '')}`,
    source: matmulTiledWgsl,
    entryPoint,
    aliases: { a_t: a.dtype, b_t: b.dtype, c_t: c.dtype },
    consts: { ...tile, A_K: l.transA ? 0 : 1, B_K: l.transB ? 1 : 0 },
  });
  const groups: [number, number] = [Math.ceil(N / tile.BN), Math.ceil(M / tile.BM)];
  if (l.splits <= 1 || K === 0) {
    rec.dispatch(program('matmul_tiled'), {
      uniforms: params,
      buffers: [a.binding, b.binding, c.binding],
      workgroups: [...groups, batch],
      cost,
    });
    return;
  }
  rec.dispatch(program('matmul_tiled_partial'), {
    uniforms: params,
    buffers: [a.binding, b.binding, null, workspace!],
    workgroups: [...groups, batch * l.splits],
    cost,
  });
  rec.dispatch(program('matmul_tiled_reduce'), {
    uniforms: params,
    buffers: [null, null, c.binding, workspace!],
    workgroups: grid1d(batch * M * N, 256, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    cost: REDUCE_COUNTED_ABOVE,
  });
}
