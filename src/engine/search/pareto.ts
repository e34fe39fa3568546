// Pareto utilities over objective vectors in minimisation form (a maximised objective negated first):
// dominance, non-dominated sorting (Deb's fast sort), crowding distance, exact hypervolume (a sweep in 2-D,
// recursive slicing on the last objective beyond: exact and fine for the few dozen points of a study) and
// greedy hypervolume subset selection (Optuna's HSSP tie-break of MOTPE's split).

/** a dominates b: no worse in every objective and better in one. */
export function dominates(a: readonly number[], b: readonly number[]): boolean {
  let better = false;
  for (let i = 0; i < a.length; i++) {
    if (a[i] > b[i]) return false;
    if (a[i] < b[i]) better = true;
  }
  return better;
}

/** Non-domination rank of each point: 0 for the Pareto front, 1 for the front once it is removed, … */
export function nonDominatedRanks(points: readonly (readonly number[])[]): number[] {
  const n = points.length;
  const dominatedBy = new Array<number>(n).fill(0); // how many points dominate i
  const dominating: number[][] = points.map(() => []);
  for (let i = 0; i < n; i++)
    for (let j = i + 1; j < n; j++) {
      if (dominates(points[i], points[j])) {
        dominating[i].push(j);
        dominatedBy[j]++;
      } else if (dominates(points[j], points[i])) {
        dominating[j].push(i);
        dominatedBy[i]++;
      }
    }
  const ranks = new Array<number>(n).fill(-1);
  let front = points.map((_, i) => i).filter((i) => dominatedBy[i] === 0);
  for (let rank = 0; front.length > 0; rank++) {
    const next: number[] = [];
    for (const i of front) {
      ranks[i] = rank;
      for (const j of dominating[i]) if (--dominatedBy[j] === 0) next.push(j);
    }
    front = next;
  }
  return ranks;
}

/** Indices of the non-dominated points (ascending). Duplicates of a front point are all on the front. */
export function paretoFront(points: readonly (readonly number[])[]): number[] {
  return nonDominatedRanks(points).flatMap((r, i) => (r === 0 ? [i] : []));
}

/**
 * NSGA-II crowding distance of each point within its set: the sum over objectives of the gap between its two
 * neighbours (normalised by the objective's range); the extremes of each objective get Infinity.
 */
export function crowdingDistance(points: readonly (readonly number[])[]): number[] {
  const n = points.length;
  const out = new Array<number>(n).fill(0);
  if (n === 0) return out;
  for (let k = 0; k < points[0].length; k++) {
    const order = points.map((_, i) => i).sort((a, b) => points[a][k] - points[b][k] || a - b);
    const lo = points[order[0]][k];
    const range = points[order[n - 1]][k] - lo;
    out[order[0]] = Infinity;
    out[order[n - 1]] = Infinity;
    if (range <= 0) continue;
    for (let r = 1; r < n - 1; r++)
      out[order[r]] += (points[order[r + 1]][k] - points[order[r - 1]][k]) / range;
  }
  return out;
}

/**
 * Volume dominated by `points` and bounded by `reference` (each point counts only where it is below the
 * reference in every objective). Exact: a sweep in 2-D, slices along the last objective beyond.
 */
export function hypervolume(points: readonly (readonly number[])[], reference: readonly number[]): number {
  const d = reference.length;
  const inside = points.filter((p) => p.length === d && p.every((v, k) => v < reference[k]));
  if (inside.length === 0) return 0;
  if (d === 1) return reference[0] - Math.min(...inside.map((p) => p[0]));
  if (d === 2) return hypervolume2d(inside, reference);
  // Slab between consecutive last coordinates: the (d−1)-volume of the points at or below it.
  const sorted = [...inside].sort((a, b) => a[d - 1] - b[d - 1]);
  const ref = reference.slice(0, d - 1);
  let volume = 0;
  for (let i = 0; i < sorted.length; i++) {
    const top = i + 1 < sorted.length ? sorted[i + 1][d - 1] : reference[d - 1];
    const height = top - sorted[i][d - 1];
    if (height > 0)
      volume +=
        height *
        hypervolume(
          sorted.slice(0, i + 1).map((p) => p.slice(0, d - 1)),
          ref,
        );
  }
  return volume;
}

function hypervolume2d(points: readonly (readonly number[])[], reference: readonly number[]): number {
  const sorted = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let volume = 0;
  let ceiling = reference[1]; // the lowest second objective seen so far
  for (const p of sorted) {
    if (p[1] >= ceiling) continue;
    volume += (reference[0] - p[0]) * (ceiling - p[1]);
    ceiling = p[1];
  }
  return volume;
}

/** How much each point adds to the hypervolume of the others (0 for a dominated or duplicated point). */
export function hypervolumeContributions(
  points: readonly (readonly number[])[],
  reference: readonly number[],
): number[] {
  const total = hypervolume(points, reference);
  return points.map(
    (_, i) => total - hypervolume([...points.slice(0, i), ...points.slice(i + 1)], reference),
  );
}

/**
 * Optuna's reference point for a set of loss vectors: 1.1 × the worst of each objective on the far side of
 * 0 (0.9 × when it is negative), a tiny positive value where that is 0.
 */
export function referencePoint(points: readonly (readonly number[])[]): number[] {
  const d = points[0].length;
  const out: number[] = [];
  for (let k = 0; k < d; k++) {
    const worst = Math.max(...points.map((p) => p[k]));
    const r = Math.max(1.1 * worst, 0.9 * worst);
    out.push(r === 0 ? 1e-12 : r);
  }
  return out;
}

/**
 * `size` of the points (given by index) chosen greedily, each adding the most hypervolume to those already
 * chosen; ties go to the lower index. Optuna's greedy hypervolume subset selection.
 */
export function greedyHypervolumeSubset(
  points: readonly (readonly number[])[],
  size: number,
  reference: readonly number[],
): number[] {
  const chosen: number[] = [];
  const left = points.map((_, i) => i);
  let base = 0;
  while (chosen.length < size && left.length > 0) {
    let bestAt = 0;
    let bestGain = -Infinity;
    left.forEach((i, at) => {
      const gain = hypervolume([...chosen.map((c) => points[c]), points[i]], reference) - base;
      if (gain > bestGain) [bestAt, bestGain] = [at, gain];
    });
    const [pick] = left.splice(bestAt, 1);
    chosen.push(pick);
    base += bestGain;
  }
  return chosen;
}
