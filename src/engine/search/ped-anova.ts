// Local hyperparameter importance by PED-ANOVA (Watanabe, Bansal & Hutter, IJCAI 2023; as Optuna's
// PedAnovaImportanceEvaluator with its defaults: baseline_quantile 0.1, evaluate_on_local, a 50-point grid,
// prior weight 1, at least 2 top trials). fANOVA (importance.ts) asks which parameter moves the objective
// over the whole space; PED-ANOVA asks which parameter the good trials agree on. For each parameter it
// compares two 1-D Parzen densities on a grid: p_top of the trials in the top quantile and p_all of every
// complete trial, by their Pearson divergence Σ_g p_all(g)·(p_top(g)/p_all(g) − 1)². Closed form, no model
// fit: one pass over the trials and the grid per parameter.
import { toUnit } from './space.ts';
import type { NumericDef, SampledDef, SearchSpace } from './space.ts';
import { logNormCdfDiff } from './special.ts';
import { minimiseSign } from './types.ts';
import type { Direction, TrialRecord } from './types.ts';

export interface PedAnovaOptions {
  /** The study's direction (of its first objective in a multi-objective study). */
  direction: Direction;
  /** Share of the complete trials that counts as good (Optuna's baseline_quantile); default 0.1. */
  quantile?: number;
  /** Parameters to evaluate; default: every sampled parameter present in all complete trials. */
  params?: string[];
}

/** PED-ANOVA refused its input: `field` names the option (or 'trials'), `reason` what was expected. */
export class ImportanceError extends Error {
  constructor(
    readonly field: 'trials' | 'quantile' | 'params' | 'direction',
    readonly reason: string,
  ) {
    super(`pedAnovaImportance: ${reason}`);
    this.name = 'ImportanceError';
  }
}

const GRID_POINTS = 50;
const PRIOR_WEIGHT = 1;
/** The top set needs this many trials, however small the quantile (Optuna's min_n_top_trials). */
const MIN_TOP_TRIALS = 2;
/** Keeps the density ratio finite where a density is ~0 (Optuna adds the same). */
const EPS = 1e-12;

/** PED-ANOVA's default top share, as Optuna's: the best 10 % of the complete trials. */
export const TOP_QUANTILE = 0.1;

/** The complete trials with a finite objective: the ones PED-ANOVA reads. */
const completeTrials = (trials: readonly TrialRecord[]): TrialRecord[] =>
  trials.filter((t) => t.state === 'complete' && Number.isFinite(t.value));

/**
 * The complete trials in the top `quantile` by objective: at least MIN_TOP_TRIALS, ties at the cutoff
 * included; all of them while there are no more than MIN_TOP_TRIALS.
 */
export function topQuantileTrials(
  trials: readonly TrialRecord[],
  direction: Direction,
  quantile = TOP_QUANTILE,
): TrialRecord[] {
  const complete = completeTrials(trials);
  if (complete.length <= MIN_TOP_TRIALS) return complete;
  const sign = minimiseSign(direction);
  const losses = complete.map((t) => sign * (t.value as number));
  const sorted = [...losses].sort((a, b) => a - b);
  // numpy's quantile(method="higher"), as Optuna's QuantileFilter.
  const cutoff = Math.max(sorted[MIN_TOP_TRIALS - 1], sorted[Math.ceil(quantile * (sorted.length - 1))]);
  return complete.filter((_, i) => losses[i] <= cutoff);
}

type Grid = { size: number; index: (value: unknown) => number; categorical: boolean };

/**
 * The parameter's grid and where a value falls on it: a categorical's choices; a numeric parameter's
 * (log-)unit interval in GRID_POINTS steps, or in its own values where it has fewer (an int, a stepped
 * float), or in ⌈log2(range + 1)⌉ + 1 points for a log int (Optuna 3.6's rule: a log grid over a small int
 * range would put several points between two of its values).
 */
function gridOf(def: SampledDef): Grid {
  if (def.kind === 'categorical')
    return {
      size: def.choices.length,
      index: (v) => def.choices.indexOf(v as never),
      categorical: true,
    };
  const last = lastValue(def);
  let size = GRID_POINTS;
  if (def.log && def.kind === 'int')
    size = Math.min(GRID_POINTS, Math.ceil(Math.log2(def.high - def.low + 1)) + 1);
  else if (def.step > 0) size = Math.min(GRID_POINTS, Math.round((last - def.low) / def.step) + 1);
  const lo = toUnit(def, def.low);
  const hi = toUnit(def, last);
  return {
    size,
    index: (v) => {
      const g = Math.round(((toUnit(def, v as number) - lo) / (hi - lo)) * (size - 1));
      return Math.min(size - 1, Math.max(0, g));
    },
    categorical: false,
  };
}

/** The largest value on the parameter's grid (high itself unless high − low is not a whole number of steps). */
function lastValue(def: NumericDef): number {
  if (def.step === 0 || def.log) return def.high;
  return def.low + Math.floor((def.high - def.low) / def.step + 1e-9) * def.step;
}

/**
 * Probability of each grid point under the 1-D Parzen estimator of `counts` (trials per grid point), as
 * Optuna's _ScottParzenEstimator: one kernel per occupied point weighted by its count, plus a prior kernel
 * of weight PRIOR_WEIGHT.
 */
