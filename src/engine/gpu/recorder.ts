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
  /** FLOPs and bytes of this launch by the kernel's own count (summed into the step's counts). */
  cost?: DispatchCost;
}

const UNIFORM_CHUNK_BYTES = 64 * 1024;
const UNIFORM_SLOT_BYTES = 256;
/** Uniform slots kept at most (in 64 KiB chunks); past it the least recently used slot is rewritten. */
const MAX_UNIFORM_CHUNKS = 16;
/** Bind groups kept at most; past it the cache starts over (a step rebuilds what it uses). */
const MAX_BIND_GROUPS = 16384;

interface UniformSlot {
  key: string;
  chunk: number;
  offset: number;
  /** Bytes the slot spans: a multiple of 256. */
  stride: number;
  /** Submit count when last placed: a slot placed in the step being recorded is never rewritten. */
  lastUsed: number;
  /** Read by a captured step (CommandRecorder.replayable): never taken over, whenever it was last placed. */
  pinned: boolean;
}

/**
 * Uniform structs shared by content: a step records the same kernels with the same shapes every time, so its
 * uniforms land in the same slots step after step and nothing is uploaded again. New contents take a fresh slot
 * (or the least recently used one once the pool is full) and are uploaded with the next submit. Rewriting a slot
 * an earlier submit read is safe: queue order puts the writeBuffer after that submit's work.
 */
class UniformPool {
  readonly #chunks: { buffer: GPUBuffer; data: ArrayBuffer; dirtyFrom: number; dirtyTo: number }[] = [];
  readonly #slots = new Map<string, UniformSlot>();
  /** Slots of structs holding StepScalars: rewritten from the scalars' values at every upload. */
  readonly #live = new Map<UniformSlot, Uniforms>();
  #used = 0; // bytes handed out in the last chunk
  #submits = 0;

  constructor(readonly device: GPUDevice) {}

  place(values: Uniforms): { slot: UniformSlot; binding: GPUBufferBinding } {
    const key = values.key;
    const size = values.byteLength;
    let slot = this.#slots.get(key);
    if (!slot) {
      slot = this.#freshSlot(key, size);
      this.#write(slot, values);
      this.#slots.set(key, slot);
      // A live struct keeps its slot for good (its key names the scalars, not their values).
      if (values.live) {
        this.#live.set(slot, values);
        slot.pinned = true;
      }
    }
    slot.lastUsed = this.#submits;
    return { slot, binding: { buffer: this.#chunks[slot.chunk].buffer, offset: slot.offset, size } };
  }

  #write(slot: UniformSlot, values: Uniforms): void {
    const chunk = this.#chunks[slot.chunk];
    values.writeTo(new DataView(chunk.data), slot.offset);
    chunk.dirtyFrom = Math.min(chunk.dirtyFrom, slot.offset);
    chunk.dirtyTo = Math.max(chunk.dirtyTo, slot.offset + values.byteLength);
  }

  /** Slots are whole multiples of 256 bytes (WebGPU's largest uniform offset alignment). */
  #freshSlot(key: string, size: number): UniformSlot {
    const stride = Math.ceil(size / UNIFORM_SLOT_BYTES) * UNIFORM_SLOT_BYTES;
    if (stride > UNIFORM_CHUNK_BYTES) throw new RangeError(`a uniform struct of ${size} bytes`);
    const last = this.#chunks.length - 1;
    if (last >= 0 && this.#used + stride <= UNIFORM_CHUNK_BYTES) {
      const slot = { key, chunk: last, offset: this.#used, stride, lastUsed: this.#submits, pinned: false };
      this.#used += stride;
      return slot;
    }
    if (this.#chunks.length < MAX_UNIFORM_CHUNKS) {
      this.#chunks.push({
        buffer: this.device.createBuffer({
          label: `uniforms#${this.#chunks.length}`,
          size: UNIFORM_CHUNK_BYTES,
          usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
        }),
        data: new ArrayBuffer(UNIFORM_CHUNK_BYTES),
        dirtyFrom: UNIFORM_CHUNK_BYTES,
        dirtyTo: 0,
      });
      this.#used = stride;
      return {
        key,
        chunk: this.#chunks.length - 1,
        offset: 0,
        stride,
        lastUsed: this.#submits,
        pinned: false,
      };
    }
    // Full: take over the least recently used slot of this size that this step has not placed.
    let victim: UniformSlot | null = null;
    for (const candidate of this.#slots.values()) {
      if (candidate.stride !== stride || candidate.lastUsed >= this.#submits || candidate.pinned) continue;
      if (!victim || candidate.lastUsed < victim.lastUsed) {
        victim = candidate;
      }
    }
    if (!victim) {
      throw new RangeError(
        `one step uses more distinct uniform structs than ${MAX_UNIFORM_CHUNKS} chunks of ${UNIFORM_CHUNK_BYTES} bytes hold`,
      );
    }
    this.#slots.delete(victim.key);
    return {
      key,
      chunk: victim.chunk,
      offset: victim.offset,
      stride,
      lastUsed: this.#submits,
      pinned: false,
    };
  }

