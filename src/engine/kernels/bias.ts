// Bias add (Qwen2 q/k/v projections carry biases) and the residual add of every block. Both are frozen-weight
// or parameter-free ops: their backward is the identity on the gradient (the residual's fans the gradient out
// to both branches: accumulate with rmsnormBackward's `accumulate` or axpby).

import { grid1d, uniforms, type CommandRecorder, type TensorRef } from '../gpu/index.ts';
import { axpby } from './elementwise.ts';
import biasWgsl from '../../../shaders/bias.wgsl?raw';

const WG = 256;

/**
 * y[n, c] += b[c] in place for y (N, C); `rowStride` (default C) is the element distance between rows of y,
 * so a column slice of a fused (N, q + k + v) row can be biased through a byte-offset binding.
 */
export function biasAdd(
  rec: CommandRecorder,
  y: TensorRef,
  b: TensorRef,
  dims: { N: number; C: number },
  rowStride = dims.C,
): void {
  const { N, C } = dims;
  for (const [name, value] of Object.entries({ N, C, rowStride })) {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(`biasAdd: ${name} must be a whole number ≥ 0, got ${value}`);
    }
  }
  if (rowStride < C) throw new RangeError(`biasAdd: rowStride ${rowStride} is shorter than a row (C = ${C})`);
  rec.dispatch(
    {
      name: 'bias_add',
      source: biasWgsl,
      entryPoint: 'bias_add',
      aliases: { y_t: y.dtype, b_t: b.dtype },
      overrides: { WG },
    },
    {
      uniforms: uniforms().u32(N).u32(C).u32(rowStride).u32(0),
      buffers: [y.binding, b.binding],
      workgroups: grid1d(N * C, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    },
  );
}

/**
 * out (n) = residual (n) + branch (n): the skip connection after attention and MLP. out may not be bound to
 * either input (WebGPU forbids a writable binding that aliases another binding of the same buffer range).
 */
export function residualAdd(
  rec: CommandRecorder,
  out: TensorRef,
  residual: TensorRef,
  branch: TensorRef,
  n: number,
): void {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`residualAdd: n must be a whole number ≥ 0, got ${n}`);
  axpby(rec, out, residual, branch, n, 1, 1);
}
