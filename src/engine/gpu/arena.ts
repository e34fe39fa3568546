// The buffer arena names every allocation, reuses freed buffers of the same size and usage, and keeps the
// byte counts that memory estimates and benchmarks report.

import type { Gpu } from './device.ts';

// GPUBufferUsage.STORAGE | COPY_SRC | COPY_DST as spec values: in Node the global exists only once Dawn is loaded.
export const STORAGE_USAGE = 0x80 | 0x04 | 0x08;

interface Allocation {
  name: string;
  bytes: number;
  usage: number;
}

export class BufferArena {
  readonly #live = new Map<GPUBuffer, Allocation>();
  readonly #free = new Map<string, GPUBuffer[]>();
  bytesInUse = 0;
  peakBytes = 0;

  constructor(readonly gpu: Gpu) {}

  /**
   * A storage buffer of at least `bytes` (rounded up to 4). Throws GpuLimitError, naming the buffer, when the
   * device cannot bind that much.
   */
  alloc(name: string, bytes: number, usage: number = STORAGE_USAGE): GPUBuffer {
    if (!Number.isFinite(bytes) || bytes < 0) throw new RangeError(`buffer '${name}': invalid size ${bytes}`);
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    this.gpu.assertAlive();
    this.gpu.assertBufferFits(name, size, (usage & GPUBufferUsage.STORAGE) !== 0);
    const key = `${size}:${usage}`;
    const buffer = this.#free.get(key)?.pop() ?? this.gpu.device.createBuffer({ label: name, size, usage });
    this.#live.set(buffer, { name, bytes: size, usage });
    this.bytesInUse += size;
    this.peakBytes = Math.max(this.peakBytes, this.bytesInUse);
    return buffer;
  }

  /** An allocation initialised from host data (typed array bytes are copied as they are). */
  upload(name: string, data: ArrayBufferView<ArrayBuffer>, usage: number = STORAGE_USAGE): GPUBuffer {
    const buffer = this.alloc(name, data.byteLength, usage);
    writePadded(this.gpu.device.queue, buffer, data);
    return buffer;
  }

  /** Returns a buffer for reuse by a later allocation of the same size and usage. */
  free(buffer: GPUBuffer): void {
    const allocation = this.#live.get(buffer);
    if (!allocation) throw new Error(`buffer '${buffer.label}' is not live in this arena`);
    this.#live.delete(buffer);
    this.bytesInUse -= allocation.bytes;
    const key = `${allocation.bytes}:${allocation.usage}`;
    const list = this.#free.get(key) ?? [];
    list.push(buffer);
    this.#free.set(key, list);
  }

  /** Live allocations, largest first. */
  list(): Allocation[] {
    return [...this.#live.values()].sort((a, b) => b.bytes - a.bytes);
  }

  destroy(): void {
    for (const buffer of this.#live.keys()) buffer.destroy();
    for (const list of this.#free.values()) for (const buffer of list) buffer.destroy();
    this.#live.clear();
    this.#free.clear();
    this.bytesInUse = 0;
  }
}

/** queue.writeBuffer needs a multiple of 4 bytes; f16 arrays of odd length are padded with zeros. */
export function writePadded(
  queue: GPUQueue,
  buffer: GPUBuffer,
  data: ArrayBufferView<ArrayBuffer>,
  offset = 0,
): void {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (bytes.byteLength % 4 === 0) {
    queue.writeBuffer(buffer, offset, bytes);
    return;
  }
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(bytes);
  queue.writeBuffer(buffer, offset, padded);
}
