// The command recorder batches every dispatch of a step into one command encoder, as few compute passes as
// possible, and exactly one queue.submit. Uniforms of all dispatches are packed into shared chunks and
// uploaded with one writeBuffer per chunk right before the submit. Readbacks are recorded as copies into
// staging buffers inside the same submit and mapped later, so the CPU never waits inside a step.

import type { Gpu } from './device.ts';
import type { Program } from './program.ts';
import type { Uniforms } from './uniforms.ts';
import type { Profiler } from './profiler.ts';
import { GpuLimitError } from './errors.ts';

/** A storage binding: a whole buffer or a byte range of one. */
export type BufferBinding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number };

export interface DispatchArgs {
  /** Bound at @binding(0) when present. */
  uniforms?: Uniforms;
  /**
   * Bound in order at @binding(1), @binding(2), ... (or from 0 when there are no uniforms). A `null` leaves
   * that binding number out, for entry points of a shared file that do not use every binding.
   */
  buffers: readonly (BufferBinding | null)[];
  /** Workgroup counts; use `grid1d` for long 1-D launches. */
  workgroups: readonly [number, number?, number?];
}

const UNIFORM_CHUNK_BYTES = 64 * 1024;

/** Uniform chunks reused across steps: queue order puts each writeBuffer after the previous submit's reads. */
class UniformPool {
  readonly #chunks: { buffer: GPUBuffer; data: ArrayBuffer }[] = [];
  #chunk = 0;
  #offset = 0;

  constructor(
    readonly device: GPUDevice,
    readonly alignment: number,
  ) {}

