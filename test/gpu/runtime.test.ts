import { describe, expect, it } from 'vitest';
import {
  BufferArena,
  CommandRecorder,
  GpuDeviceLostError,
  GpuFeatureError,
  GpuLimitError,
  GpuValidationError,
  Profiler,
  acquireGpu,
  uniforms,
} from '../../src/engine/gpu/index.ts';
import { axpby } from '../../src/engine/kernels/elementwise.ts';
import { nodeGpu } from '../../src/node/dawn.ts';
import { download, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();

describe('acquireGpu', () => {
  it('reports the adapter, precision and raised limits', () => {
    expect(gpu.adapter.description.length).toBeGreaterThan(0);
    expect(gpu.precision).toBe(gpu.hasF16 ? 'f16' : 'f32');
    // Default WebGPU limit is 128 MiB; tunelab asks for the adapter's maximum.
    expect(gpu.limits.maxBufferSize).toBeGreaterThanOrEqual(256 * 1024 * 1024);
  });

  it('rejects a feature the adapter lacks, listing what it has', async () => {
    const request = acquireGpu({ gpu: nodeGpu(), requiredFeatures: ['no-such-feature' as GPUFeatureName] });
    await expect(request).rejects.toThrow(GpuFeatureError);
    await expect(request).rejects.toThrow(/'no-such-feature' is required .* offers only: .*timestamp-query/);
  });

  it('honours an f32 override on an f16-capable adapter', async () => {
    const f32 = await acquireGpu({ gpu: nodeGpu(), precision: 'f32' });
    expect(f32.precision).toBe('f32');
    f32.destroy();
  });
});

describe('errors are typed and specific', () => {
  it('a buffer over the device limit names the buffer and the limit', () => {
    const arena = new BufferArena(gpu);
    expect(() => arena.alloc('model.embed_tokens', gpu.limits.maxBufferSize + 4)).toThrow(GpuLimitError);
    expect(() => arena.alloc('model.embed_tokens', gpu.limits.maxBufferSize + 4)).toThrow(
      /'model.embed_tokens' needs .* at most/,
    );
    expect(arena.bytesInUse).toBe(0);
  });

  it('invalid WGSL fails with the kernel name, line and source text', async () => {
    const rec = new CommandRecorder(gpu);
    rec.dispatch(
      {
        name: 'broken',
        source: '@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = undefined_thing;\n}\n',
        entryPoint: 'main',
      },
      { buffers: [], workgroups: [1] },
    );
    const error = await rec.submitAndWait().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GpuValidationError);
    expect(String(error)).toMatch(/kernel 'broken'.*failed to compile/);
    expect(String(error)).toMatch(/undefined_thing/);
    // Later, valid work on the same device still runs.
    const out = poisoned(gpu, 4, 'f32');
    const x = upload(gpu, [1, 2, 3, 4], 'f32');
    const ok = new CommandRecorder(gpu);
    axpby(ok, { binding: out, dtype: 'f32' }, { binding: x, dtype: 'f32' }, { binding: x, dtype: 'f32' }, 4);
    await ok.submitAndWait();
    expect(Array.from(await download(gpu, out, 4, 'f32'))).toEqual([2, 4, 6, 8]);
  });

  it('too many workgroups and misaligned bindings are refused before anything is recorded', () => {
    const rec = new CommandRecorder(gpu);
    const x = upload(gpu, new Array(256).fill(1), 'f32');
    const program = { name: 'axpby-test', source: 'x', entryPoint: 'main' };
    expect(() => rec.dispatch(program, { buffers: [], workgroups: [70000] })).toThrow(/70000×1×1 workgroups/);
    expect(() =>
      rec.dispatch(program, {
        uniforms: uniforms().u32(1),
        buffers: [{ buffer: x, offset: 4 }],
        workgroups: [1],
      }),
    ).toThrow(/minStorageBufferOffsetAlignment/);
  });

  it('work the GPU rejects at submit surfaces as an error instead of silently not running', async () => {
    const rec = new CommandRecorder(gpu);
    const x = upload(gpu, [1, 2, 3], 'f32');
    // A storage binding of a buffer without STORAGE usage is a validation error at bind-group creation.
    const notStorage = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_DST });
    axpby(
      rec,
      { binding: notStorage, dtype: 'f32' },
      { binding: x, dtype: 'f32' },
      { binding: x, dtype: 'f32' },
      3,
    );
    await expect(rec.submitAndWait()).rejects.toThrow(GpuValidationError);
  });

  it('device loss becomes GpuDeviceLostError for every later operation, never a hang', async () => {
    const lostReports: GpuDeviceLostError[] = [];
    const doomed = await acquireGpu({ gpu: nodeGpu(), onLost: (e) => lostReports.push(e) });
    const x = doomed.device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC,
    });
    doomed.destroy();
    await doomed.device.lost;
    await new Promise((r) => setTimeout(r, 0));
    expect(lostReports).toHaveLength(1);
    expect(doomed.lost).toBeInstanceOf(GpuDeviceLostError);
    const rec = new CommandRecorder(doomed);
    expect(() => rec.readback(x)).toThrow(/device was lost \(destroyed\)/);
    expect(() => new BufferArena(doomed).alloc('weights', 16)).toThrow(GpuDeviceLostError);
  });
});

