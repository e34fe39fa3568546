// LayerNorm launches (GPT-2): y = (x − mean) · rstd · w + b with frozen w, b. One workgroup per row; the
// forward saves mean (N) and rstd (N) f32, the backward computes the input gradient only (no dw, db).

import { uniforms, type BufferBinding, type CommandRecorder, type TensorRef } from '../gpu/index.ts';
import layernormWgsl from '../../../shaders/layernorm.wgsl?raw';
import { checkNormDims, normAliases, rowGrid, type NormBackwardOptions, type NormDims } from './rmsnorm.ts';

const WG = 256;

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
): void {
  checkNormDims('layernormForward', dims, eps);
  if (w.dtype !== b.dtype) throw new TypeError(`layernormForward: w is ${w.dtype} but b is ${b.dtype}`);
  rec.dispatch(
    {
      name: 'layernorm_forward',
      source: layernormWgsl,
      entryPoint: 'layernorm_forward',
      aliases: normAliases({ y_t: y.dtype, x_t: x.dtype, w_t: w.dtype }),
      overrides: { WG },
    },
    {
      uniforms: uniforms().u32(dims.N).u32(dims.C).f32(eps).u32(0),
      buffers: [y.binding, mean, rstd, x.binding, w.binding, b.binding],
      workgroups: rowGrid(rec, dims.N),
    },
  );
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
  rec.dispatch(
    {
      name: 'layernorm_backward',
      source: layernormWgsl,
      entryPoint: 'layernorm_backward',
      aliases: normAliases({ dx_t: dx.dtype, dy_t: dy.dtype, x_t: x.dtype, w_t: w.dtype }),
      overrides: { WG },
    },
    {
      uniforms: uniforms()
        .u32(dims.N)
        .u32(dims.C)
        .f32(0)
        .u32(options.accumulate ? 1 : 0),
      buffers: [dx.binding, dy.binding, x.binding, w.binding, mean, rstd],
      workgroups: rowGrid(rec, dims.N),
    },
  );
}
