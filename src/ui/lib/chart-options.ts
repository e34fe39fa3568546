// Chart options built from trial records: plain functions, no DOM, so components stay small. Every chart has a
// legend and tooltips that name what they show; values have 3 significant digits, steps and trial numbers are
// whole, durations read in s / min (format.ts).
import type { Choice, SearchSpace, TrialRecord } from '../../engine/search/index.ts';
import type { ChartOption } from './charts.ts';
import { formatDuration, formatNumber } from './format.ts';

export { formatNumber };

export interface Palette {
  text: string;
  muted: string;
  accent: string;
  grid: string;
  pruned: string;
  best: string;
}

export const axisStyle = (p: Palette) => ({
  axisLine: { lineStyle: { color: p.muted } },
  axisLabel: { color: p.muted, formatter: formatNumber },
  splitLine: { lineStyle: { color: p.grid } },
  nameTextStyle: { color: p.muted },
});

/** What a numeric axis counts: values (3 significant digits), whole counts (steps, trials) or seconds. */
export type AxisKind = 'value' | 'count' | 'duration';

/** A horizontal value axis, its name centred under it. */
export const xAxis = (p: Palette, name: string, kind: AxisKind = 'value', log = false) => ({
  type: log ? ('log' as const) : ('value' as const),
  name,
  nameLocation: 'middle' as const,
  nameGap: 26,
  scale: true,
  ...(kind === 'value' ? {} : { minInterval: 1 }),
  ...axisStyle(p),
  axisLabel: {
    color: p.muted,
    formatter: kind === 'duration' ? formatDuration : formatNumber,
    hideOverlap: true, // "1 min 40 s" labels on a phone
  },
});

/** A vertical value axis, its name above it. */
export const yAxis = (p: Palette, name: string, kind: AxisKind = 'value') => ({
  type: 'value' as const,
  name,
  scale: true,
  ...(kind === 'value' ? {} : { minInterval: 1 }),
  ...axisStyle(p),
  axisLabel: { color: p.muted, formatter: kind === 'duration' ? formatDuration : formatNumber },
});

/** A tooltip's value: one number, or a point's coordinates. */
export const formatTooltipValue = (v: unknown): string =>
  Array.isArray(v) ? v.map(formatNumber).join(', ') : formatNumber(v);

/** The legend across the top; it scrolls rather than wrapping over the plot on a narrow screen. */
export const legend = (p: Palette, data?: string[]) => ({
  type: 'scroll' as const,
  top: 0,
  left: 'center' as const,
  textStyle: { color: p.text },
  pageTextStyle: { color: p.muted },
  ...(data ? { data } : {}),
});

export const base = (p: Palette) => ({
  animation: false,
  textStyle: { color: p.text },
  tooltip: { trigger: 'item' as const, valueFormatter: formatTooltipValue },
  // Top: room for the legend and the y axis's name.
  grid: { left: 56, right: 16, top: 44, bottom: 40 },
});

/** Lines of a tooltip: a title, then `name: value` rows (HTML, names escaped). */
export function tooltipLines(title: string, rows: readonly (readonly [string, unknown])[]): string {
  const esc = (s: string) => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
  return [esc(title), ...rows.map(([k, v]) => `${esc(k)}: ${esc(formatNumber(v))}`)].join('<br/>');
}

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

/** The legend groups of the loss curves. */
const CURVE_GROUPS = { best: 'best trial', other: 'other trials', grey: 'pruned or failed' } as const;

interface AxisTooltipItem {
  seriesId?: string;
  seriesName?: string;
  value?: unknown;
  marker?: string;
}

/** The loss curves' tooltip at one step: each trial's value there, by trial. */
export function curvesTooltip(items: readonly AxisTooltipItem[]): string {
  const step = Array.isArray(items[0]?.value) ? (items[0].value as unknown[])[0] : undefined;
  const rows = items.map((i): [string, unknown] => [
    `${i.seriesId ?? ''} (${i.seriesName ?? ''})`,
    Array.isArray(i.value) ? i.value[1] : i.value,
  ]);
  return tooltipLines(`step ${formatNumber(step)}`, rows);
}

