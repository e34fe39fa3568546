// Multi-objective sampler benchmark: median hypervolume at 20 and 40 trials on standard test problems, for
// random search, Sobol, MOTPE ('tpe' in a multi-objective study) and ParEGO over the GP ('gp'), sequentially and
// with 4 simulated workers (each ask made while the 3 earlier trials are pending). Higher is better; the
// best possible value is given per problem.
//
//   npx tsx bench/multi-objective.ts              # 7 seeds
//   npx tsx bench/multi-objective.ts --seeds 3
import { parseArgs } from 'node:util';
import { createStudy, hypervolume } from '../src/engine/search/index.ts';
import type { Params, SamplerName, SpaceSpec, Trial } from '../src/engine/search/index.ts';

interface Problem {
  name: string;
  space: SpaceSpec;
  f: (p: Params) => number[];
  reference: number[];
  /** The hypervolume of the true front to the reference (for scale). */
  best: number;
}

const box = (d: number): SpaceSpec =>
  Object.fromEntries(Array.from({ length: d }, (_, i) => [`x${i}`, { type: 'float', low: 0, high: 1 }]));
const vec = (p: Params, d: number): number[] => Array.from({ length: d }, (_, i) => p[`x${i}`] as number);

/** Zitzler–Deb–Thiele: f1 = x1, f2 = g·h(f1/g) with g = 1 + 9·mean(x2..xd); the front at g = 1. */
function zdt(name: string, d: number, h: (r: number) => number, frontArea: number): Problem {
  return {
    name,
    space: box(d),
    f: (p) => {
      const x = vec(p, d);
      const g = 1 + (9 / (d - 1)) * x.slice(1).reduce((a, v) => a + v, 0);
      return [x[0], g * h(x[0] / g)];
    },
    reference: [1.1, 11],
    best: 1.1 * 11 - frontArea,
  };
}

/** DTLZ2 with 3 objectives: a spherical front (radius 1) in the positive octant. */
function dtlz2(d: number): Problem {
  return {
    name: `DTLZ2 (${d}-D, 3 objectives)`,
    space: box(d),
    f: (p) => {
      const x = vec(p, d);
      const g = x.slice(2).reduce((a, v) => a + (v - 0.5) ** 2, 0);
      const [a, b] = [(x[0] * Math.PI) / 2, (x[1] * Math.PI) / 2];
      return [
        (1 + g) * Math.cos(a) * Math.cos(b),
        (1 + g) * Math.cos(a) * Math.sin(b),
        (1 + g) * Math.sin(a),
      ];
    },
    reference: [1.1, 1.1, 1.1],
    best: 1.1 ** 3 - Math.PI / 6,
  };
}

const PROBLEMS: Problem[] = [
  zdt('ZDT1 (4-D, convex front)', 4, (r) => 1 - Math.sqrt(r), 1 / 3),
  zdt('ZDT2 (4-D, concave front)', 4, (r) => 1 - r * r, 2 / 3),
  dtlz2(5),
];

/** Hypervolume after 20 and 40 trials; `workers` asks run ahead of the tells (the oldest told first). */
function run(problem: Problem, sampler: SamplerName, seed: number, workers: number): [number, number] {
  const directions = problem.reference.map(() => 'minimize' as const);
  const study = createStudy({ space: problem.space, sampler, seed, directions });
  const points: number[][] = [];
  const pending: Trial[] = [];
  const out: number[] = [];
  for (let n = 0; points.length < 40; n++) {
    while (pending.length < workers && n + pending.length < 40 + workers) pending.push(study.ask());
    const t = pending.shift()!;
    const values = problem.f(t.params);
    study.tell(t, { state: 'complete', values });
    points.push(values);
    if (points.length === 20 || points.length === 40) out.push(hypervolume(points, problem.reference));
  }
  return [out[0], out[1]];
}

const median = (a: number[]): number => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

function main(): void {
  const { values } = parseArgs({ options: { seeds: { type: 'string', default: '7' } } });
  const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => i);
  const samplers: SamplerName[] = ['random', 'sobol', 'tpe', 'gp'];
  console.log(`seeds ${seeds.join(', ')}; median hypervolume (higher is better) at 20 / 40 trials`);
  for (const problem of PROBLEMS) {
    console.log(
      `\n${problem.name}: reference (${problem.reference.join(', ')}), best ${problem.best.toFixed(3)}`,
    );
    console.log('| sampler | sequential 20 | sequential 40 | 4 workers 20 | 4 workers 40 | s per study |');
    console.log('| --- | --- | --- | --- | --- | --- |');
    for (const sampler of samplers) {
      const t0 = performance.now();
      const cells: string[] = [];
      for (const workers of [1, 4]) {
        const runs = seeds.map((s) => run(problem, sampler, s, workers));
        cells.push(median(runs.map((r) => r[0])).toFixed(3), median(runs.map((r) => r[1])).toFixed(3));
      }
      const seconds = (performance.now() - t0) / 1000 / (2 * seeds.length);
      const name = sampler === 'tpe' ? 'tpe (MOTPE)' : sampler === 'gp' ? 'gp (ParEGO)' : sampler;
      console.log(`| ${name} | ${cells.join(' | ')} | ${seconds.toFixed(2)} |`);
    }
  }
}

main();
