// Chart options built from trial records: plain functions, no DOM, so components stay small.
import type { Choice, SearchSpace, TrialRecord } from '../../engine/search/index.ts';
import type { ChartOption } from './charts.ts';

export interface Palette {
  text: string;
  muted: string;
  accent: string;
  grid: string;
  pruned: string;
  best: string;
}

const axisStyle = (p: Palette) => ({
  axisLine: { lineStyle: { color: p.muted } },
  axisLabel: { color: p.muted },
  splitLine: { lineStyle: { color: p.grid } },
  nameTextStyle: { color: p.muted },
});

/** A number as the charts show it: whole numbers (steps, trial numbers, ranks) as they are, others to 3 significant digits. */
export function formatNumber(v: unknown): string {
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
  const abs = Math.abs(v);
  return abs >= 1e-3 && abs < 1e5 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}

/** A tooltip's value: one number, or a point's coordinates. */
export const formatTooltipValue = (v: unknown): string =>
  Array.isArray(v) ? v.map(formatNumber).join(', ') : formatNumber(v);

const base = (p: Palette) => ({
  animation: false,
  textStyle: { color: p.text },
  tooltip: { trigger: 'item' as const, valueFormatter: formatTooltipValue },
  grid: { left: 56, right: 16, top: 24, bottom: 40 },
});

const SERIES_COLORS = [
  '#5470c6',
  '#91cc75',
  '#fac858',
  '#ee6666',
  '#73c0de',
  '#3ba272',
  '#fc8452',
  '#9a60b4',
];

/** Loss curves of all trials overlaid: the best thick in the accent colour, pruned and failed grey. */
/**
 * One line per trial: the training loss at every step where the run recorded it (`curves`), else (an imported
 * log) the objective at each evaluation.
 */
export function lossCurves(
  trials: readonly TrialRecord[],
  curves: Readonly<Record<number, readonly (readonly [number, number])[]>>,
  best: number | null,
  p: Palette,
): ChartOption {
  const training = Object.keys(curves).length > 0;
  return {
    ...base(p),
    tooltip: { trigger: 'axis' as const, valueFormatter: formatTooltipValue },
    xAxis: {
      type: 'value',
      name: 'step',
      nameLocation: 'middle',
      nameGap: 26,
      minInterval: 1,
      ...axisStyle(p),
    },
    yAxis: { type: 'value', name: training ? 'training loss' : 'objective', scale: true, ...axisStyle(p) },
    series: trials.map((t) => {
      const grey = t.state === 'pruned' || t.state === 'failed';
      const isBest = t.number === best;
      const points = training ? (curves[t.number] ?? []) : t.intermediate;
      return {
        type: 'line',
        name: `trial ${t.number}${grey ? ` (${t.state})` : ''}`,
        data: points.map(([s, v]) => [s, Number.isFinite(v) ? v : null]),
        showSymbol: points.length < 30,
        symbolSize: 4,
        z: isBest ? 10 : grey ? 1 : 5,
        lineStyle: { width: isBest ? 4 : 1.5, type: grey ? 'dashed' : 'solid' },
        color: isBest ? p.best : grey ? p.pruned : SERIES_COLORS[t.number % SERIES_COLORS.length],
      };
    }),
  };
}

/** Objective per trial in order, with the best-so-far line. */
export function history(
  trials: readonly TrialRecord[],
  direction: 'minimize' | 'maximize',
  p: Palette,
): ChartOption {
  const done = trials.filter((t) => t.state === 'complete');
  let bestSoFar = direction === 'minimize' ? Infinity : -Infinity;
  const line: [number, number][] = [];
  for (const t of done) {
    bestSoFar = direction === 'minimize' ? Math.min(bestSoFar, t.value!) : Math.max(bestSoFar, t.value!);
    line.push([t.number, bestSoFar]);
  }
  return {
    ...base(p),
    legend: { data: ['objective', 'best so far'], textStyle: { color: p.text }, top: 0 },
    xAxis: {
      type: 'value',
      name: 'trial',
      nameLocation: 'middle',
      nameGap: 26,
      minInterval: 1,
      ...axisStyle(p),
    },
    yAxis: { type: 'value', name: 'objective', scale: true, ...axisStyle(p) },
    series: [
      {
        type: 'scatter',
        name: 'objective',
        data: done.map((t) => [t.number, t.value]),
        symbolSize: 10,
        color: p.accent,
      },
      { type: 'line', name: 'best so far', data: line, step: 'end', color: p.best, showSymbol: false },
    ],
  };
}