/**
 * One line per trial: the training loss at every step where the run recorded it (`curves`), else (an imported
 * log) the objective at each evaluation. The best thick in the accent colour, pruned and failed dashed grey.
 */
export function lossCurves(
  trials: readonly TrialRecord[],
  curves: Readonly<Record<number, readonly (readonly [number, number])[]>>,
  best: number | null,
  p: Palette,
): ChartOption {
  const training = Object.keys(curves).length > 0;
  const groupOf = (t: TrialRecord) =>
    t.number === best
      ? CURVE_GROUPS.best
      : t.state === 'pruned' || t.state === 'failed'
        ? CURVE_GROUPS.grey
        : CURVE_GROUPS.other;
  const groups = Object.values(CURVE_GROUPS).filter((g) => trials.some((t) => groupOf(t) === g));
  return {
    ...base(p),
    legend: legend(p, groups),
    tooltip: { trigger: 'axis' as const, formatter: curvesTooltip },
    xAxis: xAxis(p, 'step', 'count'),
    yAxis: yAxis(p, training ? 'training loss' : 'objective'),
    series: trials.map((t) => {
      const group = groupOf(t);
      const points = training ? (curves[t.number] ?? []) : t.intermediate;
      return {
        type: 'line',
        id: `trial ${t.number}`,
        name: group,
        data: points.map(([s, v]) => [s, Number.isFinite(v) ? v : null]),
        showSymbol: points.length < 30,
        symbolSize: 4,
        z: group === CURVE_GROUPS.best ? 10 : group === CURVE_GROUPS.grey ? 1 : 5,
        lineStyle: {
          width: group === CURVE_GROUPS.best ? 4 : 1.5,
          type: group === CURVE_GROUPS.grey ? 'dashed' : 'solid',
        },
        color:
          group === CURVE_GROUPS.best
            ? p.best
            : group === CURVE_GROUPS.grey
              ? p.pruned
              : SERIES_COLORS[t.number % SERIES_COLORS.length],
      };
    }),
  };
}

interface ItemTooltip {
  seriesName?: string;
  value?: unknown;
  data?: unknown;
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
    legend: legend(p, ['objective', 'best so far']),
    tooltip: {
      trigger: 'item' as const,
      formatter: ({ seriesName, value }: ItemTooltip) => {
        const [n, v] = value as [number, number];
        return tooltipLines(`trial ${n}`, [[seriesName ?? '', v]]);
      },
    },
    xAxis: xAxis(p, 'trial', 'count'),
    yAxis: yAxis(p, 'objective'),
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
  const line = (t: TrialRecord) => ({
    value: [...dims.map((d) => axisValue(d, t.params[d.name])), t.value],
    trial: t.number,
  });
  const series = (name: string, rows: TrialRecord[], color: string, width: number) => ({
    type: 'parallel',
    name,
    lineStyle: { width, opacity: 0.8, color },
    color,
    data: rows.map(line),
  });
  return {
    ...base(p),
    legend: legend(p, ['best trial', 'other complete trials']),
    tooltip: {
      trigger: 'item' as const,
      formatter: ({ data }: ItemTooltip) => {
        const d = data as { trial: number; value: (number | null)[] };
        const t = done.find((x) => x.number === d.trial);
        return tooltipLines(`trial ${d.trial}`, [
          ...dims.map((def): [string, unknown] => [def.name, t?.params[def.name]]),
          ['objective', t?.value],
        ]);
      },
    },
    parallel: { left: 48, right: 64, top: 48, bottom: 24 },
    parallelAxis,
    series: [
      series(
        'other complete trials',
        done.filter((t) => t.number !== best),
        p.accent,
        2,
      ),
      series(
        'best trial',
        done.filter((t) => t.number === best),
        p.best,
        4,
      ),
    ],
  };
}

