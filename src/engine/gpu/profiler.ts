// Optional GPU timestamp profiling: each profiled dispatch gets its own pass with begin/end timestamps,
// resolved into a buffer at submit and read back afterwards. Benchmarks only: it splits passes.

import type { Gpu } from './device.ts';
import { GpuFeatureError } from './errors.ts';

export class Profiler {
  readonly #querySet: GPUQuerySet;
  readonly #resolve: GPUBuffer;
  readonly #read: GPUBuffer;
  readonly #labels: string[] = [];

  constructor(
    readonly gpu: Gpu,
    readonly capacity = 256,
  ) {
    if (!gpu.hasTimestamps) {
      throw new GpuFeatureError("GPU timestamp profiling needs the 'timestamp-query' feature");
    }
    this.#querySet = gpu.device.createQuerySet({ type: 'timestamp', count: 2 * capacity });
    this.#resolve = gpu.device.createBuffer({
      size: 16 * capacity,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.#read = gpu.device.createBuffer({
      size: 16 * capacity,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  next(label: string): GPUComputePassTimestampWrites {
    const index = this.#labels.length;
    if (index >= this.capacity) throw new Error(`profiler capacity ${this.capacity} exceeded`);
    this.#labels.push(label);
    return {
      querySet: this.#querySet,
      beginningOfPassWriteIndex: 2 * index,
      endOfPassWriteIndex: 2 * index + 1,
    };
  }

  resolve(encoder: GPUCommandEncoder): void {
    const count = 2 * this.#labels.length;
    if (count === 0) return;
    encoder.resolveQuerySet(this.#querySet, 0, count, this.#resolve, 0);
    encoder.copyBufferToBuffer(this.#resolve, 0, this.#read, 0, count * 8);
  }

  /** Durations in milliseconds per recorded dispatch, in order; clears the profiler. */
  async durations(): Promise<{ label: string; ms: number }[]> {
    const count = this.#labels.length;
    if (count === 0) return [];
    await this.gpu.track(this.#read.mapAsync(GPUMapMode.READ, 0, count * 16));
    const stamps = new BigInt64Array(this.#read.getMappedRange(0, count * 16).slice(0));
    this.#read.unmap();
    const result = this.#labels.map((label, i) => ({
      label,
      ms: Number(stamps[2 * i + 1] - stamps[2 * i]) / 1e6,
    }));
    this.#labels.length = 0;
    return result;
  }

  destroy(): void {
    this.#querySet.destroy();
    this.#resolve.destroy();
    this.#read.destroy();
  }
}
