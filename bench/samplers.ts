// Sampler benchmark: median simple regret at 25/50/100 trials over standard test functions, plus the
// suggestion latency of each sampler at 100 and 200 finished trials.
//
//   npx tsx bench/samplers.ts                       # 10 seeds, all problems and samplers
//   npx tsx bench/samplers.ts --seeds 3 --trials 50 --samplers gp,tpe --problems branin,hartmann6
//   npx tsx bench/samplers.ts --no-latency
import { cpus, loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createStudy } from '../src/engine/search/index.ts';
import type { Params, SamplerName, SpaceSpec } from '../src/engine/search/index.ts';

interface Problem {
  name: string;
  space: SpaceSpec;
  f: (p: Params) => number;
  optimum: number;
}

const box = (d: number, low: number, high: number): SpaceSpec =>
  Object.fromEntries(Array.from({ length: d }, (_, i) => [`x${i}`, { type: 'float', low, high }]));
const vec = (p: Params, d: number): number[] => Array.from({ length: d }, (_, i) => p[`x${i}`] as number);

const HARTMANN_A = [
  [10, 3, 17, 3.5, 1.7, 8],
  [0.05, 10, 17, 0.1, 8, 14],
  [3, 3.5, 1.7, 10, 17, 8],
  [17, 8, 0.05, 10, 0.1, 14],
];
const HARTMANN_P = [
  [1312, 1696, 5569, 124, 8283, 5886],
  [2329, 4135, 8307, 3736, 1004, 9991],
  [2348, 1451, 3522, 2883, 3047, 6650],
  [4047, 8828, 8732, 5743, 1091, 381],
].map((r) => r.map((v) => v * 1e-4));
const HARTMANN_ALPHA = [1, 1.2, 3, 3.2];

export const PROBLEMS: Problem[] = [
  {
    name: 'branin',
    space: { x0: { type: 'float', low: -5, high: 10 }, x1: { type: 'float', low: 0, high: 15 } },
    f: (p) => {
      const [x, y] = vec(p, 2);
      const b = 5.1 / (4 * Math.PI ** 2);
      return (y - b * x * x + (5 / Math.PI) * x - 6) ** 2 + 10 * (1 - 1 / (8 * Math.PI)) * Math.cos(x) + 10;
    },
    optimum: 0.397887357729738,
  },
  {
    name: 'hartmann6',
    space: box(6, 0, 1),
    f: (p) => {
      const x = vec(p, 6);
      let s = 0;
      for (let i = 0; i < 4; i++) {
        let e = 0;
        for (let j = 0; j < 6; j++) e += HARTMANN_A[i][j] * (x[j] - HARTMANN_P[i][j]) ** 2;
        s += HARTMANN_ALPHA[i] * Math.exp(-e);
      }
      return -s;
    },
    optimum: -3.32236801141551,
  },
  {
    name: 'rosenbrock4',
    space: box(4, -5, 10),
    f: (p) => {
      const x = vec(p, 4);
      let s = 0;
      for (let i = 0; i < 3; i++) s += 100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2;
      return s;
    },
    optimum: 0,
  },
  {
    name: 'levy6',
    space: box(6, -10, 10),
    f: (p) => {
      const w = vec(p, 6).map((v) => 1 + (v - 1) / 4);
      const d = w.length;
      let s = Math.sin(Math.PI * w[0]) ** 2;
      for (let i = 0; i < d - 1; i++) s += (w[i] - 1) ** 2 * (1 + 10 * Math.sin(Math.PI * w[i] + 1) ** 2);
      return s + (w[d - 1] - 1) ** 2 * (1 + Math.sin(2 * Math.PI * w[d - 1]) ** 2);
    },
    optimum: 0,
  },
  {
    name: 'ackley5',
    space: box(5, -32.768, 32.768),
    f: (p) => {
      const x = vec(p, 5);
      const d = x.length;
      const sq = x.reduce((a, v) => a + v * v, 0) / d;
      const cs = x.reduce((a, v) => a + Math.cos(2 * Math.PI * v), 0) / d;
      return -20 * Math.exp(-0.2 * Math.sqrt(sq)) - Math.exp(cs) + 20 + Math.E;
    },
    optimum: 0,
  },
  {
    // A fine-tuning-like space: log learning rate, log int batch, int epochs, categorical optimiser and
    // scheduler. Optimum 0 at lr=3e-4, batch=16, epochs=3, opt=adamw, sched=cosine, dropout=0.1.
    name: 'mixed',
    space: {
      lr: { type: 'float', low: 1e-6, high: 1e-1, log: true },
      batch: { type: 'int', low: 1, high: 128, log: true },
      epochs: { type: 'int', low: 1, high: 10 },
      opt: { type: 'categorical', choices: ['sgd', 'adamw', 'lion'] },
      sched: { type: 'categorical', choices: ['constant', 'linear', 'cosine'] },
      dropout: { type: 'float', low: 0, high: 0.5 },
    },
    f: (p) =>
      (Math.log10(p.lr as number) - Math.log10(3e-4)) ** 2 +
      0.5 * (Math.log2(p.batch as number) - 4) ** 2 +
      0.1 * ((p.epochs as number) - 3) ** 2 +
      (p.opt === 'adamw' ? 0 : p.opt === 'lion' ? 0.5 : 2) +
      (p.sched === 'cosine' ? 0 : 0.3) +
      10 * ((p.dropout as number) - 0.1) ** 2,
    optimum: 0,
  },
];

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : 0.5 * (s[m - 1] + s[m]);
};