/** fANOVA: over the whole space; PED-ANOVA: among the top 10 % of the complete trials. */
export type ImportanceMethod = 'fanova' | 'ped-anova';

const IMPORTANCE_SERIES: Record<ImportanceMethod, string> = {
  fanova: 'share of the objective’s variance (fANOVA)',
  'ped-anova': 'share of the top 10 %’s divergence (PED-ANOVA)',
};

export function importance(
  values: Record<string, number>,
  p: Palette,
  method: ImportanceMethod = 'fanova',
): ChartOption {
  const entries = Object.entries(values).sort((a, b) => a[1] - b[1]);
  const name = IMPORTANCE_SERIES[method];
  return {
    ...base(p),
    legend: legend(p, [name]),
    tooltip: {
      trigger: 'item' as const,
      formatter: ({ name: param, value }: ItemTooltip & { name?: string }) =>
        tooltipLines(param ?? '', [['importance', value]]),
    },
    // Right: room for the bar's label ("0.99") at the full width.
    grid: { left: 110, right: 44, top: 32, bottom: 32 },
    xAxis: { type: 'value', max: 1, ...axisStyle(p) },
    yAxis: {
      type: 'category',
      data: entries.map(([k]) => k),
      ...axisStyle(p),
      axisLabel: { color: p.muted },
    },
    series: [
      {
        type: 'bar',
        name,
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
    legend: legend(p, ['complete trials']),
    tooltip: {
      trigger: 'item' as const,
      formatter: ({ data }: ItemTooltip) => {
        const [x, y, n] = data as [Choice, number, number];
        return tooltipLines(`trial ${n}`, [
          [param, x],
          ['objective', y],
        ]);
      },
    },
    xAxis: categorical
      ? {
          type: 'category',
          name: param,
          nameLocation: 'middle',
          nameGap: 26,
          data: def.choices.map(String),
          ...axisStyle(p),
          axisLabel: { color: p.muted },
        }
      : xAxis(p, param, def?.kind === 'int' ? 'count' : 'value', def?.log ?? false),
    yAxis: yAxis(p, 'objective'),
    series: [
      {
        type: 'scatter',
        name: 'complete trials',
        symbolSize: 10,
        color: p.accent,
        data: done.map((t) => [categorical ? String(t.params[param]) : t.params[param], t.value, t.number]),
      },
    ],
  };
}

/**
 * One trial's curves: the training loss at every recorded step and the objective at each evaluation (on its own
 * axis when the objective is not a loss).
 */
export function trialCurve(
  training: readonly (readonly [number, number])[],
  evaluations: readonly (readonly [number, number])[],
  objective: string,
  p: Palette,
): ChartOption {
  const ownAxis = !/loss/.test(objective);
  const evalName = `${objective} at evaluation`;
  const finite = (pts: readonly (readonly [number, number])[]) =>
    pts.map(([s, v]) => [s, Number.isFinite(v) ? v : null]);
  const series = [
    { type: 'line', name: 'training loss', data: finite(training), showSymbol: false, color: p.accent },
    {
      type: 'line',
      name: evalName,
      data: finite(evaluations),
      symbolSize: 7,
      color: p.best,
      lineStyle: { width: 2.5 },
      ...(ownAxis ? { yAxisIndex: 1 } : {}),
    },
  ].filter((s) => s.data.length > 0); // an imported study has no training loss: no empty legend entry
  return {
    ...base(p),
    legend: legend(
      p,
      series.map((s) => s.name),
    ),
    tooltip: { trigger: 'axis' as const, valueFormatter: formatNumber },
    grid: { left: 56, right: ownAxis ? 56 : 16, top: 44, bottom: 40 },
    xAxis: xAxis(p, 'step', 'count'),
    yAxis: ownAxis
      ? [yAxis(p, 'loss'), { ...yAxis(p, objective), splitLine: { show: false } }]
      : yAxis(p, 'loss'),
    series,
  };
}