export function parzenOnGrid(counts: readonly number[], categorical: boolean): Float64Array {
  const size = counts.length;
  const occupied: number[] = [];
  counts.forEach((c, g) => c > 0 && occupied.push(g));
  const total = counts.reduce((a, b) => a + b, 0) + PRIOR_WEIGHT;
  const pmf = new Float64Array(size);
  const addKernel = (weight: number, kernel: (g: number) => number): void => {
    for (let g = 0; g < size; g++) pmf[g] += (weight / total) * kernel(g);
  };
  if (categorical) {
    // Aitchison–Aitken-style: weight 1 on the observed choice plus PRIOR_WEIGHT/K spread over all choices.
    const spread = PRIOR_WEIGHT / (occupied.length + 1);
    for (const j of occupied) addKernel(counts[j], (g) => ((g === j ? 1 : 0) + spread) / (1 + spread * size));
    addKernel(PRIOR_WEIGHT, () => 1 / size);
    return pmf;
  }
  const sigma = scottBandwidth(counts, occupied);
  for (const j of occupied) addKernel(counts[j], discreteNormal(size, j, sigma));
  addKernel(PRIOR_WEIGHT, discreteNormal(size, (size - 1) / 2, size));
  return pmf;
}

/**
 * Scott's rule on the grid's index scale: 1.059·min(IQR/1.34, sd)·n^(−1/5), at least 0.5/1.64 (±0.5 is then
 * ±1.64σ: no kernel puts more than 90 % of its mass on its own grid point).
 */
function scottBandwidth(counts: readonly number[], occupied: readonly number[]): number {
  const n = occupied.reduce((a, j) => a + counts[j], 0);
  const mean = occupied.reduce((a, j) => a + j * counts[j], 0) / n;
  const variance = occupied.reduce((a, j) => a + counts[j] * (j - mean) ** 2, 0) / Math.max(1, n - 1);
  // Quartiles from the cumulative counts (numpy searchsorted left for Q1, right for Q3, as Optuna).
  const cumulative: number[] = [];
  occupied.reduce((a, j) => (cumulative.push(a + counts[j]), a + counts[j]), 0);
  const q1 = cumulative.findIndex((c) => c >= Math.floor(n / 4));
  let q3 = cumulative.findIndex((c) => c > Math.floor((3 * n) / 4));
  if (q3 < 0) q3 = occupied.length - 1;
  const iqr = occupied[q3] - occupied[q1];
  return Math.max(1.059 * Math.min(iqr / 1.34, Math.sqrt(variance)) * n ** -0.2, 0.5 / 1.64);
}

/** A normal N(mu, sigma²) discretised to the grid 0..size−1: each point's cell mass, renormalised to 1. */
function discreteNormal(size: number, mu: number, sigma: number): (g: number) => number {
  const logInside = logNormCdfDiff((-0.5 - mu) / sigma, (size - 0.5 - mu) / sigma);
  return (g) => Math.exp(logNormCdfDiff((g - 0.5 - mu) / sigma, (g + 0.5 - mu) / sigma) - logInside);
}

/** Pearson divergence of p_top from p_all: Σ p_all·(p_top/p_all − 1)². */
function pearsonDivergence(top: Float64Array, all: Float64Array): number {
  let d = 0;
  for (let g = 0; g < top.length; g++) {
    const pAll = all[g] + EPS;
    d += pAll * ((top[g] + EPS) / pAll - 1) ** 2;
  }
  return d;
}

function countsOnGrid(grid: Grid, name: string, trials: readonly TrialRecord[]): number[] {
  const counts = new Array<number>(grid.size).fill(0);
  for (const t of trials) {
    const g = grid.index(t.params[name]);
    // Only a categorical value outside the choices has no grid point (numeric ones are clamped onto it).
    if (g < 0)
      throw new ImportanceError(
        'trials',
        `trial ${t.number}: parameter '${name}' is ${JSON.stringify(t.params[name])}, not one of its choices`,
      );
    counts[g]++;
  }
  return counts;
}

/**
 * Normalised local importances (summing to 1) of the parameters: how much each one sets the top
 * `quantile` of the complete trials apart from all of them. All zeros when the top set is every trial
 * (the objective does not separate them); throws an ImportanceError with fewer than three complete
 * trials (the top two would be all of them) or a bad option.
 */
export function pedAnovaImportance(
  space: SearchSpace,
  trials: readonly TrialRecord[],
  options: PedAnovaOptions,
): Record<string, number> {
  const quantile = options.quantile ?? TOP_QUANTILE;
  if (!(quantile > 0 && quantile < 1))
    throw new ImportanceError('quantile', `quantile must be a number in (0, 1) (got ${quantile})`);
  if (options.direction !== 'minimize' && options.direction !== 'maximize')
    throw new ImportanceError(
      'direction',
      `direction must be 'minimize' or 'maximize' (got ${JSON.stringify(options.direction)})`,
    );
  const complete = completeTrials(trials);
  if (complete.length <= MIN_TOP_TRIALS)
    throw new ImportanceError(
      'trials',
      `need at least ${MIN_TOP_TRIALS + 1} complete trials (got ${complete.length})`,
    );
  let defs = space.sampled.filter((d) => complete.every((t) => t.params[d.name] !== undefined));
  if (options.params) {
    for (const p of options.params)
      if (!space.sampled.some((d) => d.name === p))
        throw new ImportanceError('params', `params: unknown parameter '${p}'`);
    defs = defs.filter((d) => options.params?.includes(d.name));
  }
  const top = topQuantileTrials(complete, options.direction, quantile);
  const divergences = defs.map((def) => {
    if (top.length === complete.length) return 0;
    const grid = gridOf(def);
    const pTop = parzenOnGrid(countsOnGrid(grid, def.name, top), grid.categorical);
    const pAll = parzenOnGrid(countsOnGrid(grid, def.name, complete), grid.categorical);
    return pearsonDivergence(pTop, pAll);
  });
  const total = divergences.reduce((a, b) => a + b, 0);
  const out: Record<string, number> = {};
  defs.forEach((d, i) => (out[d.name] = total > 0 ? divergences[i] / total : 0));
  return out;
}
