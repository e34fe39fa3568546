// Optuna's MedianPruner (PercentilePruner at 50): stop a trial whose best intermediate value so far is
// worse than the median of the completed trials' values at the same step.
import type { PruneContext, Pruner } from '../types.ts';
import { minimiseSign } from '../types.ts';

export interface MedianOptions {
  /** No pruning until this many trials have completed. Default 5. */
  nStartupTrials?: number;
  /** No pruning before this step. Default 0. */
  nWarmupSteps?: number;
  /** Check once per interval of this many steps. Default 1. */
  intervalSteps?: number;
  /** Completed trials that must have reported the step for a comparison. Default 1. */
  nMinTrials?: number;
}

/** Linear-interpolated percentile (numpy's default) of a non-empty list. */
export function percentile(values: readonly number[], q: number): number {
  const s = [...values].sort((a, b) => a - b);
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

export function createMedianPruner(options: MedianOptions = {}): Pruner {
  const nStartup = options.nStartupTrials ?? 5;
  const nWarmup = options.nWarmupSteps ?? 0;
  const interval = options.intervalSteps ?? 1;
  const nMin = options.nMinTrials ?? 1;
  const check = (name: string, v: number, min: number): void => {
    if (!Number.isInteger(v) || v < min)
      throw new Error(`median pruner: ${name} must be an integer ≥ ${min} (got ${v})`);
  };
  check('nStartupTrials', nStartup, 0);
  check('nWarmupSteps', nWarmup, 0);
  check('intervalSteps', interval, 1);
  check('nMinTrials', nMin, 1);
  return {
    name: 'median',
    prune({ trial, trials, direction }: PruneContext): boolean {
      const iv = trial.intermediate;
      if (iv.length === 0) return false;
      const step = iv[iv.length - 1][0];
      const completed = trials.filter((t) => t.state === 'complete' && t.number !== trial.number);
      if (completed.length < nStartup || step < nWarmup) return false;
      // First report within the current interval only (reports need not land on interval multiples).
      const lowerPruningStep = Math.floor((step - nWarmup) / interval) * interval + nWarmup;
      if (iv.slice(0, -1).some(([s]) => s >= lowerPruningStep)) return false;
      const sign = minimiseSign(direction);
      const others: number[] = [];
      for (const t of completed) {
        const hit = t.intermediate.find(([s]) => s === step);
        if (hit && Number.isFinite(hit[1])) others.push(sign * hit[1]);
      }
      if (others.length < nMin) return false;
      let best = Infinity;
      for (const [, v] of iv) if (Number.isFinite(v)) best = Math.min(best, sign * v);
      if (best === Infinity) return true; // only NaNs reported
      return best > percentile(others, 50);
    },
  };
}