  place(values: Uniforms): GPUBufferBinding {
    const size = values.byteLength;
    if (this.#chunks.length === 0 || this.#offset + size > UNIFORM_CHUNK_BYTES) {
      if (this.#chunks.length > 0) this.#chunk++;
      this.#offset = 0;
    }
    if (this.#chunk === this.#chunks.length) {
      this.#chunks.push({
        buffer: this.device.createBuffer({
          label: `uniforms#${this.#chunk}`,
          size: UNIFORM_CHUNK_BYTES,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        }),
        data: new ArrayBuffer(UNIFORM_CHUNK_BYTES),
      });
    }
    const chunk = this.#chunks[this.#chunk];
    values.writeTo(new DataView(chunk.data), this.#offset);
    const binding = { buffer: chunk.buffer, offset: this.#offset, size };
    this.#offset = Math.ceil((this.#offset + size) / this.alignment) * this.alignment;
    return binding;
  }

  upload(queue: GPUQueue): void {
    if (this.#chunks.length === 0) return;
    for (let i = 0; i <= this.#chunk; i++) {
      const used = i < this.#chunk ? UNIFORM_CHUNK_BYTES : this.#offset;
      if (used > 0) queue.writeBuffer(this.#chunks[i].buffer, 0, this.#chunks[i].data, 0, used);
    }
    this.#chunk = 0;
    this.#offset = 0;
  }

  destroy(): void {
    for (const chunk of this.#chunks) chunk.buffer.destroy();
  }
}

/** Data copied out of the GPU in a recorded step; `read()` maps it once the submit has run. */
export class PendingRead {
  #done = false;

  constructor(
    readonly gpu: Gpu,
    readonly staging: GPUBuffer,
    readonly size: number,
    readonly onRelease: (buffer: GPUBuffer) => void,
  ) {}

  async read(): Promise<ArrayBuffer> {
    if (this.#done) throw new Error('PendingRead.read() may be called once');
    this.#done = true;
    this.gpu.assertAlive();
    try {
      await this.staging.mapAsync(GPUMapMode.READ, 0, this.size);
    } catch (cause) {
      this.gpu.assertAlive();
      throw cause;
    }
    try {
      await this.gpu.settle();
    } catch (error) {
      this.staging.unmap();
      this.onRelease(this.staging);
      throw error;
    }
    const copy = this.staging.getMappedRange(0, this.size).slice(0);
    this.staging.unmap();
    this.onRelease(this.staging);
    this.gpu.stats.readbacks++;
    return copy;
  }
}

export interface RecorderOptions {
  label?: string;
  /** Timestamp every dispatch (one pass each) for per-kernel timings; for benchmarks only. */
  profiler?: Profiler;
}

export class CommandRecorder {
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  readonly #uniforms: UniformPool;
  readonly #staging: GPUBuffer[] = [];
  #reads: PendingRead[] = [];
  /** Dispatches and passes recorded since the last submit. */
  dispatches = 0;
  passes = 0;

  constructor(
    readonly gpu: Gpu,
    readonly options: RecorderOptions = {},
  ) {
    this.#uniforms = new UniformPool(gpu.device, gpu.limits.minUniformBufferOffsetAlignment);
  }

  get encoder(): GPUCommandEncoder {
    this.gpu.assertAlive();
    this.#encoder ??= this.gpu.device.createCommandEncoder({ label: this.options.label });
    return this.#encoder;
  }

  dispatch(program: Program, args: DispatchArgs): void {
    const [x, y = 1, z = 1] = args.workgroups;
    const maxGroups = this.gpu.limits.maxComputeWorkgroupsPerDimension;
    if (x > maxGroups || y > maxGroups || z > maxGroups) {
      throw new GpuLimitError(
        `kernel '${program.name}' asks for ${x}×${y}×${z} workgroups; this GPU allows ${maxGroups} per dimension`,
      );
    }
    if (x === 0 || y === 0 || z === 0) return; // empty tensors: nothing to do
    const entries: GPUBindGroupEntry[] = [];
    const first = args.uniforms ? 1 : 0;
    const alignment = this.gpu.limits.minStorageBufferOffsetAlignment;
    args.buffers.forEach((binding, i) => {
      if (binding === null) return;
      const resource = 'buffer' in binding ? binding : { buffer: binding };
      if ((resource.offset ?? 0) % alignment !== 0) {
        throw new GpuLimitError(
          `kernel '${program.name}': binding ${first + i} starts at byte ${resource.offset}, which is not a ` +
            `multiple of this GPU's minStorageBufferOffsetAlignment (${alignment})`,
        );
      }
      entries.push({ binding: first + i, resource });
    });
    // Checked arguments first, so a refused dispatch leaves nothing behind.
    const pipeline = this.gpu.pipelines.get(program);
    if (args.uniforms) entries.push({ binding: 0, resource: this.#uniforms.place(args.uniforms) });
    const bindGroup = this.gpu.device.createBindGroup({
      label: program.name,
      layout: pipeline.getBindGroupLayout(0),
      entries,
    });
    const profiler = this.options.profiler;
    const pass = profiler ? this.#beginProfiledPass(program.name) : this.#computePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (profiler) this.#endPass();
    this.dispatches++;
    this.gpu.stats.dispatches++;
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.#endPass();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  clear(buffer: GPUBuffer, offset = 0, size?: number): void {
    this.#endPass();
    this.encoder.clearBuffer(buffer, offset, size);
  }

  /** Records a copy of `size` bytes of `src` into a staging buffer; read it after `submit()`. */
  readback(src: GPUBuffer, offset = 0, size = src.size - offset): PendingRead {
    const padded = Math.ceil(size / 4) * 4;
    const index = this.#staging.findIndex((b) => b.size >= padded);
    const staging =
      index >= 0
        ? this.#staging.splice(index, 1)[0]
        : this.gpu.device.createBuffer({
            label: 'readback',
            size: padded,
            usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
          });
    this.copy(src, offset, staging, 0, padded);
    const read = new PendingRead(this.gpu, staging, size, (b) => this.#staging.push(b));
    this.#reads.push(read);
    return read;
  }

  /** Ends recording and submits everything as one command buffer. */
  submit(): void {
    this.#endPass();
    this.options.profiler?.resolve(this.encoder);
    const commands = this.encoder.finish();
    this.#uniforms.upload(this.gpu.device.queue);
    this.gpu.device.queue.submit([commands]);
    this.gpu.stats.submits++;
    this.#encoder = null;
    this.dispatches = 0;
    this.passes = 0;
    this.#reads = [];
  }

  /** Submits and waits for the GPU to finish, surfacing compile errors and device loss as typed errors. */
  async submitAndWait(): Promise<void> {
    this.submit();
    await this.gpu.device.queue.onSubmittedWorkDone();
    await this.gpu.settle();
  }

  destroy(): void {
    this.#uniforms.destroy();
    for (const buffer of this.#staging) buffer.destroy();
  }

  #computePass(): GPUComputePassEncoder {
    if (!this.#pass) {
      this.#pass = this.encoder.beginComputePass({ label: this.options.label });
      this.passes++;
    }
    return this.#pass;
  }

  #beginProfiledPass(label: string): GPUComputePassEncoder {
    this.#endPass();
    const timestampWrites = this.options.profiler!.next(label);
    this.#pass = this.encoder.beginComputePass({ label, timestampWrites });
    this.passes++;
    return this.#pass;
  }

  #endPass(): void {
    this.#pass?.end();
    this.#pass = null;
  }
}

/**
 * Folds a long 1-D launch of `count` invocations (workgroups of `size`) into x×y workgroups within the
 * per-dimension limit. Kernels recover the flat index as
 * `gid.x + gid.y * num_workgroups.x * WG`.
 */
export function grid1d(count: number, size: number, maxPerDim = 65535): [number, number] {
  const groups = Math.ceil(count / size);
  if (groups <= maxPerDim) return [groups, 1];
  const y = Math.ceil(groups / maxPerDim);
  return [Math.ceil(groups / y), y];
}
