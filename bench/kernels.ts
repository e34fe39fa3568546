// Kernel benchmarks (not tests): one row per kernel case at SmolLM2-135M shapes, timed with GPU timestamps
// when the device has them (else wall clock around submit → done), plus the device's measured peak from a
// large matmul and a large buffer copy. Every module in bench/kernels/ that exports KernelBenchCase[] is run.
// FLOPs and bytes are the kernels' own count (each launch's cost) where every launch of a case states one, else
// the case's stated numbers (marked *); "ran" lists the programs that ran (variants included).
//
//   npm run bench:kernels [-- --filter matmul --runs 5 --variants --tune]
//   --variants  under each case with an autotuning task (matmul), one row per eligible variant, timed side by
//               side as autotuning times them, marked with the autotuned pick and the untuned default
//   --tune      autotune every such case's shape class first, so the case rows run the tuned choices
import { readdirSync } from 'node:fs';
import { parseArgs } from 'node:util';
import {
  acquireGpu,
  BufferArena,
  CommandRecorder,
  Profiler,
  type Gpu,
  type RecordingCounts,
} from '../src/engine/gpu/index.ts';
import { autotune } from '../src/engine/kernels/autotune.ts';
import { matmul } from '../src/engine/kernels/matmul.ts';
import { nodeGpu } from '../src/node/dawn.ts';
import type { KernelBenchCase } from './kernels/types.ts';

