// RMSNorm launches (Llama, Qwen2, SmolLM2): y = x / sqrt(mean(x²) + eps) · w with a frozen weight w.
// One workgroup per row (N rows of C); the forward saves rstd (N) f32 for the backward, which computes the
// input gradient only (weights are frozen, so there is no dw). The helpers here serve layernorm.ts too: a norm
// program keeps one `width` section of its shader (vec4 packets where C % 4 == 0, else single elements) and one
// `reductions` section (subgroups where the device has them, else the workgroup tree; see reductions.ts).

import {
  bytesPerElement,
  grid1d,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type DispatchCost,
  type Program,
  type ScalarType,
  type TensorRef,
} from '../gpu/index.ts';
import normWidthWgsl from '../../../shaders/norm-width.wgsl?raw';
import rmsnormWgsl from '../../../shaders/rmsnorm.wgsl?raw';
import { chooseReduction, reductionEnables, withReductions } from './reductions.ts';

/** Threads per row: a power of two (the tree halves it); see the shader for why 64. */
const WG = 64;

export interface NormDims {
  /** Rows (tokens), e.g. B·T. */
  N: number;
  /** Row length (hidden size). */
  C: number;
}

/** Which version of a norm kernel runs. The defaults are the fast ones the device and shape allow. */
export interface NormOptions {
  /**
   * Row sums with subgroup operations (true) or the workgroup tree (false). Default: subgroups when the device
   * has the 'subgroups' feature; true without it throws GpuFeatureError.
   */
  subgroups?: boolean;
  /** vec4 loads and stores (true) or single elements (false). Default: vec4 when C % 4 == 0, which true needs. */
  vec4?: boolean;
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

/** Programs built so far, by every compile-time fact: a step records the same few again and again. */
const normPrograms = new Map<string, Program>();

/**
 * The program of a norm shader's entry point for one launch: `kernel` names the launch in errors, `source`
 * is the shader (rmsnorm.wgsl or layernorm.wgsl), `aliases` its storage types.
 */
export function normProgram(
  rec: CommandRecorder,
  kernel: string,
  source: string,
  entryPoint: string,
  aliases: Partial<Record<NormAlias, ScalarType>>,
  C: number,
  options: NormOptions,
): Program {
  const reduction = chooseReduction(rec.gpu, options.subgroups, kernel);
  if (options.vec4 === true && C % 4 !== 0) {
    throw new RangeError(`${kernel}: vec4 needs C to be a multiple of 4, got C = ${C}`);
  }
  const width = (options.vec4 ?? C % 4 === 0) ? 'vec4' : 'scalar';
  const all = normAliases(aliases);
  const key = `${entryPoint}:${reduction}:${width}:${Object.values(all).join(',')}`;
  let program = normPrograms.get(key);
  if (!program) {
    program = {
      name: `${entryPoint}${reduction === 'subgroups' ? '.subgroups' : ''}${width === 'vec4' ? '.vec4' : ''}`,
      source: withReductions(source, reduction, { width }, [normWidthWgsl]),
      entryPoint,
      aliases: all,
      overrides: { WG },
      enables: reductionEnables(reduction),
    };
    normPrograms.set(key, program);
  }
  return program;
}

/** Bytes of (N, C) tensors of these types plus `perRow` f32 words per row (saved statistics). */
export function normBytes({ N, C }: NormDims, types: readonly ScalarType[], perRow = 0): number {
  return types.reduce((sum, t) => sum + N * C * bytesPerElement(t), 0) + 4 * perRow * N;
}

/**
 * FLOPs and bytes of one rmsnormForward (each tensor once): x², its sum and x·r·w per element, the rsqrt per
 * row; x, y, w and rstd.
 */
export function rmsnormForwardCost(
  dims: NormDims,
  x: ScalarType,
  w: ScalarType,
  y: ScalarType,
): DispatchCost {
  return {
    flops: 4 * dims.N * dims.C + 3 * dims.N,
    bytes: normBytes(dims, [x, y], 1) + dims.C * bytesPerElement(w),
  };
}

/**
 * FLOPs and bytes of one rmsnormBackward: w·dy·x and its sum, then r·(w·dy − x·k) (+ dx) per element; dy, x,
 * w, rstd read, dx written (and read when accumulating).
 */
export function rmsnormBackwardCost(
  dims: NormDims,
  types: { dx: ScalarType; dy: ScalarType; x: ScalarType; w: ScalarType },
  accumulate: boolean,
): DispatchCost {
  const dxTraffic = accumulate ? [types.dx, types.dx] : [types.dx];
  return {
    flops: (accumulate ? 8 : 7) * dims.N * dims.C + 3 * dims.N,
    bytes: normBytes(dims, [types.dy, types.x, ...dxTraffic], 1) + dims.C * bytesPerElement(types.w),
  };
}

export interface RmsnormOptions extends NormOptions {
  /** Added to w in f32: 1 for Gemma's (1 + w) weights; default 0. */
  weightOffset?: number;
}

function weightOffset(kernel: string, options: RmsnormOptions): number {
  const offset = options.weightOffset ?? 0;
  if (!Number.isFinite(offset)) throw new RangeError(`${kernel}: weightOffset must be finite, got ${offset}`);
  return offset;
}

/**
 * y (N, C) = rmsnorm(x (N, C)) · (w (C) + weightOffset); writes rstd (N) f32 = 1/sqrt(mean(x²) + eps) for the
 * backward. eps: 1e-5 (SmolLM2, TinyLlama), 1e-6 (Qwen2.5, Gemma 3).
 */
export function rmsnormForward(
  rec: CommandRecorder,
  y: TensorRef,
  rstd: BufferBinding,
  x: TensorRef,
  w: TensorRef,
  dims: NormDims,
  eps: number,
  options: RmsnormOptions = {},
): void {
  checkNormDims('rmsnormForward', dims, eps);
  const offset = weightOffset('rmsnormForward', options);
  const aliases = { y_t: y.dtype, x_t: x.dtype, w_t: w.dtype };
  rec.dispatch(normProgram(rec, 'rmsnormForward', rmsnormWgsl, 'rmsnorm_forward', aliases, dims.C, options), {
    uniforms: uniforms().u32(dims.N).u32(dims.C).f32(eps).u32(0).f32(offset).u32(0).u32(0).u32(0),
    buffers: [y.binding, rstd, x.binding, w.binding],
    workgroups: rowGrid(rec, dims.N),
    cost: rmsnormForwardCost(dims, x.dtype, w.dtype, y.dtype),
  });
}

export interface NormBackwardOptions extends NormOptions {
  /** Add into dx instead of overwriting it (dx is then the residual stream's gradient). Default false. */
  accumulate?: boolean;
}

/**
 * dx (N, C) (= or +=) ∂L/∂x given dy (N, C), the forward input x, the weight w and the saved rstd (N).
 * With g = (w + weightOffset) ⊙ dy: dx = rstd · (g − x · rstd² · mean(g ⊙ x)).
 */
export function rmsnormBackward(
  rec: CommandRecorder,
  dx: TensorRef,
  dy: TensorRef,
  x: TensorRef,
  w: TensorRef,
  rstd: BufferBinding,
  dims: NormDims,
  options: NormBackwardOptions & RmsnormOptions = {},
): void {
  checkNormDims('rmsnormBackward', dims);
  const types = { dx: dx.dtype, dy: dy.dtype, x: x.dtype, w: w.dtype };
  const aliases = { dx_t: dx.dtype, dy_t: dy.dtype, x_t: x.dtype, w_t: w.dtype };
  const accumulate = options.accumulate ?? false;
  const offset = weightOffset('rmsnormBackward', options);
  rec.dispatch(
    normProgram(rec, 'rmsnormBackward', rmsnormWgsl, 'rmsnorm_backward', aliases, dims.C, options),
    {
      uniforms: uniforms()
        .u32(dims.N)
        .u32(dims.C)
        .f32(0)
        .u32(accumulate ? 1 : 0)
        .f32(offset)
        .u32(0)
        .u32(0)
        .u32(0),
      buffers: [dx.binding, dy.binding, x.binding, w.binding, rstd],
      workgroups: rowGrid(rec, dims.N),
      cost: rmsnormBackwardCost(dims, types, accumulate),
    },
  );
}
