// Host-side dtype conversions for weights on their way to the GPU. The f16 rounding lives in
// src/engine/gpu/half.ts; bf16 is here (bf16 → f32 is exact: the top 16 bits of an f32).
// Little-endian hosts only, as safetensors is little-endian and so is every WebGPU host we target.

import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from '../gpu/half.ts';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export const DTYPE_BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error('tunelab model loading needs a little-endian host');
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** f32 → bf16 bits, round to nearest even (as torch does); NaN stays NaN. */
export function f32ToBf16Bits(value: number): number {
  f32[0] = value;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

/** A typed view of `bytes`, copying only when the offset is not aligned to the element size. */
function view<T>(bytes: Uint8Array, size: number, make: (b: ArrayBuffer, o: number, n: number) => T): T {
  const n = bytes.byteLength / size;
  if (bytes.byteOffset % size === 0 && bytes.buffer instanceof ArrayBuffer) {
    return make(bytes.buffer, bytes.byteOffset, n);
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return make(copy.buffer, 0, n);
}

function u16View(bytes: Uint8Array): Uint16Array {
  return view(bytes, 2, (b, o, n) => new Uint16Array(b, o, n));
}

function f32View(bytes: Uint8Array): Float32Array {
  return view(bytes, 4, (b, o, n) => new Float32Array(b, o, n));
}

/** Tensor bytes of `dtype` → f32 values (a view when dtype is F32 and aligned). */
export function toFloat32(bytes: Uint8Array, dtype: SafetensorsDtype): Float32Array {
  if (dtype === 'F32') return f32View(bytes);
  const bits = u16View(bytes);
  const out = new Float32Array(bits.length);
  if (dtype === 'F16') for (let i = 0; i < bits.length; i++) out[i] = f16BitsToF32(bits[i]);
  else {
    const outBits = new Uint32Array(out.buffer);
    for (let i = 0; i < bits.length; i++) outBits[i] = bits[i] << 16;
  }
  return out;
}

/**
 * Tensor bytes of `dtype` → f16 bits for upload (a view when dtype is F16 and aligned). bf16 values beyond
 * the f16 range become ±inf and tiny ones flush toward zero: `countF16Overflow` tells the caller.
 */
export function toFloat16Bits(bytes: Uint8Array, dtype: SafetensorsDtype): Uint16Array {
  if (dtype === 'F16') return u16View(bytes);
  if (dtype === 'F32') {
    const src = f32View(bytes);
    const out = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) out[i] = f32ToF16Bits(src[i]);
    return out;
  }
  const bits = u16View(bytes);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32ToF16Bits(bf16BitsToF32(bits[i]));
  return out;
}

/** Finite values that became ±inf in an f16 conversion (a model that cannot run in f16 as is). */
export function countF16Overflow(
  source: Float32Array | Uint8Array,
  dtype: SafetensorsDtype,
  f16: Uint16Array,
): number {
  const values = source instanceof Float32Array ? source : toFloat32(source, dtype);
  let n = 0;
  for (let i = 0; i < f16.length; i++) {
    if ((f16[i] & 0x7fff) === 0x7c00 && Number.isFinite(values[i])) n++;
  }
  return n;
}

/** f32 values → tensor bytes of `dtype` (rounded to nearest even). */
export function fromFloat32(values: ArrayLike<number>, dtype: SafetensorsDtype): Uint8Array<ArrayBuffer> {
  if (dtype === 'F32') return new Uint8Array(Float32Array.from(values).buffer);
  const out = new Uint16Array(values.length);
  const round = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  for (let i = 0; i < values.length; i++) out[i] = round(values[i]);
  return new Uint8Array(out.buffer);
}
