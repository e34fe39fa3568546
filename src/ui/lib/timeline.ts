// The timeline: every run of every trial as a bar over wall-clock time, one row per pool worker, coloured by how
// the run ended. It shows idle workers, a pause, and which trials ran side by side.
import type { TrialRecord } from '../../engine/search/index.ts';
import { axisStyle, base, legend, tooltipLines, xAxis, type Palette } from './chart-options.ts';
import type { ChartOption } from './charts.ts';
import { formatDuration } from './format.ts';
import type { TrialHistory, TrialSpan } from './trial-history.ts';
import { trialStatus, type TrialStatus } from './trial-table.ts';

export interface TimelineBar {
  trial: number;
  slot: number;
  /** Seconds since the first run started. */
  start: number;
  end: number;
  /** How this run ended: a paused run is 'paused' even when the trial later completed. */
  status: TrialStatus;
  fromStep: number;
  toStep: number | null;
}

export interface Timeline {
  bars: TimelineBar[];
  /** Rows: the highest worker slot seen + 1. */
  workers: number;
  /** Runs with no recorded end and not running now (the page closed during them): not drawn. */
  unfinished: number;
}

function endedAs(t: TrialRecord, ended: TrialSpan['ended']): TrialStatus {
  switch (ended) {
    case 'paused':
    case 'pruned':
      return ended;
    case 'complete':
      return trialStatus(t, false); // complete, or infeasible
    default:
      return 'failed';
  }
}

/**
 * The bars of the runs in `history`. A run still going (the trial running in this session) ends at `now`; pass
 * null when nothing runs, and runs without an end are counted in `unfinished` instead.
 */
export function timelineBars(
  trials: readonly TrialRecord[],
  history: TrialHistory,
  now: number | null,
): Timeline {
  const runs = trials.flatMap((t) => (history[t.number] ?? []).map((s) => ({ t, s })));
  if (runs.length === 0) return { bars: [], workers: 0, unfinished: 0 };
  const origin = Math.min(...runs.map(({ s }) => s.start));
  const bars: TimelineBar[] = [];
  let unfinished = 0;
  for (const { t, s } of runs) {
    const live = s.end === undefined && t.state === 'running' && now !== null;
    if (s.end === undefined && !live) {
      unfinished++;
      continue;
    }
    const status: TrialStatus = live ? 'running' : endedAs(t, s.ended);
    bars.push({
      trial: t.number,
      slot: s.slot,
      start: (s.start - origin) / 1000,
      end: ((s.end ?? now ?? s.start) - origin) / 1000,
      status,
      fromStep: s.fromStep,
      toStep: s.toStep ?? null,
    });
  }
  const workers = bars.length === 0 ? 0 : Math.max(...bars.map((b) => b.slot)) + 1;
  return { bars, workers, unfinished };
}

/** A colour per way a run ended, told apart without relying on hue alone (the legend names them). */
export const STATUS_COLORS = (p: Palette): Record<TrialStatus, string> => ({
  complete: p.accent,
  infeasible: '#e69f00',
  pruned: p.pruned,
  failed: '#c0392b',
  running: '#2a9d8f',
  paused: '#8e6bbf',
});

interface RenderApi {
  value(dim: number): number;
  coord(point: number[]): number[];
  size(point: number[]): number[];
  visual(key: string): string;
}

/** One custom series per status, so the legend names and toggles each. */
export function timelineOption(tl: Timeline, p: Palette): ChartOption {
  const colors = STATUS_COLORS(p);
  const statuses = (Object.keys(colors) as TrialStatus[]).filter((s) => tl.bars.some((b) => b.status === s));
  const workers = Array.from({ length: tl.workers }, (_, i) => `worker ${i + 1}`);
  return {
    ...base(p),
    grid: { left: 72, right: 24, top: 36, bottom: 40 },
    legend: legend(p, statuses),
    tooltip: {
      trigger: 'item' as const,
      formatter: ({ data }: { data?: unknown }) => {
        const [start, slot, end, trial] = data as number[];
        const bar = tl.bars.find((b) => b.trial === trial && b.slot === slot && b.start === start)!;
        return tooltipLines(`trial ${trial} on worker ${slot + 1}: ${bar.status}`, [
          ['from', formatDuration(start)],
          ['to', formatDuration(end)],
          ['ran', formatDuration(end - start)],
          ['steps', `${bar.fromStep} → ${bar.toStep ?? '…'}`],
        ]);
      },
    },
    xAxis: { ...xAxis(p, 'wall-clock time since the first trial started', 'duration'), min: 0 },
    yAxis: { type: 'category', data: workers, inverse: true, ...axisStyle(p), axisLabel: { color: p.muted } },
    series: statuses.map((status) => ({
      type: 'custom',
      name: status,
      color: colors[status],
      encode: { x: [0, 2], y: 1 },
      renderItem: (_params: unknown, api: RenderApi) => {
        const [x0, y] = api.coord([api.value(0), api.value(1)]);
        const [x1] = api.coord([api.value(2), api.value(1)]);
        const height = api.size([0, 1])[1] * 0.6;
        return {
          type: 'rect',
          // At least 2 px wide, so a run of a moment still shows.
          shape: { x: x0, y: y - height / 2, width: Math.max(2, x1 - x0), height },
          style: { fill: api.visual('color'), stroke: p.text, lineWidth: 0.5 },
        };
      },
      data: tl.bars.filter((b) => b.status === status).map((b) => [b.start, b.slot, b.end, b.trial]),
    })),
  };
}
