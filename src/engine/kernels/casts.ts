// Precision casts for weight upload and master/working copies. bf16 (safetensors) → f32 and → f16 are exact
// integer bit manipulations (casts.wgsl) that work with or without `shader-f16`; f32 → f16 and f16 → f32 are
// elementwise.ts `scaleCast` with alpha = 1 (no second copy of that kernel).

import { grid1d, uniforms, type BufferBinding, type CommandRecorder } from '../gpu/index.ts';
import { scaleCast } from './elementwise.ts';
import castsWgsl from '../../../shaders/casts.wgsl?raw';

const WG = 256;

export interface Bf16CastOptions {
  /** Element (not byte) offset of the tensor inside `src`, so a bf16 tensor may start mid-word. Default 0. */
  srcOffset?: number;
}

function check(what: string, n: number, srcOffset: number): void {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`${what}: n must be a whole number ≥ 0, got ${n}`);
  if (!Number.isInteger(srcOffset) || srcOffset < 0 || srcOffset + n > 0xffffffff) {
    throw new RangeError(`${what}: srcOffset must be a whole number ≥ 0, got ${srcOffset}`);
  }
}

function program(entryPoint: string) {
  return { name: `casts.${entryPoint}`, source: castsWgsl, entryPoint, overrides: { WG } };
}

/** out (n f32) = src (n bf16, packed two per u32) exactly, NaN payloads included. */
export function castBf16ToF32(
  rec: CommandRecorder,
  out: BufferBinding,
  src: BufferBinding,
  n: number,
  options: Bf16CastOptions = {},
): void {
  const srcOffset = options.srcOffset ?? 0;
  check('castBf16ToF32', n, srcOffset);
  rec.dispatch(program('cast_bf16_f32'), {
    uniforms: uniforms().u32(n).u32(srcOffset).u32(0).u32(0),
    buffers: [src, out],
    workgroups: grid1d(n, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}

/**
 * out (n f16) = src (n bf16) rounded to nearest even, saturating at ±65504 (NaN → 0); adds the count of
 * elements that did not fit to the u32 at `overflow` (the caller zeroes it). With odd n the upper half of the
 * last output word is preserved.
 */
export function castBf16ToF16(
  rec: CommandRecorder,
  out: BufferBinding,
  src: BufferBinding,
  n: number,
  overflow: BufferBinding,
  options: Bf16CastOptions = {},
): void {
  const srcOffset = options.srcOffset ?? 0;
  check('castBf16ToF16', n, srcOffset);
  rec.dispatch(program('cast_bf16_f16'), {
    uniforms: uniforms().u32(n).u32(srcOffset).u32(0).u32(0),
    buffers: [src, out, overflow],
    workgroups: grid1d(Math.ceil(n / 2), WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
  });
}

/**
 * out (n f32) = src (n f16): scaleCast with alpha 1 (needs `shader-f16`). scaleCast binds an overflow counter
 * even when the target is f32; it is never written here.
 */
export function castF16ToF32(
  rec: CommandRecorder,
  out: BufferBinding,
  src: BufferBinding,
  n: number,
  overflow: BufferBinding,
): void {
  scaleCast(rec, { binding: out, dtype: 'f32' }, { binding: src, dtype: 'f16' }, n, overflow, 1);
}

/** out (n f16) = src (n f32), saturating and counting overflow: scaleCast with alpha 1. */
export function castF32ToF16(
  rec: CommandRecorder,
  out: BufferBinding,
  src: BufferBinding,
  n: number,
  overflow: BufferBinding,
): void {
  scaleCast(rec, { binding: out, dtype: 'f16' }, { binding: src, dtype: 'f32' }, n, overflow, 1);
}