const { values: args } = parseArgs({
  options: {
    filter: { type: 'string' },
    runs: { type: 'string', default: '3' },
    variants: { type: 'boolean' },
    tune: { type: 'boolean' },
  },
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

/** Median milliseconds of one recorded launch sequence, and what its recording counted. */
async function time(
  gpu: Gpu,
  record: (rec: CommandRecorder) => void,
): Promise<{ ms: number; counts: RecordingCounts }> {
  const samples: number[] = [];
  const profiler = gpu.hasTimestamps ? new Profiler(gpu) : undefined;
  const rec = new CommandRecorder(gpu, { profiler });
  record(rec); // warm-up: compiles pipelines
  await rec.submitAndWait();
  const counts = rec.lastCounts;
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
  return { ms: samples[Math.floor(samples.length / 2)], counts };
}

async function measurePeak(gpu: Gpu): Promise<{ gflops: number; gbps: number }> {
  const arena = new BufferArena(gpu);
  const n = 1024;
  const a = arena.alloc('peak.a', 4 * n * n);
  const b = arena.alloc('peak.b', 4 * n * n);
  const c = arena.alloc('peak.c', 4 * n * n);
  const { ms } = await time(gpu, (rec) =>
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

interface Peak {
  gflops: number;
  gbps: number;
}

/** The work a row divides by: the kernels' own count when every launch stated its cost, else the case's. */
function work(
  c: KernelBenchCase,
  counts: RecordingCounts,
): { flops: number; bytes: number; stated: boolean } {
  const own = counts.dispatches > 0 && counts.costed === counts.dispatches;
  return own
    ? { flops: counts.flops, bytes: counts.bytes, stated: false }
    : { flops: c.flops, bytes: c.bytes, stated: true };
}

const ran = (counts: RecordingCounts) =>
  [...counts.kernels].map(([name, n]) => (n > 1 ? `${name} ×${n}` : name)).join(', ');

function row(name: string, what: string, ms: number, w: ReturnType<typeof work>, peak: Peak): string {
  const gflops = w.flops / (ms * 1e6);
  const gbps = w.bytes / (ms * 1e6);
  // The nearer roof: memory-bound kernels that count their FLOPs (the norms) are judged by their bytes.
  const share = Math.max(gflops / peak.gflops, gbps / peak.gbps);
  const star = w.stated ? '*' : '';
  return (
    `| ${name} | ${what} | ${ms.toFixed(3)} | ${w.flops ? gflops.toFixed(2) : '—'} | ${gbps.toFixed(2)} | ` +
    `${(100 * share).toFixed(0)}% | ${(w.flops / 1e9).toFixed(3)}${star} | ${(w.bytes / 1e6).toFixed(2)}${star} |`
  );
}

/** One row per variant of the case's class, timed side by side as autotuning does; tuning left as it was. */
async function variantRows(gpu: Gpu, c: KernelBenchCase, peak: Peak): Promise<string[]> {
  const task = c.tune!;
  const saved = gpu.tuning.toRecord();
  const result = await autotune(gpu, [task], { retune: true, budgetMs: Infinity, runs });
  gpu.tuning.load(saved);
  const [timed] = result.classes;
  if (!timed) return [`| ↳ ${task.heuristic(gpu)} | the only variant for this shape | | | | | | |`];
  const arena = new BufferArena(gpu);
  const launch = task.prepare(gpu, arena);
  const rows = timed.candidates.map(({ variant, ms, error }) => {
    const rec = new CommandRecorder(gpu);
    launch(rec, variant); // recorded for its counts only, never submitted
    const counts = rec.counts;
    rec.destroy();
    const marks = [variant === timed.winner && '← autotune', variant === timed.heuristic && 'default'];
    const what = `${ran(counts)} ${marks.filter(Boolean).join(', ')}`.trim();
    if (ms === null) return `| ↳ ${variant} | failed: ${error?.split('\n')[0]} | | | | | | |`;
    return row(`↳ ${variant}`, what, ms, work(c, counts), peak);
  });
  arena.destroy();
  return rows;
}

const gpu = await acquireGpu({ gpu: nodeGpu() });
// f16 cases need shader-f16 (Dawn on NVIDIA's Vulkan driver does not offer it): listed as skipped, not failed.
const needsF16 = (c: KernelBenchCase) => / f16\b/.test(c.name);
const allCases = await loadCases();
const cases = gpu.hasF16 ? allCases : allCases.filter((c) => !needsF16(c));
console.log(`# tunelab kernel bench — ${new Date().toISOString().slice(0, 10)}`);
console.log(
  `device: ${[gpu.adapter.vendor, gpu.adapter.architecture, gpu.adapter.description].filter(Boolean).join(' ')}`,
);
console.log(`timing: ${gpu.hasTimestamps ? 'GPU timestamps' : 'wall clock'}, median of ${runs} runs`);
if (cases.length < allCases.length) {
  console.log(`skipped: ${allCases.length - cases.length} f16 cases (this adapter has no shader-f16)`);
}
if (args.tune) {
  const tasks = cases.flatMap((c) => (c.tune ? [c.tune] : []));
  const tuned = await autotune(gpu, tasks, { retune: true, budgetMs: Infinity, runs });
  console.log(`kernel choices: autotuned first (--tune): ${tuned.message}`);
} else console.log('kernel choices: the built-in heuristic (no --tune)');
const peak = await measurePeak(gpu);
console.log(
  `peak: ${peak.gflops.toFixed(1)} GFLOP/s (f32 matmul 1024³), ${peak.gbps.toFixed(1)} GB/s (64 MiB copy)\n`,
);
console.log('| kernel | ran | ms | GFLOP/s | GB/s | % of peak | GFLOP | MB |');
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const c of cases) {
  const instance = c.setup(gpu);
  try {
    const { ms, counts } = await time(gpu, (rec) => instance.record(rec));
    console.log(row(c.name, ran(counts), ms, work(c, counts), peak));
    if (args.variants && c.tune) for (const line of await variantRows(gpu, c, peak)) console.log(line);
  } catch (error) {
    console.log(
      `| ${c.name} | failed: ${error instanceof Error ? error.message.split('\n')[0] : String(error)} | | | | | | |`,
    );
  } finally {
    instance.destroy();
  }
}
console.log("\n*: the case's stated count (some launch of it states no cost of its own)");
gpu.destroy();
process.exit(0);
