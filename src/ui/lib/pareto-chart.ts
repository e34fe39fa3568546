// The Pareto front chart of a two-objective study: every complete trial as a point (first objective across,
// second up), the front highlighted and joined in order of the first objective, infeasible trials apart, and
// the trial chosen for export marked. Each point carries its trial number, which a click reads back.
import type { TrialRecord } from '../../engine/search/index.ts';
import { isFeasible } from '../../engine/search/index.ts';
import { OBJECTIVE_METRICS, type ObjectiveMetric } from '../../engine/tune/objectives.ts';
import type { Palette } from './chart-options.ts';
import { formatNumber } from './chart-options.ts';
import type { ChartOption } from './charts.ts';

/** A point: [first objective, second objective, trial number]. */
type Point = [number, number, number];

const pointOf = (t: TrialRecord): Point => [t.values![0], t.values![1], t.number];

/** The axis title of an objective: what it is with its unit, and which way is better. */
export function objectiveAxisName(metric: ObjectiveMetric | string, direction: string): string {
  const label = OBJECTIVE_METRICS[metric as ObjectiveMetric]?.label ?? metric;
  return `${label}, ${direction === 'minimize' ? 'lower' : 'higher'} is better`;
}

export interface ParetoChartInput {
  trials: readonly TrialRecord[];
  front: readonly TrialRecord[];
  /** The trial chosen for export, or null. */
  picked: number | null;
  /** The first two objectives' metric names and directions. */
  objectives: readonly { metric: string; direction: string }[];
}

export function paretoChart(input: ParetoChartInput, p: Palette): ChartOption {
  const { trials, front, picked, objectives } = input;
  const onFront = new Set(front.map((t) => t.number));
  const complete = trials.filter((t) => t.state === 'complete' && (t.values?.length ?? 0) >= 2);
  const frontPoints = front.map(pointOf).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const axis = (i: number) => ({
    type: 'value' as const,
    name: objectiveAxisName(objectives[i].metric, objectives[i].direction),
    nameLocation: 'middle' as const,
    nameGap: i === 0 ? 26 : 48,
    scale: true,
    axisLine: { lineStyle: { color: p.muted } },
    axisLabel: { color: p.muted, formatter: (v: number) => formatNumber(v) },
    splitLine: { lineStyle: { color: p.grid } },
    nameTextStyle: { color: p.muted },
  });
  const chosen = complete.find((t) => t.number === picked);
  return {
    animation: false,
    textStyle: { color: p.text },
    legend: { top: 0, textStyle: { color: p.text } },
    tooltip: {
      trigger: 'item',
      formatter: (item: { data: Point; seriesName: string }) =>
        `trial ${item.data[2]} (${item.seriesName}): ${formatNumber(item.data[0])}, ${formatNumber(item.data[1])}`,
    },
    grid: { left: 72, right: 16, top: 36, bottom: 44 },
    xAxis: axis(0),
    yAxis: axis(1),
    series: [
      {
        name: 'other trials',
        type: 'scatter',
        symbolSize: 8,
        color: p.pruned,
        data: complete.filter((t) => !onFront.has(t.number) && isFeasible(t)).map(pointOf),
      },
      {
        name: 'infeasible',
        type: 'scatter',
        symbol: 'triangle',
        symbolSize: 8,
        color: p.muted,
        data: complete.filter((t) => !isFeasible(t)).map(pointOf),
      },
      {
        name: 'Pareto front',
        type: 'line',
        step: false,
        symbol: 'circle',
        symbolSize: 11,
        color: p.accent,
        data: frontPoints,
      },
      {
        name: 'chosen for export',
        type: 'scatter',
        symbol: 'diamond',
        symbolSize: 18,
        color: p.best,
        data: chosen ? [pointOf(chosen)] : [],
      },
    ],
  };
}

/** The trial number of a clicked point, when it is on the front (clicks elsewhere choose nothing). */
export function clickedFrontTrial(data: unknown, front: readonly TrialRecord[]): number | null {
  if (!Array.isArray(data) || typeof data[2] !== 'number') return null;
  const number = data[2];
  return front.some((t) => t.number === number) ? number : null;
}
