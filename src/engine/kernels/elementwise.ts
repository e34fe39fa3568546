// Elementwise launches: out = alpha·a + beta·b (add, residual add, scaled add) and out = alpha·x with a
// precision cast that saturates and counts overflow.

import { grid1d, uniforms, type CommandRecorder, type BufferBinding, type TensorRef } from '../gpu/index.ts';
import elementwiseWgsl from '../../../shaders/elementwise.wgsl?raw';
import scaleWgsl from '../../../shaders/scale.wgsl?raw';

const WG = 256;

/** out[i] = alpha·a[i] + beta·b[i] for i < n; a and b share a storage type. */
export function axpby(
  rec: CommandRecorder,
  out: TensorRef,
  a: TensorRef,
  b: TensorRef,
  n: number,
  alpha = 1,
  beta = 1,
): void {
  if (a.dtype !== b.dtype) throw new Error(`axpby: a is ${a.dtype} but b is ${b.dtype}`);
  rec.dispatch(
    {
      name: 'axpby',
      source: elementwiseWgsl,
      entryPoint: 'axpby',
      aliases: { in_t: a.dtype, out_t: out.dtype },
      overrides: { WG },
    },
    {
      uniforms: uniforms().u32(n).f32(alpha).f32(beta).u32(0),
      buffers: [a.binding, b.binding, out.binding],
      workgroups: grid1d(n, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    },
  );
}

/** out = a + b. */
export function add(rec: CommandRecorder, out: TensorRef, a: TensorRef, b: TensorRef, n: number): void {
  axpby(rec, out, a, b, n, 1, 1);
}

/**
 * out[i] = alpha·x[i] converted to out's type. Converting to f16 saturates at ±65504 and adds the number of
 * elements that did not fit (inf and NaN included) to the u32 at `overflow` (which the caller zeroes).
 */
export function scaleCast(
  rec: CommandRecorder,
  out: TensorRef,
  x: TensorRef,
  n: number,
  overflow: BufferBinding,
  alpha = 1,
): void {
  rec.dispatch(
    {
      name: 'scale_cast',
      source: scaleWgsl,
      entryPoint: 'scale_cast',
      aliases: { in_t: x.dtype, out_t: out.dtype },
      overrides: { WG },
    },
    {
      uniforms: uniforms()
        .u32(n)
        .f32(alpha)
        .u32(out.dtype === 'f16' ? 1 : 0)
        .u32(0),
      buffers: [x.binding, out.binding, overflow],
      workgroups: grid1d(n, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    },
  );
}
