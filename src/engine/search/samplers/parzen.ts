// Parzen estimator of Optuna's TPE (multivariate form): a mixture with one product kernel per observation
// plus a prior component. Numeric dimensions use truncated Gaussians in (log-)value space with the
// multivariate bandwidth 0.2·n^(−1/(D+4))·range, magic-clipped to [range/min(100, 1+K), range]; categorical
// ones an Aitchison–Aitken-style kernel (weight 1 on the observed choice plus prior_weight/K everywhere).
import type { Rng } from '../../rng.ts';
import { snapNumeric } from '../space.ts';
import type { Choice, NumericDef, Params, SampledDef } from '../space.ts';
import { logNormCdfDiff, logSumExp } from '../special.ts';

const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const PRIOR_WEIGHT = 1;

type NumericDim = {
  def: NumericDef;
  low: number;
  high: number;
  mus: Float64Array;
  sigmas: Float64Array;
  /** log of each truncated Gaussian's mass inside [low, high]. */
  logZ: Float64Array;
};
type CategoricalDim = { def: SampledDef & { kind: 'categorical' }; logProbs: Float64Array[] };

export class ParzenEstimator {
  readonly #logWeights: Float64Array;
  readonly #weights: Float64Array;
  readonly #numeric: NumericDim[] = [];
  readonly #categorical: CategoricalDim[] = [];
  readonly #k: number;

  /**
   * @param defs parameters modelled jointly (all present in every observation)
   * @param observations parameter sets, oldest first
   * @param obsWeights one weight per observation (Optuna's ramp), the prior gets PRIOR_WEIGHT
   */
  constructor(defs: readonly SampledDef[], observations: readonly Params[], obsWeights: readonly number[]) {
    const n = observations.length;
    const k = n + 1; // kernels incl. the prior
    this.#k = k;
    const w = new Float64Array(k);
    for (let i = 0; i < n; i++) w[i] = obsWeights[i];
    w[n] = PRIOR_WEIGHT;
    const total = w.reduce((a, b) => a + b, 0);
    this.#weights = w.map((v) => v / total);
    this.#logWeights = this.#weights.map(Math.log);
    for (const def of defs) {
      if (def.kind === 'categorical') {
        const c = def.choices.length;
        const rows: Float64Array[] = [];
        for (let i = 0; i < k; i++) {
          const row = new Float64Array(c).fill(i < n ? PRIOR_WEIGHT / k : 1);
          if (i < n) row[def.choices.indexOf(observations[i][def.name])] += 1;
          const s = row.reduce((a, b) => a + b, 0);
          rows.push(row.map((v) => Math.log(v / s)));
        }
        this.#categorical.push({ def, logProbs: rows });
      } else {
        const low = def.encLow;
        const high = def.encHigh;
        const range = high - low;
        const bandwidth = 0.2 * Math.max(n, 1) ** (-1 / (defs.length + 4)) * range;
        const minSigma = range / Math.min(100, 1 + k);
        const mus = new Float64Array(k);
        const sigmas = new Float64Array(k);
        for (let i = 0; i < n; i++) {
          const v = observations[i][def.name] as number;
          mus[i] = def.log ? Math.log(v) : v;
          sigmas[i] = Math.min(range, Math.max(minSigma, bandwidth));
        }
        mus[n] = 0.5 * (low + high);
        sigmas[n] = range;
        const logZ = new Float64Array(k);
        for (let i = 0; i < k; i++)
          logZ[i] = logNormCdfDiff((low - mus[i]) / sigmas[i], (high - mus[i]) / sigmas[i]);
        this.#numeric.push({ def, low, high, mus, sigmas, logZ });
      }
    }
  }

  sample(rng: Rng): Params {
    // Pick a kernel by weight, then draw each dimension from it.
    let u = rng.random();
    let comp = this.#k - 1;
    for (let i = 0; i < this.#k; i++) {
      u -= this.#weights[i];
      if (u < 0) {
        comp = i;
        break;
      }
    }
    const out: Params = {};
    for (const dim of this.#numeric) {
      const mu = dim.mus[comp];
      const sigma = dim.sigmas[comp];
      let x = NaN;
      for (let tries = 0; tries < 64; tries++) {
        const t = mu + sigma * rng.normal();
        if (t >= dim.low && t <= dim.high) {
          x = t;
          break;
        }
      }
      if (Number.isNaN(x)) x = rng.uniform(dim.low, dim.high);
      out[dim.def.name] = snapNumeric(dim.def, dim.def.log ? Math.exp(x) : x);
    }
    for (const dim of this.#categorical) {
      const row = dim.logProbs[comp];
      let r = rng.random();
      let pick = row.length - 1;
      for (let c = 0; c < row.length; c++) {
        r -= Math.exp(row[c]);
        if (r < 0) {
          pick = c;
          break;
        }
      }
      out[dim.def.name] = dim.def.choices[pick];
    }
    return out;
  }

  logPdf(params: Params): number {
    const terms = Float64Array.from(this.#logWeights);
    for (const dim of this.#numeric) {
      const v = params[dim.def.name] as number;
      const x = dim.def.log ? Math.log(v) : v;
      const step = dim.def.log ? 0 : dim.def.step;
      for (let i = 0; i < this.#k; i++) {
        const mu = dim.mus[i];
        const s = dim.sigmas[i];
        if (step > 0) {
          // Probability mass of the grid cell around x.
          const a = Math.max(dim.low, x - step / 2);
          const b = Math.min(dim.high, x + step / 2);
          terms[i] += logNormCdfDiff((a - mu) / s, (b - mu) / s) - dim.logZ[i];
        } else {
          const z = (x - mu) / s;
          terms[i] += -0.5 * z * z - LOG_SQRT_2PI - Math.log(s) - dim.logZ[i];
        }
      }
    }
    for (const dim of this.#categorical) {
      const c = dim.def.choices.indexOf(params[dim.def.name] as Choice);
      for (let i = 0; i < this.#k; i++) terms[i] += dim.logProbs[i][c];
    }
    return logSumExp(terms);
  }
}

/** Optuna's default_weights: flat for the 25 most recent observations, a linear ramp before them. */
export function defaultWeights(n: number): number[] {
  if (n < 25) return new Array<number>(n).fill(1);
  const ramp = n - 25;
  const out: number[] = [];
  for (let i = 0; i < ramp; i++) out.push(ramp === 1 ? 1 / n : 1 / n + ((1 - 1 / n) * i) / (ramp - 1));
  for (let i = 0; i < 25; i++) out.push(1);
  return out;
}
