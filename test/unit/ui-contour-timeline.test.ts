// The contour's grid (interpolated between the trials, exact at them, on log and categorical axes) and the
// timeline's bars (one per run, per worker, by how each run ended).
import { describe, expect, it } from 'vitest';
import { createSpace, type TrialRecord } from '../../src/engine/search/index.ts';
import { contourGrid, contourOption, idw, type ContourGrid } from '../../src/ui/lib/contour.ts';
import { timelineBars, timelineOption } from '../../src/ui/lib/timeline.ts';
import type { TrialHistory } from '../../src/ui/lib/trial-history.ts';

const P = { text: '#000', muted: '#666', accent: '#00f', grid: '#eee', pruned: '#999', best: '#f00' };
const record = (t: Partial<TrialRecord> & { number: number }): TrialRecord => ({
  params: {},
  state: 'complete',
  value: undefined,
  intermediate: [],
  system: {},
  ...t,
});

const SPACE = createSpace({
  lr: { type: 'float', low: 1e-4, high: 1e-2, log: true },
  r: { type: 'int', low: 0, high: 10 },
  schedule: { type: 'categorical', choices: ['cosine', 'linear', 'constant'] },
});
const TRIALS = [
  record({ number: 0, params: { lr: 1e-4, r: 0, schedule: 'cosine' }, value: 1 }),
  record({ number: 1, params: { lr: 1e-2, r: 10, schedule: 'linear' }, value: 3 }),
  record({ number: 2, params: { lr: 1e-3, r: 5, schedule: 'constant' }, value: 2 }),
  record({ number: 3, params: { lr: 1e-3, r: 2, schedule: 'linear' }, state: 'pruned' }),
];

describe('the contour grid', () => {
  it('is exact at a trial and a weighted mean between trials', () => {
    const pts = [
      { u: 0, v: 0, value: 1 },
      { u: 1, v: 0, value: 3 },
    ];
    expect(idw(pts, 0, 0)).toBe(1);
    expect(idw(pts, 0.5, 0)).toBeCloseTo(2, 12);
    // A quarter of the way: weights 1/0.25² and 1/0.75², so (16·1 + 16/9·3) / (16 + 16/9) = 1.2.
    expect(idw(pts, 0.25, 0)).toBeCloseTo(1.2, 12);
    const mid = idw(pts, 0.3, 0.7);
    expect(mid).toBeGreaterThan(1);
    expect(mid).toBeLessThan(3);
  });

  it('covers the space on a log axis, cell edges in the parameter’s values, from complete trials only', () => {
    const g = contourGrid(SPACE, TRIALS, 'lr', 'r', 4) as ContourGrid;
    expect(g.cells).toHaveLength(16);
    const xEdges = [...new Set(g.cells.map((c) => c[0]))].sort((a, b) => a - b);
    // Log axis: edges at 1e-4 · 100^(i/4).
    xEdges.forEach((x, i) => expect(x).toBeCloseTo(1e-4 * 100 ** (i / 4), 12));
    expect(Math.max(...g.cells.map((c) => c[3]))).toBeCloseTo(1e-2, 12);
    expect(Math.max(...g.cells.map((c) => c[4]))).toBeCloseTo(10, 12);
    expect(g.points.map((p) => p.trial)).toEqual([0, 1, 2]);
    expect(g.points[0]).toMatchObject({ x: 1e-4, y: 0, value: 1 });
    expect([g.min, g.max]).toEqual([1, 3]);
    // Every interpolated value lies within the trials' range.
    for (const c of g.cells) {
      expect(c[2]).toBeGreaterThanOrEqual(1);
      expect(c[2]).toBeLessThanOrEqual(3);
    }
    // The cell nearest trial 0's corner is closer to its value than to trial 1's.
    const corner = g.cells.find((c) => c[0] === xEdges[0] && c[1] === 0)!;
    expect(corner[2]).toBeLessThan(2);
  });

  it('gives a categorical axis one cell per choice, centred on the choice’s index', () => {
    const g = contourGrid(SPACE, TRIALS, 'schedule', 'r', 5) as ContourGrid;
    expect(g.cells).toHaveLength(15);
    expect([...new Set(g.cells.map((c) => c[0]))].sort()).toEqual([-0.5, 0.5, 1.5]);
    expect(g.points.map((p) => p.x)).toEqual([0, 1, 2]);
  });

  it('says why there is no contour', () => {
    expect(contourGrid(SPACE, TRIALS.slice(0, 2), 'lr', 'r')).toMatch(/at least 3 complete trials .* has 2/);
    expect(contourGrid(SPACE, TRIALS, 'lr', 'lr')).toBe('Choose two different parameters.');
    expect(contourGrid(SPACE, TRIALS, 'lr', 'alpha')).toBe('alpha is not a searched parameter.');
  });

  it('colours blue for better: the scale is reversed for a maximised objective', () => {
    const g = contourGrid(SPACE, TRIALS, 'lr', 'r', 3) as ContourGrid;
    type VM = { visualMap: { inRange: { color: string[] }; text: string[] } };
    const min = contourOption(g, 'minimize', 0, P) as VM;
    const max = contourOption(g, 'maximize', 0, P) as VM;
    expect(min.visualMap.inRange.color[0]).toBe(max.visualMap.inRange.color.at(-1));
    expect(min.visualMap.text).toEqual(['higher (worse)', 'lower (better)']);
  });
});