it('drain, after destroy, resolves once a read in flight has settled (a Node thread may only end then)', async () => {
  const gpu = await acquireGpu({ gpu: nodeGpu(), precision: 'f32' });
  const x = gpu.device.createBuffer({ size: 64, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const rec = new CommandRecorder(gpu);
  const pending = rec.readback(x);
  rec.submit();
  // Nobody awaits this read before the device goes, as when a failing step abandons its loss read.
  let settled = false;
  const read = pending.read().finally(() => (settled = true));
  read.catch(() => {});
  gpu.destroy();
  await gpu.drain();
  expect(settled).toBe(true);
  expect(gpu.lost).toBeInstanceOf(GpuDeviceLostError);
});

describe('CommandRecorder', () => {
  it('batches hundreds of dispatches (several uniform chunks) into one submit, reading back in the same submit', async () => {
    const n = 64;
    // A buffer may not be read and written by one dispatch, so the sum ping-pongs between two.
    const acc = [upload(gpu, new Array(n).fill(0), 'f32'), poisoned(gpu, n, 'f32')];
    const ones = upload(gpu, new Array(n).fill(1), 'f32');
    const rec = new CommandRecorder(gpu);
    const before = { ...gpu.stats };
    // 300 dispatches × 256-byte uniform slots = 75 KiB: spills into a second 64 KiB chunk.
    for (let i = 0; i < 300; i++) {
      const [from, to] = [acc[i % 2], acc[(i + 1) % 2]];
      axpby(
        rec,
        { binding: to, dtype: 'f32' },
        { binding: from, dtype: 'f32' },
        { binding: ones, dtype: 'f32' },
        n,
        1,
        i % 2 ? 2 : 1,
      );
    }
    expect(rec.passes).toBe(1);
    const pending = rec.readback(acc[0]);
    rec.submit();
    const values = new Float32Array(await pending.read());
    expect(gpu.stats.submits - before.submits).toBe(1);
    expect(gpu.stats.dispatches - before.dispatches).toBe(300);
    expect(gpu.stats.readbacks - before.readbacks).toBe(1);
    expect(Array.from(values)).toEqual(new Array(n).fill(150 * 1 + 150 * 2));
  });

  it.skipIf(!gpu.hasTimestamps)('profiles each dispatch with GPU timestamps', async () => {
    const profiler = new Profiler(gpu);
    const rec = new CommandRecorder(gpu, { profiler });
    const x = upload(gpu, new Array(4096).fill(1), 'f32');
    const out = poisoned(gpu, 4096, 'f32');
    for (let i = 0; i < 3; i++)
      axpby(
        rec,
        { binding: out, dtype: 'f32' },
        { binding: x, dtype: 'f32' },
        { binding: x, dtype: 'f32' },
        4096,
      );
    await rec.submitAndWait();
    const times = await profiler.durations();
    expect(times.map((t) => t.label)).toEqual(['axpby', 'axpby', 'axpby']);
    for (const t of times) expect(t.ms).toBeGreaterThanOrEqual(0);
  });
});

describe('BufferArena', () => {
  it('reuses freed buffers and tracks bytes in use and the peak', () => {
    const arena = new BufferArena(gpu);
    const a = arena.alloc('a', 1000);
    const b = arena.alloc('b', 10);
    expect(arena.bytesInUse).toBe(1012);
    arena.free(a);
    expect(arena.alloc('c', 1000)).toBe(a);
    expect(arena.list().map((x) => x.name)).toEqual(['c', 'b']);
    expect(arena.peakBytes).toBe(1012);
    arena.free(b);
    expect(() => arena.free(b)).toThrow(/not live/);
    arena.destroy();
  });
});