/** Best-so-far regret after each trial of one run. */
function runOnce(problem: Problem, sampler: SamplerName, seed: number, trials: number): number[] {
  const study = createStudy({ space: problem.space, sampler, seed, direction: 'minimize' });
  const curve: number[] = [];
  let best = Infinity;
  for (let i = 0; i < trials; i++) {
    const t = study.ask();
    const v = problem.f(t.params);
    study.tell(t, v);
    best = Math.min(best, v);
    curve.push(best - problem.optimum);
  }
  return curve;
}

/**
 * Mean ask() latency with `at` finished trials (over `repeats` asks, each told after): wall-clock ms and
 * this process's CPU ms (the latter is what to compare when other jobs share the cores).
 */
function latency(
  problem: Problem,
  sampler: SamplerName,
  at: number[],
  repeats: number,
): { wall: number; cpu: number }[] {
  const study = createStudy({ space: problem.space, sampler, seed: 1 });
  const out: { wall: number; cpu: number }[] = [];
  let done = 0;
  for (const target of at) {
    while (done < target) {
      const t = study.ask();
      study.tell(t, problem.f(t.params));
      done++;
    }
    let wall = 0;
    let cpu = 0;
    for (let r = 0; r < repeats; r++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const t = study.ask();
      wall += performance.now() - t0;
      const c = process.cpuUsage(c0);
      cpu += (c.user + c.system) / 1000;
      study.tell(t, problem.f(t.params));
      done++;
    }
    out.push({ wall: wall / repeats, cpu: cpu / repeats });
  }
  return out;
}

const fmt = (x: number): string =>
  x === 0 ? '0' : x < 1e-3 || x >= 1e4 ? x.toExponential(1) : x.toPrecision(3);

function main(): void {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '10' },
      trials: { type: 'string', default: '100' },
      samplers: { type: 'string', default: 'random,sobol,tpe,gp' },
      problems: { type: 'string', default: PROBLEMS.map((p) => p.name).join(',') },
      'no-latency': { type: 'boolean', default: false },
      'latency-problem': { type: 'string', default: 'hartmann6' },
    },
  });
  const seeds = Number(values.seeds);
  const trials = Number(values.trials);
  const samplers = values.samplers.split(',') as SamplerName[];
  const problems = PROBLEMS.filter((p) => values.problems.split(',').includes(p.name));
  const checkpoints = [25, 50, 100].filter((c) => c <= trials);
  const started = performance.now();

  console.log(
    `Samplers, median simple regret over ${seeds} seeds (1..${seeds}); ${cpus()[0]?.model ?? 'cpu'}, Node ${process.version}\n`,
  );
  console.log(`| problem | sampler | ${checkpoints.map((c) => `@${c}`).join(' | ')} | s/run |`);
  console.log(`|---|---|${checkpoints.map(() => '---:').join('|')}|---:|`);
  for (const problem of problems) {
    for (const sampler of samplers) {
      const curves: number[][] = [];
      const t0 = performance.now();
      for (let seed = 1; seed <= seeds; seed++) curves.push(runOnce(problem, sampler, seed, trials));
      const perRun = (performance.now() - t0) / 1000 / seeds;
      const cells = checkpoints.map((c) => fmt(median(curves.map((cv) => cv[c - 1]))));
      console.log(`| ${problem.name} | ${sampler} | ${cells.join(' | ')} | ${perRun.toFixed(2)} |`);
    }
  }
  if (!values['no-latency']) {
    const problem = PROBLEMS.find((p) => p.name === values['latency-problem']) as Problem;
    console.log(
      `\nSuggestion latency (ms per ask, mean of 5 asks), ${problem.name}, load average ${loadavg()[0].toFixed(1)}:\n`,
    );
    console.log('| sampler | wall @100 | CPU @100 | wall @200 | CPU @200 |');
    console.log('|---|---:|---:|---:|---:|');
    for (const sampler of samplers) {
      const [a, b] = latency(problem, sampler, [100, 200], 5);
      const cells = [a.wall, a.cpu, b.wall, b.cpu].map((v) => v.toFixed(1));
      console.log(`| ${sampler} | ${cells.join(' | ')} |`);
    }
  }
  console.log(`\ntotal ${((performance.now() - started) / 1000).toFixed(0)} s`);
}

main();