describe('the timeline', () => {
  const trials = [
    record({ number: 0, value: 1 }),
    record({ number: 1, state: 'pruned' }),
    record({ number: 2, value: 2, constraints: [1] }),
    record({ number: 3, state: 'running' }),
    record({ number: 4, state: 'failed' }),
  ];
  const history: TrialHistory = {
    0: [{ slot: 0, start: 10_000, end: 40_000, fromStep: 0, toStep: 40, ended: 'complete' }],
    1: [{ slot: 1, start: 12_000, end: 20_000, fromStep: 0, toStep: 10, ended: 'pruned' }],
    2: [
      { slot: 1, start: 21_000, end: 30_000, fromStep: 0, toStep: 20, ended: 'paused' },
      { slot: 0, start: 90_000, end: 100_000, fromStep: 20, toStep: 40, ended: 'complete' },
    ],
    3: [{ slot: 1, start: 95_000, fromStep: 0 }],
    4: [{ slot: 2, start: 96_000, end: 97_000, fromStep: 0, toStep: 1, ended: 'failed', reason: 'x' }],
  };

  it('draws one bar per run from the first start, coloured by how the run ended', () => {
    const tl = timelineBars(trials, history, 101_000);
    expect(tl.workers).toBe(3);
    expect(tl.unfinished).toBe(0);
    expect(tl.bars.map((b) => [b.trial, b.slot, b.start, b.end, b.status])).toEqual([
      [0, 0, 0, 30, 'complete'],
      [1, 1, 2, 10, 'pruned'],
      [2, 1, 11, 20, 'paused'],
      [2, 0, 80, 90, 'infeasible'],
      [3, 1, 85, 91, 'running'],
      [4, 2, 86, 87, 'failed'],
    ]);
  });

  it('leaves out a run with no end when nothing runs now, and counts it', () => {
    const tl = timelineBars(trials, history, null);
    expect(tl.bars.map((b) => b.trial)).toEqual([0, 1, 2, 2, 4]);
    expect(tl.unfinished).toBe(1);
  });

  it('has a series (and legend entry) per status present, a row per worker', () => {
    const o = timelineOption(timelineBars(trials, history, 101_000), P) as {
      legend: { data: string[] };
      yAxis: { data: string[] };
      series: { name: string; data: number[][] }[];
      tooltip: { formatter: (p: unknown) => string };
    };
    expect(o.legend.data).toEqual(['complete', 'infeasible', 'pruned', 'failed', 'running', 'paused']);
    expect(o.yAxis.data).toEqual(['worker 1', 'worker 2', 'worker 3']);
    expect(o.series.find((s) => s.name === 'paused')!.data).toEqual([[11, 1, 20, 2]]);
    expect(o.tooltip.formatter({ data: [80, 0, 90, 2] })).toBe(
      'trial 2 on worker 1: infeasible<br/>from: 1 min 20 s<br/>to: 1 min 30 s<br/>ran: 10 s<br/>steps: 20 → 40',
    );
  });

  it('is empty for a study with no recorded runs (an imported log)', () => {
    expect(timelineBars(trials, {}, null)).toEqual({ bars: [], workers: 0, unfinished: 0 });
  });
});
