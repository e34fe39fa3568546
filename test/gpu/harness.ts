// Shared setup for GPU tests: one Dawn device per test file, upload/download in any storage type, and
// output poisoning (0xFF bytes are NaN in both f32 and f16) so a kernel that skips an element is caught.

import {
  acquireGpu,
  fromF16Array,
  toF16Array,
  type Gpu,
  type ScalarType,
} from '../../src/engine/gpu/index.ts';
import { nodeGpu } from '../../src/node/dawn.ts';

let shared: Promise<Gpu> | null = null;

export function testGpu(): Promise<Gpu> {
  shared ??= acquireGpu({ gpu: nodeGpu() });
  return shared;
}

export const hasF16 = async (): Promise<boolean> => (await testGpu()).hasF16;

/** Prints once per file why f16 tests are skipped (vitest's skip reason is easy to miss). */
export function f16SkipReason(gpu: Gpu): string | null {
  return gpu.hasF16 ? null : `adapter '${gpu.adapter.description}' has no shader-f16: f16 tests skipped`;
}

export function encode(values: ArrayLike<number>, dtype: ScalarType): ArrayBufferView<ArrayBuffer> {
  switch (dtype) {
    case 'f32':
      return Float32Array.from(values);
    case 'f16':
      return toF16Array(values);
    case 'u32':
      return Uint32Array.from(values);
    case 'i32':
      return Int32Array.from(values);
  }
}

export function decode(bytes: ArrayBuffer, dtype: ScalarType, length: number): Float64Array {
  switch (dtype) {
    case 'f32':
      return Float64Array.from(new Float32Array(bytes, 0, length));
    case 'f16':
      return Float64Array.from(fromF16Array(new Uint16Array(bytes, 0, length)));
    case 'u32':
      return Float64Array.from(new Uint32Array(bytes, 0, length));
    case 'i32':
      return Float64Array.from(new Int32Array(bytes, 0, length));
  }
}

const usage = () => GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export function upload(gpu: Gpu, values: ArrayLike<number>, dtype: ScalarType): GPUBuffer {
  const data = encode(values, dtype);
  const buffer = gpu.device.createBuffer({
    size: Math.max(4, Math.ceil(data.byteLength / 4) * 4),
    usage: usage(),
  });
  const padded = new Uint8Array(buffer.size);
  padded.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
  gpu.device.queue.writeBuffer(buffer, 0, padded);
  return buffer;
}

/** A buffer of `length` elements filled with NaN (poison). */
export function poisoned(gpu: Gpu, length: number, dtype: ScalarType): GPUBuffer {
  const bytes = Math.max(4, Math.ceil((length * (dtype === 'f16' ? 2 : 4)) / 4) * 4);
  const buffer = gpu.device.createBuffer({ size: bytes, usage: usage() });
  gpu.device.queue.writeBuffer(buffer, 0, new Uint8Array(bytes).fill(0xff));
  return buffer;
}

export async function download(
  gpu: Gpu,
  buffer: GPUBuffer,
  length: number,
  dtype: ScalarType,
): Promise<Float64Array> {
  const staging = gpu.device.createBuffer({
    size: buffer.size,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = gpu.device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, staging, 0, buffer.size);
  gpu.device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  await gpu.settle(); // compile errors, device loss, rejected work: typed errors rather than poisoned data
  const bytes = staging.getMappedRange().slice(0);
  staging.destroy();
  return decode(bytes, dtype, length);
}