/**
 * A parameter's value on a plain numeric parallel axis: categorical choices by index, log-scale parameters
 * as log10 (labels turn them back), so every axis is linear and bounded by the space.
 */
function axisValue(def: SearchSpace['sampled'][number], v: Choice | undefined): number | null {
  if (v === undefined) return null;
  if (def.kind === 'categorical') return def.choices.findIndex((c) => c === v);
  if (typeof v !== 'number') return null;
  return def.log ? Math.log10(v) : v;
}

/** One polyline per complete trial through every sampled parameter and the objective. */
export function parallel(
  trials: readonly TrialRecord[],
  space: SearchSpace,
  best: number | null,
  p: Palette,
): ChartOption {
  const dims = space.sampled;
  const done = trials.filter((t) => t.state === 'complete');
  const parallelAxis = [
    ...dims.map((d, i) =>
      d.kind === 'categorical'
        ? {
            dim: i,
            name: d.name,
            type: 'value' as const,
            min: 0,
            max: Math.max(1, d.choices.length - 1),
            interval: 1,
            ...axisStyle(p),
            axisLabel: {
              color: p.muted,
              formatter: (x: number) => (Number.isInteger(x) ? String(d.choices[x] ?? '') : ''),
            },
          }
        : {
            dim: i,
            name: d.name,
            type: 'value' as const,
            min: d.log ? Math.log10(d.low) : d.low,
            max: d.log ? Math.log10(d.high) : d.high,
            ...axisStyle(p),
            axisLabel: { color: p.muted, formatter: (x: number) => formatNumber(d.log ? 10 ** x : x) },
          },
    ),
    { dim: dims.length, name: 'objective', type: 'value' as const, scale: true, ...axisStyle(p) },
  ];
  return {
    ...base(p),
    parallel: { left: 48, right: 64, top: 36, bottom: 24 },
    parallelAxis,
    series: [
      {
        type: 'parallel',
        lineStyle: { width: 2, opacity: 0.8 },
        data: done.map((t) => ({
          value: [...dims.map((d) => axisValue(d, t.params[d.name])), t.value],
          lineStyle: { color: t.number === best ? p.best : p.accent, width: t.number === best ? 4 : 2 },
        })),
      },
    ],
  };
}

export function importance(values: Record<string, number>, p: Palette): ChartOption {
  const entries = Object.entries(values).sort((a, b) => a[1] - b[1]);
  return {
    ...base(p),
    // Right: room for the bar's label ("0.99") at the full width.
    grid: { left: 110, right: 44, top: 16, bottom: 32 },
    xAxis: { type: 'value', max: 1, ...axisStyle(p) },
    yAxis: { type: 'category', data: entries.map(([k]) => k), ...axisStyle(p) },
    series: [
      {
        type: 'bar',
        data: entries.map(([, v]) => v),
        color: p.accent,
        label: {
          show: true,
          position: 'right',
          color: p.text,
          formatter: (x: { value: number }) => x.value.toFixed(2),
        },
      },
    ],
  };
}

/** Objective against one parameter. */
export function slice(
  trials: readonly TrialRecord[],
  space: SearchSpace,
  param: string,
  p: Palette,
): ChartOption {
  const def = space.sampled.find((d) => d.name === param);
  const done = trials.filter((t) => t.state === 'complete' && t.params[param] !== undefined);
  const categorical = def?.kind === 'categorical';
  return {
    ...base(p),
    // Top: room for the y axis's name under the caption above.
    grid: { left: 56, right: 16, top: 32, bottom: 40 },
    xAxis: categorical
      ? {
          type: 'category',
          name: param,
          nameLocation: 'middle',
          nameGap: 26,
          data: def.choices.map(String),
          ...axisStyle(p),
        }
      : {
          type: def?.log ? 'log' : 'value',
          name: param,
          nameLocation: 'middle',
          nameGap: 26,
          scale: true,
          ...axisStyle(p),
        },
    yAxis: { type: 'value', name: 'objective', scale: true, ...axisStyle(p) },
    series: [
      {
        type: 'scatter',
        symbolSize: 10,
        color: p.accent,
        data: done.map((t) => [categorical ? String(t.params[param]) : t.params[param], t.value]),
      },
    ],
  };
}
