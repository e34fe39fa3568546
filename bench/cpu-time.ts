// CPU time per run of kernel bench cases, for comparing kernel versions on a software driver (lavapipe) on a
// shared, loaded machine: lavapipe runs the shaders on this process's threads, so the process's CPU time
// (user + system) per run moves far less with other load than its timestamps or the wall clock do. It says
// nothing about a real GPU. Each sample is one submit of `--reps` back-to-back runs of the case.
//
//   node scripts/with-gpu.mjs node --import tsx --import ./scripts/raw-loader.mjs bench/cpu-time.ts \
//     [--filter norm] [--samples 7] [--reps 4]
import { parseArgs } from 'node:util';
import { acquireGpu, CommandRecorder, type Gpu } from '../src/engine/gpu/index.ts';
import { nodeGpu } from '../src/node/dawn.ts';
import { lossBenches } from './kernels/losses.ts';
import { normBenches } from './kernels/pointwise.ts';
import type { KernelBenchCase } from './kernels/types.ts';

const { values: args } = parseArgs({
  options: {
    filter: { type: 'string' },
    samples: { type: 'string', default: '7' },
    reps: { type: 'string', default: '4' },
  },
});
const samples = Number(args.samples);
const reps = Number(args.reps);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** Median CPU ms and wall ms of one run of the case (samples of `reps` runs in one submit). */
async function measure(gpu: Gpu, c: KernelBenchCase): Promise<{ cpu: number; wall: number }> {
  const instance = c.setup(gpu);
  const rec = new CommandRecorder(gpu);
  try {
    instance.record(rec); // warm-up: compiles the pipelines
    await rec.submitAndWait();
    const cpu: number[] = [];
    const wall: number[] = [];
    for (let s = 0; s < samples; s++) {
      const usage = process.cpuUsage();
      const start = performance.now();
      for (let r = 0; r < reps; r++) instance.record(rec);
      await rec.submitAndWait();
      wall.push((performance.now() - start) / reps);
      const used = process.cpuUsage(usage);
      cpu.push((used.user + used.system) / 1000 / reps);
    }
    return { cpu: median(cpu), wall: median(wall) };
  } finally {
    rec.destroy();
    instance.destroy();
  }
}

const gpu = await acquireGpu({ gpu: nodeGpu() });
const cases = [...normBenches, ...lossBenches].filter((c) => !args.filter || c.name.includes(args.filter));
console.log(`device: ${gpu.adapter.description}; median of ${samples} samples × ${reps} runs per submit`);
console.log('| kernel | CPU ms / run | wall ms / run |');
console.log('| --- | ---: | ---: |');
for (const c of cases) {
  const { cpu, wall } = await measure(gpu, c);
  console.log(`| ${c.name} | ${cpu.toFixed(2)} | ${wall.toFixed(2)} |`);
}
gpu.destroy();
process.exit(0);
