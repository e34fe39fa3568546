// Does the small model rank configurations as the large one does? Kendall's τ-b between the two models'
// objective values over the same configurations (ties in either counted as τ-b does), and whether the small
// model's best configuration is the large model's best, or within x % of it.
import type { TransferEvent } from '../search/events.ts';
import type { Direction } from '../search/types.ts';

/**
 * Kendall's τ-b: (concordant − discordant) / √((n0 − n1)(n0 − n2)), n0 = n(n−1)/2 pairs, n1 and n2 the pairs
 * tied in x and in y. NaN when either list is constant (or has fewer than two values). O(n²): k is small.
 */
export function kendallTauB(x: readonly number[], y: readonly number[]): number {
  if (x.length !== y.length)
    throw new RangeError(`kendallTauB: ${x.length} x values but ${y.length} y values`);
  let concordant = 0;
  let discordant = 0;
  let tiedX = 0;
  let tiedY = 0;
  for (let i = 0; i < x.length; i++)
    for (let j = i + 1; j < x.length; j++) {
      const dx = Math.sign(x[i] - x[j]);
      const dy = Math.sign(y[i] - y[j]);
      if (dx === 0) tiedX++;
      if (dy === 0) tiedY++;
      if (dx !== 0 && dy !== 0) {
        if (dx === dy) concordant++;
        else discordant++;
      }
    }
  const pairs = (x.length * (x.length - 1)) / 2;
  const denominator = Math.sqrt((pairs - tiedX) * (pairs - tiedY));
  return denominator === 0 ? NaN : (concordant - discordant) / denominator;
}

export interface TransferPoint {
  /** The study's trial number. */
  number: number;
  /** Its objective on the small model (the study's value). */
  small: number;
  /** Its objective re-run on the large model; NaN when that run failed. */
  large: number;
}

export interface Agreement {
  /** τ-b over the points the large model scored (NaN with fewer than two). */
  tau: number;
  /** Trial number of the small model's best, and of the large model's best among the points. */
  smallBest: number;
  largeBest: number;
  /** How much worse the small model's best is on the large model than the large model's best, in %. */
  gapPercent: number;
  /** gapPercent ≤ withinPercent. */
  within: boolean;
  withinPercent: number;
  /** Points whose large-model run failed (left out of τ). */
  failed: number[];
}

/** The rank agreement of `points` (at least one scored on the large model) for an objective's direction. */
export function agreement(
  points: readonly TransferPoint[],
  direction: Direction,
  withinPercent: number,
): Agreement {
  const scored = points.filter((p) => Number.isFinite(p.large));
  if (scored.length === 0) throw new RangeError('agreement: no configuration was scored on the large model');
  if (!(withinPercent >= 0))
    throw new RangeError(`agreement: withinPercent must be ≥ 0, got ${withinPercent}`);
  const better = (a: number, b: number): boolean => (direction === 'minimize' ? a < b : a > b);
  const bestBy = (value: (p: TransferPoint) => number): TransferPoint =>
    scored.reduce((best, p) => (better(value(p), value(best)) ? p : best));
  const smallBest = bestBy((p) => p.small);
  const largeBest = bestBy((p) => p.large);
  const gap = Math.abs(smallBest.large - largeBest.large);
  const gapPercent =
    largeBest.large === 0 ? (gap === 0 ? 0 : Infinity) : (100 * gap) / Math.abs(largeBest.large);
  return {
    tau: kendallTauB(
      scored.map((p) => p.small),
      scored.map((p) => p.large),
    ),
    smallBest: smallBest.number,
    largeBest: largeBest.number,
    gapPercent,
    within: gapPercent <= withinPercent,
    withinPercent,
    failed: points.filter((p) => !Number.isFinite(p.large)).map((p) => p.number),
  };
}

/** The study-log record of a transfer check on `model` (a path, id or label) of `params` parameters. */
export function transferEvent(
  model: string,
  params: number,
  points: readonly TransferPoint[],
  result: Agreement,
): TransferEvent {
  return {
    type: 'transfer',
    model,
    params,
    results: points.map((p) => ({
      number: p.number,
      small: p.small,
      large: Number.isFinite(p.large) ? p.large : null,
    })),
    tau: Number.isFinite(result.tau) ? result.tau : null,
    smallBest: result.smallBest,
    largeBest: result.largeBest,
    gapPercent: result.gapPercent,
    withinPercent: result.withinPercent,
  };
}
