// Asynchronous successive halving (Optuna's SuccessiveHalvingPruner): rung k sits at resource
// minResource·η^(minEarlyStoppingRate + k). When a trial first reports at or past a rung, it continues
// only if its value there is within the top 1/η of every trial that has reached that rung (or, while
// fewer than η trials have, the best of them).
import type { PruneContext, Pruner, TrialRecord } from '../types.ts';
import { minimiseSign } from '../types.ts';

export interface AshaOptions {
  /** Resource (step) of the first rung. Default 1. */
  minResource?: number;
  /** η: keep the top 1/η at each rung. Default 4. */
  reductionFactor?: number;
  minEarlyStoppingRate?: number;
}

/** Index of the first report at or past `resource`, or −1. */
function firstAt(t: TrialRecord, resource: number): number {
  return t.intermediate.findIndex(([s]) => s >= resource);
}

export function createAshaPruner(options: AshaOptions = {}): Pruner {
  const minResource = options.minResource ?? 1;
  const eta = options.reductionFactor ?? 4;
  const rate = options.minEarlyStoppingRate ?? 0;
  if (!(typeof minResource === 'number' && minResource > 0))
    throw new Error(`asha pruner: minResource must be a positive number (got ${minResource})`);
  if (!Number.isInteger(eta) || eta < 2)
    throw new Error(`asha pruner: reductionFactor must be an integer ≥ 2 (got ${eta})`);
  if (!Number.isInteger(rate) || rate < 0)
    throw new Error(`asha pruner: minEarlyStoppingRate must be a non-negative integer (got ${rate})`);
  return {
    name: 'asha',
    prune({ trial, trials, direction }: PruneContext): boolean {
      const iv = trial.intermediate;
      if (iv.length === 0) return false;
      const last = iv.length - 1;
      const step = iv[last][0];
      const sign = minimiseSign(direction);
      for (let rung = 0; ; rung++) {
        const resource = minResource * eta ** (rate + rung);
        if (resource > step) return false;
        if (firstAt(trial, resource) !== last) continue; // this rung was decided at an earlier report
        const value = sign * iv[last][1];
        if (!Number.isFinite(value)) return true;
        const competing = [value];
        for (const t of trials) {
          if (t.number === trial.number) continue;
          const i = firstAt(t, resource);
          if (i >= 0 && Number.isFinite(t.intermediate[i][1])) competing.push(sign * t.intermediate[i][1]);
        }
        competing.sort((a, b) => a - b);
        const idx = Math.max(0, Math.floor(competing.length / eta) - 1);
        if (value > competing[idx]) return true;
      }
    },
  };
}
