// Inverted dropout, y = x · mask / (1 − p), with the mask regenerated from a counter-based hash of
// (seed, step, stream, element index) instead of stored: the backward applies the identical mask to dy.
// Reproducible for the same (seed, step, stream); a new step or stream gives an independent mask.

import { grid1d, uniforms, type CommandRecorder, type TensorRef } from '../gpu/index.ts';
import dropoutHashWgsl from '../../../shaders/dropout-hash.wgsl?raw';
import dropoutWgsl from '../../../shaders/dropout.wgsl?raw';

const WG = 256;

export interface DropoutOptions {
  /** Drop probability in [0, 1). 0 is the identity (inference, or dropout off). */
  p: number;
  /** Run seed (u32). */
  seed: number;
  /** Optimizer step (u32): each step draws a fresh mask. */
  step: number;
  /** Dropout site within the step (u32), e.g. layer · sitesPerLayer + site. Default 0. */
  stream?: number;
  /** Add into the output instead of overwriting it. Default false. */
  accumulate?: boolean;
}

/** Keep threshold on the 32-bit hash: P(hash ≥ threshold) = 1 − p up to 2⁻³². */
export function dropoutThreshold(p: number): number {
  return Math.min(Math.round(p * 2 ** 32), 2 ** 32 - 1);
}

function dropout(
  kernel: string,
  rec: CommandRecorder,
  out: TensorRef,
  x: TensorRef,
  n: number,
  o: DropoutOptions,
) {
  const { p, seed, step, stream = 0, accumulate = false } = o;
  if (!(p >= 0 && p < 1)) throw new RangeError(`${kernel}: p must be in [0, 1), got ${p}`);
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`${kernel}: n must be a whole number ≥ 0, got ${n}`);
  for (const [name, value] of Object.entries({ seed, step, stream })) {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`${kernel}: ${name} must be a u32, got ${value}`);
    }
  }
  rec.dispatch(
    {
      name: 'dropout',
      source: `${dropoutWgsl}\n${dropoutHashWgsl}`,
      entryPoint: 'dropout',
      aliases: { in_t: x.dtype, out_t: out.dtype },
      overrides: { WG },
    },
    {
      uniforms: uniforms()
        .u32(n)
        .u32(dropoutThreshold(p))
        .f32(1 / (1 - p))
        .u32(seed)
        .u32(step)
        .u32(stream)
        .u32(accumulate ? 1 : 0)
        .u32(0),
      buffers: [out.binding, x.binding],
      workgroups: grid1d(n, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    },
  );
}

/** y (n) = x (n) · mask / (1 − p). */
export function dropoutForward(
  rec: CommandRecorder,
  y: TensorRef,
  x: TensorRef,
  n: number,
  options: DropoutOptions,
) {
  dropout('dropoutForward', rec, y, x, n, options);
}

/** dx (n) (+)= dy (n) · mask / (1 − p) with the forward's mask (same options); overwrites dx unless accumulate. */
export function dropoutBackward(
  rec: CommandRecorder,
  dx: TensorRef,
  dy: TensorRef,
  n: number,
  options: DropoutOptions,
) {
  dropout('dropoutBackward', rec, dx, dy, n, options);
}
