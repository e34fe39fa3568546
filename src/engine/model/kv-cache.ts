// The KV cache of one layer for inference: keys and values of every position written so far, laid out
// (B, capacity, Hkv, D) as the attention kernel's KV-cache mode reads them (batch stride capacity·Hkv·D).
// A forward over T new tokens at position `offset` writes their k/v rows into positions offset…offset+T−1
// and then attends over all offset + T of them. Every sequence of the batch sits at the same position.

import type { CommandRecorder, ScalarType, TensorRef } from '../gpu/index.ts';
import { copyColumns } from '../kernels/copy2d.ts';

export interface KvCacheSlot {
  k: GPUBuffer; // (B, capacity, Hkv, D)
  v: GPUBuffer; // (B, capacity, Hkv, D)
  /** Positions allocated per sequence. */
  capacity: number;
  /** Position of the first new token (= tokens already cached per sequence). */
  offset: number;
}

/** Bytes of n elements of an activation type, rounded up to the 4 bytes copies and buffers need. */
export function actBytes(dtype: ScalarType, n: number): number {
  return Math.ceil(((dtype === 'f16' ? 2 : 4) * n) / 4) * 4;
}

/**
 * Copies k and v (B, T, Hkv·D) of T new tokens into the cache at positions offset…offset+T−1: per sequence b
 * the T rows are contiguous in both, so each is one (B rows × T·Hkv·D columns) block copy.
 */
export function writeKvCache(
  rec: CommandRecorder,
  cache: KvCacheSlot,
  k: TensorRef,
  v: TensorRef,
  B: number,
  T: number,
  rowElements: number,
): void {
  if (cache.offset + T > cache.capacity) {
    throw new RangeError(
      `KV cache: ${T} new tokens at position ${cache.offset} exceed its capacity of ${cache.capacity}`,
    );
  }
  for (const [src, dst] of [
    [k, cache.k],
    [v, cache.v],
  ] as const) {
    copyColumns(
      rec,
      {
        tensor: { binding: dst, dtype: src.dtype },
        stride: cache.capacity * rowElements,
        column: cache.offset * rowElements,
      },
      { tensor: src, stride: T * rowElements, column: 0 },
      B,
      T * rowElements,
    );
  }
}
