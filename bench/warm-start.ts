// Warm-start benchmark: does a study on a "large model" reach its good region in fewer trials when it starts
// from a finished "small model" study (src/engine/search/warm-start.ts) than from scratch? CPU only.
//
// Each problem pair is a synthetic LoRA-like objective over log learning rate, rank, warmup and dropout: a
// bowl around the small model's optimum, and a large-model version that moves the optimum (lr divided by a
// factor, other optima nudged), rescales and offsets the values, adds ripples and noise — and one pair whose
// optimum is elsewhere entirely (the ranking does not transfer). Per seed: a 30-trial TPE study on the small
// objective is the source; then a cold and a warm study of 20 trials on the large one, same sampler and
// seed. Regret at n trials: the noise-free large-model value of the trial the study reports best after n
// trials (lowest observed value) minus the large model's optimum; the table gives the median over seeds.
//
//   npx tsx bench/warm-start.ts                  # seeds 1–10, samplers tpe and gp
//   npx tsx bench/warm-start.ts --seeds 3 --samplers tpe
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Rng, createSpace, createStudy, warmStartFrom } from '../src/engine/search/index.ts';
import type { Params, SamplerName, SpaceSpec, Study, WarmStartSeed } from '../src/engine/search/index.ts';

export const SPACE: SpaceSpec = {
  lr: { type: 'float', low: 1e-5, high: 1e-2, log: true },
  rank: { type: 'categorical', choices: [4, 8, 16, 32] },
  warmup: { type: 'float', low: 0, high: 0.2 },
  dropout: { type: 'float', low: 0, high: 0.3 },
};

/** Where a bowl has its minimum: log10 of the learning rate, log2 of the rank, warmup and dropout. */
interface Optimum {
  lr: number;
  rank: number;
  warmup: number;
  dropout: number;
}

/** A bowl (minimum `offset` at `at`, values × `scale`) with ripples that vanish at the minimum. */
function bowl(at: Optimum, scale: number, offset: number, ripple: number): (p: Params) => number {
  return (p) => {
    const dl = Math.log10(p.lr as number) - at.lr;
    const shape =
      dl ** 2 +
      0.05 * (Math.log2(p.rank as number) - at.rank) ** 2 +
      20 * ((p.warmup as number) - at.warmup) ** 2 +
      5 * ((p.dropout as number) - at.dropout) ** 2 +
      ripple * (1 - Math.cos(6 * Math.PI * dl));
    return offset + scale * shape;
  };
}

export interface ProblemPair {
  name: string;
  small: (p: Params) => number;
  large: (p: Params) => number;
  /** The large objective's minimum (the bowls' offset). */
  largeOptimum: number;
  /** Standard deviation of the noise added to every observation, both models. */
  noise: number;
}

const SMALL: Optimum = { lr: Math.log10(3e-4), rank: 3, warmup: 0.05, dropout: 0.1 };
const small = bowl(SMALL, 1, 1, 0);

export const PAIRS: ProblemPair[] = [
  {
    name: 'same optimum, 0.5·f + 0.2',
    small,
    large: bowl(SMALL, 0.5, 0.7, 0),
    largeOptimum: 0.7,
    noise: 0.02,
  },
  {
    name: 'lr ÷ 3, 0.6·f + 0.6',
    small,
    large: bowl({ ...SMALL, lr: SMALL.lr - Math.log10(3) }, 0.6, 1.2, 0),
    largeOptimum: 1.2,
    noise: 0.02,
  },
  {
    name: 'lr ÷ 3, all optima moved, ripples',
    small,
    large: bowl({ lr: SMALL.lr - Math.log10(3), rank: 4, warmup: 0.08, dropout: 0.05 }, 0.6, 1.2, 0.05),
    largeOptimum: 1.2,
    noise: 0.03,
  },
  {
    name: 'does not transfer (lr × 20, rank 32)',
    small,
    large: bowl({ lr: SMALL.lr + Math.log10(20), rank: 5, warmup: 0.15, dropout: 0.25 }, 0.6, 1.2, 0),
    largeOptimum: 1.2,
    noise: 0.02,
  },
];

export const CHECKPOINTS = [5, 10, 20] as const;
const SOURCE_TRIALS = 30;

/** Run `trials` asks of `study` on f plus noise; returns the noise-free value of each trial, in order. */
function runStudy(study: Study, f: (p: Params) => number, noise: number, trials: number, rng: Rng): number[] {
  const clean: number[] = [];
  for (let i = 0; i < trials; i++) {
    const t = study.ask();
    const value = f(t.params);
    clean.push(value);
    study.tell(t, value + noise * rng.normal());
  }
  return clean;
}

/** Regret after each checkpoint: the clean value of the lowest observed trial so far, minus the optimum. */
function regrets(study: Study, clean: number[], optimum: number): number[] {
  return CHECKPOINTS.map((n) => {
    let best = 0;
    for (let i = 1; i < n; i++)
      if ((study.trials[i].value as number) < (study.trials[best].value as number)) best = i;
    return clean[best] - optimum;
  });
}

export function sourceStudy(pair: ProblemPair, seed: number): Study {
  const source = createStudy({ space: SPACE, sampler: 'tpe', seed: 1000 + seed });
  runStudy(source, pair.small, pair.noise, SOURCE_TRIALS, new Rng(seed, 'source-noise'));
  return source;
}

export function targetRegrets(
  pair: ProblemPair,
  sampler: SamplerName,
  seed: number,
  warmStart: WarmStartSeed | undefined,
): number[] {
  const study = createStudy({ space: SPACE, sampler, seed, ...(warmStart ? { warmStart } : {}) });
  const clean = runStudy(study, pair.large, pair.noise, 20, new Rng(seed, 'target-noise'));
  return regrets(study, clean, pair.largeOptimum);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

function main(): void {
  const { values } = parseArgs({
    options: { seeds: { type: 'string', default: '10' }, samplers: { type: 'string', default: 'tpe,gp' } },
  });
  const seeds = Array.from({ length: Number(values.seeds) }, (_, i) => i + 1);
  const samplers = values.samplers.split(',') as SamplerName[];
  const started = performance.now();
  const space = createSpace(SPACE);
  console.log(`| pair | sampler | ${CHECKPOINTS.map((n) => `cold @${n} | warm @${n}`).join(' | ')} |`);
  console.log(`|---|---|${CHECKPOINTS.map(() => '--:|--:').join('|')}|`);
  for (const pair of PAIRS) {
    const seedsOf = seeds.map((s) => warmStartFrom(sourceStudy(pair, s), space));
    for (const sampler of samplers) {
      const cold = seeds.map((s) => targetRegrets(pair, sampler, s, undefined));
      const warm = seeds.map((s, i) => targetRegrets(pair, sampler, s, seedsOf[i]));
      const cells = CHECKPOINTS.map((_, c) => {
        const fmt = (runs: number[][]): string => median(runs.map((r) => r[c])).toFixed(3);
        return `${fmt(cold)} | ${fmt(warm)}`;
      });
      console.log(`| ${pair.name} | ${sampler} | ${cells.join(' | ')} |`);
    }
  }
  console.log(
    `\nseeds ${seeds[0]}–${seeds[seeds.length - 1]}; ${((performance.now() - started) / 1000).toFixed(0)} s`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) main();
