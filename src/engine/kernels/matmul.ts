// matmul launches. Row-major operands: A is [batch, M, K] (or [batch, K, M] with transA), B is [batch, K, N]
// (or [batch, N, K] with transB), C is [batch, M, N]. A batch stride of 0 broadcasts one operand (a shared
// weight) over the batch. Tall-skinny products split K across workgroups into an f32 workspace.

import { grid1d, uniforms, type BufferBinding, type CommandRecorder, type TensorRef } from '../gpu/index.ts';
import matmulWgsl from '../../../shaders/matmul.wgsl?raw';

const TILE = 64;

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
}

/** K splits worth using: only when the output has too few tiles to fill the GPU and K is long. */
export function chooseSplits(dims: MatmulDims): number {
  const { M, N, K, batch = 1 } = dims;
  const tiles = Math.ceil(M / TILE) * Math.ceil(N / TILE) * batch;
  if (tiles >= 64 || K < 512) return 1;
  const byOccupancy = Math.ceil(64 / tiles);
  const byLength = Math.floor(K / 256);
  return Math.max(1, Math.min(byOccupancy, byLength, 64));
}

export function matmulWorkspaceBytes(dims: MatmulDims, splits: number): number {
  return splits <= 1 ? 0 : 4 * splits * (dims.batch ?? 1) * dims.M * dims.N;
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
  const [aRow, aCol] = transA ? [1, M] : [K, 1];
  const [bRow, bCol] = transB ? [1, K] : [N, 1];
  const aBatch = options.aBatchStride ?? M * K;
  const bBatch = options.bBatchStride ?? K * N;
  const splits = options.splits === 'auto' ? chooseSplits(dims) : (options.splits ?? 1);
  const kChunk = Math.ceil(K / splits / 16) * 16; // whole BK tiles per split
  const effectiveSplits = Math.max(1, Math.ceil(K / Math.max(kChunk, 1)));

  const params = uniforms()
    .u32(M)
    .u32(N)
    .u32(K)
    .u32(batch)
    .u32(aRow)
    .u32(aCol)
    .u32(aBatch)
    .u32(effectiveSplits)
    .u32(bRow)
    .u32(bCol)
    .u32(bBatch)
    .u32(kChunk)
    .u32(N)
    .u32(M * N)
    .f32(alpha)
    .f32(beta);
  const program = (entryPoint: string) => ({
    name: `matmul${entryPoint === 'matmul' ? '' : '.' + entryPoint}`,
    source: matmulWgsl,
    entryPoint,
    aliases: { a_t: a.dtype, b_t: b.dtype, c_t: c.dtype },
  });
  const tiles: [number, number] = [Math.ceil(N / TILE), Math.ceil(M / TILE)];

  if (M === 1 && effectiveSplits <= 1) {
    rec.dispatch(program('matvec'), {
      uniforms: params,
      buffers: [a.binding, b.binding, c.binding],
      workgroups: [Math.ceil(N / 4), 1, batch],
    });
    return;
  }
  if (effectiveSplits <= 1 || K === 0) {
    rec.dispatch(program('matmul'), {
      uniforms: params,
      buffers: [a.binding, b.binding, c.binding],
      workgroups: [...tiles, batch],
    });
    return;
  }
  if (!options.workspace) {
    throw new Error(
      `matmul: ${effectiveSplits} K splits need a workspace of ${matmulWorkspaceBytes(dims, effectiveSplits)} bytes`,
    );
  }
  rec.dispatch(program('matmul_partial'), {
    uniforms: params,
    buffers: [a.binding, b.binding, null, options.workspace],
    workgroups: [...tiles, batch * effectiveSplits],
  });
  rec.dispatch(program('splitk_reduce'), {
    uniforms: params,
    buffers: [null, null, c.binding, options.workspace],
    workgroups: grid1d(batch * M * N, 256, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}
