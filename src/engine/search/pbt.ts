// Population-based training as a scheduler over a study (Jaderberg et al. 2017; Ray Tune's PBT): every
// `interval` steps a trial ranked in the bottom quantile of the population (by its latest reported value)
// is told to load the checkpoint of a random top-quantile trial (exploit) and continue with that trial's
// parameters perturbed (explore: ×0.8 / ×1.2, neighbouring category, or a fresh prior draw). Decisions are
// logged as `pbt` events, so each trial's lineage survives a reload; the randomness of a decision comes
// from Rng(seed, 'pbt', trial, step), so a resumed study decides identically.
import { Rng } from '../rng.ts';
import { isActive, resolveParams, sampleFromPrior, snapNumeric } from './space.ts';
import type { Params, SearchSpace } from './space.ts';
import type { LineageEntry, Study, Trial } from './study.ts';
import type { TrialRecord } from './types.ts';
import { minimiseSign } from './types.ts';

export interface PbtOptions {
  /** Steps between decisions (a decision is considered when a trial reports a multiple of it). */
  interval: number;
  /** Fraction of the population forming the top and the bottom groups. Default 0.25. */
  quantile?: number;
  /** Multipliers for continuous parameters. Default [0.8, 1.2]. */
  perturbFactors?: [number, number];
  /** Probability of redrawing a parameter from its prior instead of perturbing it. Default 0.25. */
  resampleProbability?: number;
}

export interface PbtDecision {
  /** Trial whose checkpoint to load. */
  exploit: number;
  /** Parameters to continue with. */
  params: Params;
}

/** Latest reported value at or before `step`, or undefined. */
function scoreAt(t: TrialRecord, step: number): number | undefined {
  let v: number | undefined;
  for (const [s, x] of t.intermediate) if (s <= step && Number.isFinite(x)) v = x;
  return v;
}

export function explore(
  space: SearchSpace,
  params: Params,
  rng: Rng,
  factors: readonly [number, number],
  resampleProbability: number,
): Params {
  const proposal: Params = {};
  for (const def of space.sampled) {
    if (!isActive(def, proposal)) continue;
    const v = params[def.name];
    if (v === undefined || rng.random() < resampleProbability) {
      proposal[def.name] = sampleFromPrior(def, rng);
    } else if (def.kind === 'categorical') {
      const i = def.choices.indexOf(v);
      const j = Math.min(def.choices.length - 1, Math.max(0, i + (rng.random() < 0.5 ? -1 : 1)));
      proposal[def.name] = def.choices[j];
    } else {
      const f = rng.random() < 0.5 ? factors[0] : factors[1];
      let next = snapNumeric(def, (v as number) * f);
      // Keep integers moving when the multiplier rounds back to the same value.
      if (next === v && def.step > 0) next = snapNumeric(def, (v as number) + (f > 1 ? def.step : -def.step));
      proposal[def.name] = next;
    }
  }
  return resolveParams(space, proposal, rng);
}

export class PbtScheduler {
  readonly #study: Study;
  readonly #interval: number;
  readonly #quantile: number;
  readonly #factors: [number, number];
  readonly #resample: number;

  constructor(study: Study, options: PbtOptions) {
    const { interval } = options;
    const quantile = options.quantile ?? 0.25;
    const factors = options.perturbFactors ?? [0.8, 1.2];
    const resample = options.resampleProbability ?? 0.25;
    if (!Number.isInteger(interval) || interval < 1)
      throw new Error(`pbt: interval must be a positive integer (got ${interval})`);
    if (!(quantile > 0 && quantile <= 0.5))
      throw new Error(`pbt: quantile must be in (0, 0.5] (got ${quantile})`);
    if (!Array.isArray(factors) || factors.length !== 2 || !factors.every((f) => f > 0))
      throw new Error('pbt: perturbFactors must be two positive numbers');
    if (!(resample >= 0 && resample <= 1))
      throw new Error(`pbt: resampleProbability must be in [0, 1] (got ${resample})`);
    this.#study = study;
    this.#interval = interval;
    this.#quantile = quantile;
    this.#factors = [factors[0], factors[1]];
    this.#resample = resample;
  }

  /**
   * Call after `trial.report(step, …)`. Returns a decision (already recorded in the study's log and the
   * trial's params) when the trial should exploit a better one, else null.
   */
  decide(trial: Trial | number): PbtDecision | null {
    const number = typeof trial === 'number' ? trial : trial.number;
    const study = this.#study;
    const rec = study.trial(number);
    if (rec.state !== 'running' || rec.intermediate.length === 0) return null;
    const step = rec.intermediate[rec.intermediate.length - 1][0];
    if (step === 0 || step % this.#interval !== 0) return null;
    if (study.lineage(number).some((e) => e.step === step)) return null;
    const sign = minimiseSign(study.direction);
    const population: { number: number; score: number }[] = [];
    for (const t of study.trials) {
      if (t.state === 'failed' || t.state === 'pruned') continue;
      const v = scoreAt(t, step);
      if (v !== undefined) population.push({ number: t.number, score: sign * v });
    }
    if (population.length < 2) return null;
    population.sort((a, b) => a.score - b.score || a.number - b.number);
    const k = Math.max(1, Math.floor(this.#quantile * population.length));
    const top = population.slice(0, k);
    const bottom = population.slice(population.length - k);
    if (!bottom.some((p) => p.number === number) || top.some((p) => p.number === number)) return null;
    const rng = new Rng(study.seed, 'pbt', number, step);
    const donor = top[rng.int(top.length)].number;
    const params = explore(study.space, study.trial(donor).params, rng, this.#factors, this.#resample);
    study.recordPbt(number, step, donor, params);
    return { exploit: donor, params };
  }

  /** Each (step, donor, params) the trial went through, oldest first. */
  lineage(number: number): readonly LineageEntry[] {
    return this.#study.lineage(number);
  }
}

export function createPbt(study: Study, options: PbtOptions): PbtScheduler {
  return new PbtScheduler(study, options);
}