  /** Uploads the slots written since the last submit: in a steady state only the live ones (a few words). */
  upload(queue: GPUQueue): void {
    for (const [slot, values] of this.#live) this.#write(slot, values);
    for (const chunk of this.#chunks) {
      if (chunk.dirtyTo > chunk.dirtyFrom) {
        queue.writeBuffer(
          chunk.buffer,
          chunk.dirtyFrom,
          chunk.data,
          chunk.dirtyFrom,
          chunk.dirtyTo - chunk.dirtyFrom,
        );
      }
      chunk.dirtyFrom = UNIFORM_CHUNK_BYTES;
      chunk.dirtyTo = 0;
    }
    this.#submits++;
  }

  destroy(): void {
    for (const chunk of this.#chunks) chunk.buffer.destroy();
  }
}

/** Small integer ids for GPU objects, so a bind group's key is a short string. */
class ObjectIds {
  readonly #ids = new WeakMap<object, number>();
  #next = 1;
  of(object: object): number {
    let id = this.#ids.get(object);
    if (id === undefined) {
      id = this.#next++;
      this.#ids.set(object, id);
    }
    return id;
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
      await this.gpu.track(this.staging.mapAsync(GPUMapMode.READ, 0, this.size));
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
  /** Replay confirmed captures (`replayable`); false records every time (to compare against). Default true. */
  replay?: boolean;
}

/** Work one dispatch does, by the kernel's own count: what benchmarks and step counts add up. */
export interface DispatchCost {
  flops: number;
  /** Bytes read from and written to storage buffers. */
  bytes: number;
}

/** What one recording (a step) issued, reset by every submit. */
export interface RecordingCounts {
  dispatches: number;
  passes: number;
  /** Bind groups created (not found in the cache). */
  bindGroups: number;
  flops: number;
  bytes: number;
  /** Dispatches that stated a cost: when fewer than `dispatches`, flops and bytes leave some work out. */
  costed: number;
  /** Dispatches per program name ('matmul.t64x64', 'rmsnorm', ...): which kernels and variants ran. */
  kernels: Map<string, number>;
  /** FLOPs per program name, by the kernels' own counts: achieved FLOP/s per kernel in a profile. */
  kernelFlops: Map<string, number>;
  /** Of `dispatches`, those replayed from a captured step (CommandRecorder.replayable) without model code. */
  replayed: number;
}

/** One command of a captured step, with everything it needs to be issued again. */
type CapturedOp =
  | {
      kind: 'dispatch';
      pipeline: GPUComputePipeline;
      bindGroup: GPUBindGroup;
      x: number;
      y: number;
      z: number;
    }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number }
  | { kind: 'clear'; buffer: GPUBuffer; offset: number; size: number | undefined };

interface Capture {
  ops: CapturedOp[];
  /** Uniform slots its bind groups read. */
  slots: Set<UniformSlot>;
  /** What it counts each time it is issued (passes aside: those depend on what comes before). */
  counts: RecordingCounts;
  /** Recorded identically twice in a row: replayed from now on. */
  confirmed: boolean;
}

function countDispatch(counts: RecordingCounts, name: string, cost: DispatchCost | undefined): void {
  counts.dispatches++;
  counts.kernels.set(name, (counts.kernels.get(name) ?? 0) + 1);
  if (cost) {
    counts.kernelFlops.set(name, (counts.kernelFlops.get(name) ?? 0) + cost.flops);
    counts.costed++;
    counts.flops += cost.flops;
    counts.bytes += cost.bytes;
  }
}

/** Same commands on the same objects: what confirms a capture. */
function sameOps(a: readonly CapturedOp[], b: readonly CapturedOp[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const [p, q] = [a[i], b[i]] as [Record<string, unknown>, Record<string, unknown>];
    for (const field in p) if (p[field] !== q[field]) return false;
  }
  return true;
}

const zeroCounts = (): RecordingCounts => ({
  dispatches: 0,
  passes: 0,
  bindGroups: 0,
  flops: 0,
  bytes: 0,
  costed: 0,
  kernels: new Map(),
  kernelFlops: new Map(),
  replayed: 0,
});

export class CommandRecorder {
  #encoder: GPUCommandEncoder | null = null;
  #pass: GPUComputePassEncoder | null = null;
  #passPipeline: GPUComputePipeline | null = null;
  readonly #uniforms: UniformPool;
  readonly #staging: GPUBuffer[] = [];
  readonly #ids = new ObjectIds();
  readonly #bindGroups = new Map<string, GPUBindGroup>();
  /** Captured command streams by replayable key; `#capturing` is the one being recorded. */
  readonly #captures = new Map<string, Capture>();
  #capturing: Capture | null = null;
  /** Profilers of `timedPass`es recorded since the last submit: their queries are resolved at the submit. */
  readonly #timedBy = new Set<Profiler>();
  #reads: PendingRead[] = [];
  /** Counts of the recording in progress; `lastCounts` holds those of the last submitted one. */
  counts: RecordingCounts = zeroCounts();
  lastCounts: RecordingCounts = zeroCounts();

  constructor(
    readonly gpu: Gpu,
    readonly options: RecorderOptions = {},
  ) {
    this.#uniforms = new UniformPool(gpu.device);
  }

  /** Dispatches recorded since the last submit. */
  get dispatches(): number {
    return this.counts.dispatches;
  }

  /** Compute passes begun since the last submit. */
  get passes(): number {
    return this.counts.passes;
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
    const capture = this.#capturing;
    if (args.uniforms) {
      const placed = this.#uniforms.place(args.uniforms);
      entries.push({ binding: 0, resource: placed.binding });
      capture?.slots.add(placed.slot);
    }
    const bindGroup = this.#bindGroup(program, pipeline, entries);
    const profiler = this.options.profiler;
    const pass = profiler ? this.#beginProfiledPass(program.name) : this.#computePass();
    if (this.#passPipeline !== pipeline) {
      pass.setPipeline(pipeline);
      this.#passPipeline = pipeline;
    }
    pass.setBindGroup(0, bindGroup);
    pass.dispatchWorkgroups(x, y, z);
    if (profiler) this.#endPass();
    capture?.ops.push({ kind: 'dispatch', pipeline, bindGroup, x, y, z });
    countDispatch(this.counts, program.name, args.cost);
    if (capture) countDispatch(capture.counts, program.name, args.cost);
    this.gpu.stats.dispatches++;
    if (args.cost) {
      this.gpu.stats.flops += args.cost.flops;
      this.gpu.stats.bytes += args.cost.bytes;
    }
  }

  /**
   * Records what `record` records, replaying it without calling `record` once the same `key` has recorded the
   * same commands twice in a row (CUDA-graph style: the model code that builds a training step runs twice, then
   * the step is a list of pipelines, bind groups and workgroup counts). Correct only when `record`, for a given
   * key, records the same work every time, apart from StepScalar uniform words (written at every submit) and
   * buffer contents written outside it (token ids, the dropout step word): the caller's contract, as a CUDA
   * graph's. A changed command stream (new buffers, new uniform contents) is caught by the comparison while the
   * key is still being confirmed, never after. Readbacks and timed passes cannot be inside; a recorder that
   * profiles every dispatch always records. Returns whether it replayed.
   */
  replayable(key: string, record: () => void): boolean {
    if (this.#capturing) throw new Error('replayable: already capturing (nested replayable)');
    const known = this.#captures.get(key);
    if (known?.confirmed) {
      this.#replay(known);
      return true;
    }
    if (this.options.profiler || this.options.replay === false) {
      record();
      return false;
    }
    const capture: Capture = { ops: [], slots: new Set(), counts: zeroCounts(), confirmed: false };
    this.#endPass(); // the capture starts with no pass open, as its replays do
    this.#capturing = capture;
    try {
      record();
    } finally {
      this.#capturing = null;
    }
    if (known && sameOps(known.ops, capture.ops)) {
      capture.confirmed = true;
      for (const slot of capture.slots) slot.pinned = true; // its uniforms must stay where the bind groups point
    }
    this.#captures.set(key, capture);
    return false;
  }

  #replay(capture: Capture): void {
    this.#endPass();
    for (const op of capture.ops) {
      if (op.kind === 'dispatch') {
        const pass = this.#computePass();
        if (this.#passPipeline !== op.pipeline) {
          pass.setPipeline(op.pipeline);
          this.#passPipeline = op.pipeline;
        }
        pass.setBindGroup(0, op.bindGroup);
        pass.dispatchWorkgroups(op.x, op.y, op.z);
      } else if (op.kind === 'copy') {
        this.copy(op.src, op.srcOffset, op.dst, op.dstOffset, op.size);
      } else {
        this.clear(op.buffer, op.offset, op.size);
      }
    }
    const c = capture.counts;
    this.counts.dispatches += c.dispatches;
    this.counts.costed += c.costed;
    this.counts.flops += c.flops;
    this.counts.bytes += c.bytes;
    for (const [name, n] of c.kernels)
      this.counts.kernels.set(name, (this.counts.kernels.get(name) ?? 0) + n);
    for (const [name, f] of c.kernelFlops)
      this.counts.kernelFlops.set(name, (this.counts.kernelFlops.get(name) ?? 0) + f);
    this.counts.replayed += c.dispatches;
    this.gpu.stats.dispatches += c.dispatches;
    this.gpu.stats.flops += c.flops;
    this.gpu.stats.bytes += c.bytes;
  }

  /**
   * A step records the same dispatches over the same buffers every time, so its bind groups are built once and
   * found again by (pipeline, resources). Buffers are identified by object: an arena's reused buffer is the same
   * object, a new buffer never matches an old key.
   */
  #bindGroup(program: Program, pipeline: GPUComputePipeline, entries: GPUBindGroupEntry[]): GPUBindGroup {
    let key = String(this.#ids.of(pipeline));
    for (const entry of entries) {
      const r = entry.resource as GPUBufferBinding;
      key += `|${entry.binding}:${this.#ids.of(r.buffer)}:${r.offset ?? 0}:${r.size ?? ''}`;
    }
    let group = this.#bindGroups.get(key);
    if (!group) {
      if (this.#bindGroups.size >= MAX_BIND_GROUPS) this.#bindGroups.clear();
      group = this.gpu.device.createBindGroup({
        label: program.name,
        layout: pipeline.getBindGroupLayout(0),
        entries,
      });
      this.#bindGroups.set(key, group);
      this.counts.bindGroups++;
      this.gpu.stats.bindGroups++;
    }
    return group;
  }

  /**
   * Records the dispatches `record` makes into one compute pass with a timestamp at its start and its end, read
   * with `profiler.durations()` after the submit. Autotuning times many launches of one kernel this way, so a
   * coarse timestamp resolution (browsers quantise to ~0.1 ms) still tells variants apart. Dispatches only:
   * a copy or clear inside `record` would end the timed pass early.
   */
  timedPass(profiler: Profiler, label: string, record: () => void): void {
    if (this.options.profiler) {
      throw new Error('timedPass: this recorder already times every dispatch (its `profiler` option)');
    }
    if (this.#capturing) throw new Error('timedPass: not inside replayable');
    this.#endPass();
    this.#pass = this.encoder.beginComputePass({ label, timestampWrites: profiler.next(label) });
    this.#passPipeline = null;
    this.counts.passes++;
    this.gpu.stats.passes++;
    this.#timedBy.add(profiler);
    try {
      record();
    } finally {
      this.#endPass();
    }
  }

  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void {
    this.#capturing?.ops.push({ kind: 'copy', src, srcOffset, dst, dstOffset, size });
    this.#endPass();
    this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, size);
  }

  clear(buffer: GPUBuffer, offset = 0, size?: number): void {
    this.#capturing?.ops.push({ kind: 'clear', buffer, offset, size });
    this.#endPass();
    this.encoder.clearBuffer(buffer, offset, size);
  }

  /** Records a copy of `size` bytes of `src` into a staging buffer; read it after `submit()`. */
  readback(src: GPUBuffer, offset = 0, size = src.size - offset): PendingRead {
    if (this.#capturing)
      throw new Error('readback: not inside replayable (a replay could not return the read)');
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
    for (const profiler of this.#timedBy) profiler.resolve(this.encoder);
    this.#timedBy.clear();
    const commands = this.encoder.finish();
    this.#uniforms.upload(this.gpu.device.queue);
    this.gpu.device.queue.submit([commands]);
    this.gpu.stats.submits++;
    this.#encoder = null;
    this.lastCounts = this.counts;
    this.counts = zeroCounts();
    this.#reads = [];
  }

  /** Submits and waits for the GPU to finish, surfacing compile errors and device loss as typed errors. */
  async submitAndWait(): Promise<void> {
    this.submit();
    await this.gpu.track(this.gpu.device.queue.onSubmittedWorkDone());
    await this.gpu.settle();
  }

  destroy(): void {
    this.#bindGroups.clear();
    this.#captures.clear();
    this.#uniforms.destroy();
    for (const buffer of this.#staging) buffer.destroy();
  }

  #computePass(): GPUComputePassEncoder {
    if (!this.#pass) {
      this.#pass = this.encoder.beginComputePass({ label: this.options.label });
      this.#passPipeline = null;
      this.counts.passes++;
      this.gpu.stats.passes++;
    }
    return this.#pass;
  }

  #beginProfiledPass(label: string): GPUComputePassEncoder {
    this.#endPass();
    const timestampWrites = this.options.profiler!.next(label);
    this.#pass = this.encoder.beginComputePass({ label, timestampWrites });
    this.#passPipeline = null;
    this.counts.passes++;
    this.gpu.stats.passes++;
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
