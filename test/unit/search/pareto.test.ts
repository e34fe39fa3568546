import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  crowdingDistance,
  dominates,
  greedyHypervolumeSubset,
  hypervolume,
  hypervolumeContributions,
  nonDominatedRanks,
  paretoFront,
  referencePoint,
} from '../../../src/engine/search/pareto.ts';

/** Fronts peeled one by one: the points no remaining point dominates get the next rank. */
function bruteRanks(points: number[][]): number[] {
  const ranks = new Array<number>(points.length).fill(-1);
  for (let rank = 0; ranks.includes(-1); rank++) {
    const left = points.map((_, i) => i).filter((i) => ranks[i] === -1);
    const front = left.filter((i) => !left.some((j) => dominates(points[j], points[i])));
    for (const i of front) ranks[i] = rank;
  }
  return ranks;
}

/** Integer points in [0, side): the dominated volume as a count of the unit cells some point is below. */
function bruteHypervolume(points: number[][], side: number, d: number): number {
  let count = 0;
  const cell = new Array<number>(d).fill(0);
  const total = side ** d;
  for (let c = 0; c < total; c++) {
    for (let k = 0, r = c; k < d; k++, r = Math.floor(r / side)) cell[k] = r % side;
    if (points.some((p) => p.every((v, k) => v <= cell[k]))) count++;
  }
  return count;
}

const integerPoints = (d: number, max: number) =>
  fc.array(fc.array(fc.integer({ min: 0, max }), { minLength: d, maxLength: d }), { maxLength: 12 });

describe('pareto utilities', () => {
  it('non-dominated ranks agree with peeling the fronts one by one', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 4 }).chain((d) => integerPoints(d, 4)),
        (points) => {
          expect(nonDominatedRanks(points)).toEqual(bruteRanks(points));
          expect(paretoFront(points)).toEqual(bruteRanks(points).flatMap((r, i) => (r === 0 ? [i] : [])));
        },
      ),
      { numRuns: 200 },
    );
  });

  it.each([2, 3, 4])('hypervolume in %i-D equals the count of dominated unit cells', (d) => {
    const side = 6;
    fc.assert(
      fc.property(integerPoints(d, side), (points) => {
        const reference = new Array<number>(d).fill(side);
        expect(hypervolume(points, reference)).toBeCloseTo(bruteHypervolume(points, side, d), 9);
      }),
      { numRuns: d === 4 ? 60 : 150 },
    );
  });

  it('ignores points outside the reference box and is exact on real-valued points', () => {
    // Two rectangles (1×3 and 3×1 from the reference) overlapping in a 1×1 square: 3 + 3 − 1.
    expect(
      hypervolume(
        [
          [2, 0],
          [0, 2],
        ],
        [3, 3],
      ),
    ).toBeCloseTo(5, 12);
    expect(
      hypervolume(
        [
          [2, 0],
          [0, 2],
          [5, -1],
        ],
        [3, 3],
      ),
    ).toBeCloseTo(5, 12);
    expect(hypervolume([[0.5, 0.25, 0.1]], [1, 1, 1])).toBeCloseTo(0.5 * 0.75 * 0.9, 12);
  });

  it('contributions are what removing each point loses (zero off the front)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 3 }).chain((d) => integerPoints(d, 5)),
        (points) => {
          const d = points[0]?.length ?? 2;
          const reference = new Array<number>(d).fill(6);
          const contributions = hypervolumeContributions(points, reference);
          const ranks = nonDominatedRanks(points);
          points.forEach((_, i) => {
            const without = points.filter((__, j) => j !== i);
            expect(contributions[i]).toBeCloseTo(
              bruteHypervolume(points, 6, d) - bruteHypervolume(without, 6, d),
              9,
            );
            if (ranks[i] > 0) expect(contributions[i]).toBeCloseTo(0, 12);
          });
        },
      ),
      { numRuns: 100 },
    );
  });

  it('greedy subset selection takes the largest single box first, then the largest gain', () => {
    const points = [
      [0, 4],
      [1, 1],
      [4, 0],
      [2, 2],
    ];
    // Boxes to (5, 5): 5, 16, 5, 9. Then, next to [1, 1], [0, 4] adds 1·1 and [4, 0] adds 1·1 (the tie goes
    // to the lower index) while [2, 2] adds nothing.
    expect(greedyHypervolumeSubset(points, 2, [5, 5])).toEqual([1, 0]);
    fc.assert(
      fc.property(integerPoints(2, 5), fc.integer({ min: 0, max: 12 }), (pts, size) => {
        const picked = greedyHypervolumeSubset(pts, size, [6, 6]);
        expect(picked.length).toBe(Math.min(size, pts.length));
        expect(new Set(picked).size).toBe(picked.length);
      }),
    );
  });

  it('crowding distance: infinite at the extremes, neighbour gaps over the range inside', () => {
    const d = crowdingDistance([
      [0, 4],
      [1, 2],
      [3, 1],
      [4, 0],
    ]);
    expect(d[0]).toBe(Infinity);
    expect(d[3]).toBe(Infinity);
    expect(d[1]).toBeCloseTo((3 - 0) / 4 + (4 - 1) / 4, 12);
    expect(d[2]).toBeCloseTo((4 - 1) / 4 + (2 - 0) / 4, 12);
  });

  it("reference point is Optuna's: 1.1 × the worst, 0.9 × a negative worst, EPS for 0", () => {
    expect(
      referencePoint([
        [1, -2, 0],
        [3, -4, 0],
      ]),
    ).toEqual([3.3000000000000003, -1.8, 1e-12]);
  });
});
