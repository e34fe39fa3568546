// LayerNorm launches (GPT-2): y = (x − mean) · rstd · w + b with frozen w, b. One workgroup per row; the
// forward saves mean (N) and rstd (N) f32, the backward computes the input gradient only (no dw, db). The
// versions (vec4 or single-element loads, subgroup or workgroup-tree sums) are chosen as for RMSNorm.

import {
  bytesPerElement,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type DispatchCost,
  type ScalarType,
  type TensorRef,
} from '../gpu/index.ts';
import layernormWgsl from '../../../shaders/layernorm.wgsl?raw';
import {
  checkNormDims,
  normBytes,
  normProgram,
  rowGrid,
  type NormBackwardOptions,
  type NormDims,
  type NormOptions,
} from './rmsnorm.ts';

/**
 * FLOPs and bytes of one layernormForward (each tensor once): the sum, (x − m)² and its sum, (x − m)·r·w + b per
 * element; x, y, w, b, mean and rstd.
 */
export function layernormForwardCost(
  dims: NormDims,
  x: ScalarType,
  w: ScalarType,
  y: ScalarType,
): DispatchCost {
  return {
    flops: 8 * dims.N * dims.C + 4 * dims.N,
    bytes: normBytes(dims, [x, y], 2) + 2 * dims.C * bytesPerElement(w),
  };
}

/**
 * FLOPs and bytes of one layernormBackward: g = w·dy, x̂ and the sums of g and g·x̂, then r·(g − ḡ − x̂·k)
 * (+ dx) per element; dy, x, w, mean, rstd read, dx written (and read when accumulating).
 */
export function layernormBackwardCost(
  dims: NormDims,
  types: { dx: ScalarType; dy: ScalarType; x: ScalarType; w: ScalarType },
  accumulate: boolean,
): DispatchCost {
  const dxTraffic = accumulate ? [types.dx, types.dx] : [types.dx];
  return {
    flops: (accumulate ? 15 : 14) * dims.N * dims.C + 2 * dims.N,
    bytes: normBytes(dims, [types.dy, types.x, ...dxTraffic], 2) + dims.C * bytesPerElement(types.w),
  };
}

/**
 * y (N, C) = (x − mean) · rstd · w (C) + b (C); writes mean (N) and rstd (N) f32 = 1/sqrt(var + eps) with the
 * biased variance, as torch.nn.LayerNorm (GPT-2: eps = 1e-5). w and b share a storage type.
 */
export function layernormForward(
  rec: CommandRecorder,
  y: TensorRef,
  mean: BufferBinding,
  rstd: BufferBinding,
  x: TensorRef,
  w: TensorRef,
  b: TensorRef,
  dims: NormDims,
  eps: number,
  options: NormOptions = {},
): void {
  checkNormDims('layernormForward', dims, eps);
  if (w.dtype !== b.dtype) throw new TypeError(`layernormForward: w is ${w.dtype} but b is ${b.dtype}`);
  const aliases = { y_t: y.dtype, x_t: x.dtype, w_t: w.dtype };
  const program = normProgram(
    rec,
    'layernormForward',
    layernormWgsl,
    'layernorm_forward',
    aliases,
    dims.C,
    options,
  );
  rec.dispatch(program, {
    uniforms: uniforms().u32(dims.N).u32(dims.C).f32(eps).u32(0),
    buffers: [y.binding, mean, rstd, x.binding, w.binding, b.binding],
    workgroups: rowGrid(rec, dims.N),
    cost: layernormForwardCost(dims, x.dtype, w.dtype, y.dtype),
  });
}

/**
 * dx (N, C) (= or +=) ∂L/∂x given dy (N, C), the forward input x, w and the saved mean, rstd (N).
 * With g = w ⊙ dy and x̂ = (x − mean)·rstd: dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)). The bias does not
 * enter: it shifts y but not the gradient through x.
 */
export function layernormBackward(
  rec: CommandRecorder,
  dx: TensorRef,
  dy: TensorRef,
  x: TensorRef,
  w: TensorRef,
  mean: BufferBinding,
  rstd: BufferBinding,
  dims: NormDims,
  options: NormBackwardOptions = {},
): void {
  checkNormDims('layernormBackward', dims);
  const types = { dx: dx.dtype, dy: dy.dtype, x: x.dtype, w: w.dtype };
  const aliases = { dx_t: dx.dtype, dy_t: dy.dtype, x_t: x.dtype, w_t: w.dtype };
  const accumulate = options.accumulate ?? false;
  const program = normProgram(
    rec,
    'layernormBackward',
    layernormWgsl,
    'layernorm_backward',
    aliases,
    dims.C,
    options,
  );
  rec.dispatch(program, {
    uniforms: uniforms()
      .u32(dims.N)
      .u32(dims.C)
      .f32(0)
      .u32(accumulate ? 1 : 0),
    buffers: [dx.binding, dy.binding, x.binding, w.binding, mean, rstd],
    workgroups: rowGrid(rec, dims.N),
    cost: layernormBackwardCost(dims, types, accumulate),
  });
}
