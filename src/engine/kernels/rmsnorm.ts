// RMSNorm launches (Llama, Qwen2, SmolLM2): y = x / sqrt(mean(x²) + eps) · w with a frozen weight w.
// One workgroup per row (N rows of C); the forward saves rstd (N) f32 for the backward, which computes the
// input gradient only (weights are frozen, so there is no dw).

import {
  grid1d,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type ScalarType,
  type TensorRef,
} from '../gpu/index.ts';
import rmsnormWgsl from '../../../shaders/rmsnorm.wgsl?raw';

const WG = 256;

export interface NormDims {
  /** Rows (tokens), e.g. B·T. */
  N: number;
  /** Row length (hidden size). */
  C: number;
}

export function checkNormDims(kernel: string, { N, C }: NormDims, eps?: number): void {
  if (!Number.isInteger(N) || N < 0)
    throw new RangeError(`${kernel}: N must be a whole number ≥ 0, got ${N}`);
  if (!Number.isInteger(C) || C < 1)
    throw new RangeError(`${kernel}: C must be a whole number ≥ 1, got ${C}`);
  if (eps !== undefined && !(eps >= 0)) throw new RangeError(`${kernel}: eps must be ≥ 0, got ${eps}`);
}

/**
 * The norm shaders declare the forward and backward bindings side by side, so every alias of the file must be
 * defined when either entry point compiles; the ones an entry point does not use are set to f32.
 */
export function normAliases(used: Partial<Record<NormAlias, ScalarType>>): Record<NormAlias, ScalarType> {
  return { x_t: 'f32', w_t: 'f32', y_t: 'f32', dx_t: 'f32', dy_t: 'f32', ...used };
}
type NormAlias = 'x_t' | 'w_t' | 'y_t' | 'dx_t' | 'dy_t';

/** Workgroups for one-row-per-workgroup kernels: rows folded into a 2-D grid past the 65535 limit. */
export function rowGrid(rec: CommandRecorder, rows: number): [number, number] {
  return grid1d(rows, 1, rec.gpu.limits.maxComputeWorkgroupsPerDimension);
}

/**
 * y (N, C) = rmsnorm(x (N, C)) · w (C); writes rstd (N) f32 = 1/sqrt(mean(x²) + eps) for the backward.
 * eps: 1e-5 (SmolLM2, TinyLlama), 1e-6 (Qwen2.5).
 */
export function rmsnormForward(
  rec: CommandRecorder,
  y: TensorRef,
  rstd: BufferBinding,
  x: TensorRef,
  w: TensorRef,
  dims: NormDims,
  eps: number,
): void {
  checkNormDims('rmsnormForward', dims, eps);
  rec.dispatch(
    {
      name: 'rmsnorm_forward',
      source: rmsnormWgsl,
      entryPoint: 'rmsnorm_forward',
      aliases: normAliases({ y_t: y.dtype, x_t: x.dtype, w_t: w.dtype }),
      overrides: { WG },
    },
    {
      uniforms: uniforms().u32(dims.N).u32(dims.C).f32(eps).u32(0),
      buffers: [y.binding, rstd, x.binding, w.binding],
      workgroups: rowGrid(rec, dims.N),
    },
  );
}

export interface NormBackwardOptions {
  /** Add into dx instead of overwriting it (dx is then the residual stream's gradient). Default false. */
  accumulate?: boolean;
}

/**
 * dx (N, C) (= or +=) ∂L/∂x given dy (N, C), the forward input x, the weight w and the saved rstd (N).
 * With g = w ⊙ dy: dx = rstd · (g − x · rstd² · mean(g ⊙ x)).
 */
export function rmsnormBackward(
  rec: CommandRecorder,
  dx: TensorRef,
  dy: TensorRef,
  x: TensorRef,
  w: TensorRef,
  rstd: BufferBinding,
  dims: NormDims,
  options: NormBackwardOptions = {},
): void {
  checkNormDims('rmsnormBackward', dims);
  rec.dispatch(
    {
      name: 'rmsnorm_backward',
      source: rmsnormWgsl,
      entryPoint: 'rmsnorm_backward',
      aliases: normAliases({ dx_t: dx.dtype, dy_t: dy.dtype, x_t: x.dtype, w_t: w.dtype }),
      overrides: { WG },
    },
    {
      uniforms: uniforms()
        .u32(dims.N)
        .u32(dims.C)
        .f32(0)
        .u32(options.accumulate ? 1 : 0),
      buffers: [dx.binding, dy.binding, x.binding, w.binding, rstd],
      workgroups: rowGrid(rec, dims.N),
    },
  );
}
