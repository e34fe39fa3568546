// Kernel benchmarks (not tests): one row per kernel case at SmolLM2-135M shapes, timed with GPU timestamps
// when the device has them (else wall clock around submit → done), plus the device's measured peak from a
// large matmul and a large buffer copy. Every module in bench/kernels/ that exports KernelBenchCase[] is run.
//
//   npm run bench:kernels [-- --filter matmul --runs 5]
import { readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { acquireGpu, BufferArena, CommandRecorder, Profiler, type Gpu } from '../src/engine/gpu/index.ts';
import { matmul } from '../src/engine/kernels/matmul.ts';
import { nodeGpu } from '../src/node/dawn.ts';
import type { KernelBenchCase } from './kernels/types.ts';

const { values: args } = parseArgs({
  options: { filter: { type: 'string' }, runs: { type: 'string', default: '3' } },
});
const runs = Number(args.runs);

function isCaseList(value: unknown): value is KernelBenchCase[] {
  return (
    Array.isArray(value) && value.every((c) => typeof c?.name === 'string' && typeof c?.setup === 'function')
  );
}

async function loadCases(): Promise<KernelBenchCase[]> {
  const cases: KernelBenchCase[] = [];
  const files = readdirSync(new URL('./kernels/', import.meta.url)).filter(
    (f) => f.endsWith('.ts') && f !== 'types.ts',
  );
  for (const file of files.sort()) {
    const module: Record<string, unknown> = await import(`./kernels/${file}`);
    for (const value of Object.values(module)) if (isCaseList(value)) cases.push(...value);
  }
  return cases.filter((c) => !args.filter || c.name.includes(args.filter));
}

/** Median milliseconds of one recorded launch sequence. */
async function time(gpu: Gpu, record: (rec: CommandRecorder) => void): Promise<number> {
  const samples: number[] = [];
  const profiler = gpu.hasTimestamps ? new Profiler(gpu) : undefined;
  const rec = new CommandRecorder(gpu, { profiler });
  record(rec); // warm-up: compiles pipelines
  await rec.submitAndWait();
  await profiler?.durations();
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    record(rec);
    await rec.submitAndWait();
    const wall = performance.now() - start;
    samples.push(profiler ? (await profiler.durations()).reduce((sum, d) => sum + d.ms, 0) : wall);
  }
  rec.destroy();
  profiler?.destroy();
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

async function measurePeak(gpu: Gpu): Promise<{ gflops: number; gbps: number }> {
  const arena = new BufferArena(gpu);
  const n = 1024;
  const a = arena.alloc('peak.a', 4 * n * n);
  const b = arena.alloc('peak.b', 4 * n * n);
  const c = arena.alloc('peak.c', 4 * n * n);
  const ms = await time(gpu, (rec) =>
    matmul(
      rec,
      { binding: c, dtype: 'f32' },
      { binding: a, dtype: 'f32' },
      { binding: b, dtype: 'f32' },
      { M: n, N: n, K: n },
    ),
  );
  const bytes = 64 * 1024 * 1024;
  const src = arena.alloc('peak.src', bytes);
  const dst = arena.alloc('peak.dst', bytes);
  const start = performance.now();
  const rec = new CommandRecorder(gpu);
  for (let i = 0; i < runs; i++) rec.copy(src, 0, dst, 0, bytes);
  await rec.submitAndWait();
  const copyMs = (performance.now() - start) / runs;
  arena.destroy();
  return { gflops: (2 * n ** 3) / (ms * 1e6), gbps: (2 * bytes) / (copyMs * 1e6) };
}

const gpu = await acquireGpu({ gpu: nodeGpu() });
const cases = await loadCases();
console.log(`# tunelab kernel bench — ${new Date().toISOString().slice(0, 10)}`);
console.log(
  `device: ${[gpu.adapter.vendor, gpu.adapter.architecture, gpu.adapter.description].filter(Boolean).join(' ')}`,
);
console.log(`timing: ${gpu.hasTimestamps ? 'GPU timestamps' : 'wall clock'}, median of ${runs} runs`);
const peak = await measurePeak(gpu);
console.log(
  `peak: ${peak.gflops.toFixed(1)} GFLOP/s (f32 matmul 1024³), ${peak.gbps.toFixed(1)} GB/s (64 MiB copy)\n`,
);
console.log('| kernel | ms | GFLOP/s | GB/s | % of peak |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const c of cases) {
  const instance = c.setup(gpu);
  try {
    const ms = await time(gpu, (rec) => instance.record(rec));
    const gflops = c.flops / (ms * 1e6);
    const gbps = c.bytes / (ms * 1e6);
    const share = c.flops > 0 ? gflops / peak.gflops : gbps / peak.gbps;
    console.log(
      `| ${c.name} | ${ms.toFixed(3)} | ${c.flops ? gflops.toFixed(2) : '—'} | ${gbps.toFixed(2)} | ${(100 * share).toFixed(0)}% |`,
    );
  } catch (error) {
    console.log(
      `| ${c.name} | failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)} | | | |`,
    );
  } finally {
    instance.destroy();
  }
}
gpu.destroy();
process.exit(0);
