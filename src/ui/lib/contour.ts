// The contour plot: the objective over two parameters, interpolated between the complete trials on a grid and
// drawn as filled bands, with the trials on top. Interpolation is inverse-distance weighting (power 2) in the
// space's unit coordinates (log parameters in log space, a categorical's choices as equal cells), so a band only
// says what the nearby trials measured, never more.
import type { Choice, SearchSpace, TrialRecord } from '../../engine/search/index.ts';
import { axisStyle, base, tooltipLines, type Palette } from './chart-options.ts';
import type { ChartOption } from './charts.ts';
import { formatNumber } from './format.ts';

type Def = SearchSpace['sampled'][number];

/** One axis of the grid: where a unit coordinate u ∈ [0, 1] lies on the chart's axis. */
interface GridAxis {
  def: Def;
  /** Cells along it: `resolution` for a number, one per choice for a categorical. */
  cells: number;
  /** A parameter value's unit coordinate (null when it is not one of the axis's values). */
  unit(v: Choice): number | null;
  /** A unit coordinate on the chart's axis: the value itself, or a choice's index. */
  axisValue(u: number): number;
}

function gridAxis(def: Def, resolution: number): GridAxis {
  if (def.kind === 'categorical') {
    const k = def.choices.length;
    return {
      def,
      cells: k,
      unit: (v) => {
        const i = def.choices.indexOf(v);
        return i < 0 ? null : (i + 0.5) / k;
      },
      axisValue: (u) => u * k - 0.5,
    };
  }
  const { low, high, log } = def;
  const span = log ? Math.log(high / low) : high - low;
  return {
    def,
    cells: resolution,
    unit: (v) => (typeof v !== 'number' || span === 0 ? null : (log ? Math.log(v / low) : v - low) / span),
    axisValue: (u) => (log ? low * Math.exp(u * span) : low + u * span),
  };
}

export interface ContourPoint {
  trial: number;
  /** On the chart's axes: the parameter's value, or a choice's index. */
  x: number;
  y: number;
  value: number;
}

export interface ContourGrid {
  x: Def;
  y: Def;
  /** Cells as [x0, y0, value, x1, y1] on the chart's axes (the value third: the colour scale's dimension). */
  cells: [number, number, number, number, number][];
  points: ContourPoint[];
  min: number;
  max: number;
}

/**
 * The grid of the objective over `xName` × `yName` from the complete trials that have both, or why there is
 * none (the text to show instead).
 */
export function contourGrid(
  space: SearchSpace,
  trials: readonly TrialRecord[],
  xName: string,
  yName: string,
  resolution = 24,
): ContourGrid | string {
  const xDef = space.sampled.find((d) => d.name === xName);
  const yDef = space.sampled.find((d) => d.name === yName);
  if (!xDef || !yDef) return `${!xDef ? xName : yName} is not a searched parameter.`;
  if (xName === yName) return 'Choose two different parameters.';
  const gx = gridAxis(xDef, resolution);
  const gy = gridAxis(yDef, resolution);
  const seen: { u: number; v: number; value: number; trial: number }[] = [];
  for (const t of trials) {
    if (t.state !== 'complete' || t.value === undefined || !Number.isFinite(t.value)) continue;
    const px = t.params[xName];
    const py = t.params[yName];
    const u = px === undefined ? null : gx.unit(px);
    const v = py === undefined ? null : gy.unit(py);
    if (u !== null && v !== null) seen.push({ u, v, value: t.value, trial: t.number });
  }
  if (seen.length < 3)
    return `A contour needs at least 3 complete trials with both ${xName} and ${yName} (this study has ${seen.length}).`;
  const cells: ContourGrid['cells'] = [];
  for (let i = 0; i < gx.cells; i++)
    for (let j = 0; j < gy.cells; j++) {
      const value = idw(seen, (i + 0.5) / gx.cells, (j + 0.5) / gy.cells);
      cells.push([
        gx.axisValue(i / gx.cells),
        gy.axisValue(j / gy.cells),
        value,
        gx.axisValue((i + 1) / gx.cells),
        gy.axisValue((j + 1) / gy.cells),
      ]);
    }
  const values = seen.map((s) => s.value);
  return {
    x: xDef,
    y: yDef,
    cells,
    points: seen.map((s) => ({ trial: s.trial, x: gx.axisValue(s.u), y: gy.axisValue(s.v), value: s.value })),
    min: Math.min(...values),
    max: Math.max(...values),
  };
}

/** Inverse-distance weighted mean (power 2) at (u, v); a trial exactly there gives its own value. */
export function idw(
  points: readonly { u: number; v: number; value: number }[],
  u: number,
  v: number,
): number {
  let num = 0;
  let den = 0;
  for (const p of points) {
    const d2 = (p.u - u) ** 2 + (p.v - v) ** 2;
    if (d2 < 1e-18) return p.value;
    num += p.value / d2;
    den += 1 / d2;
  }
  return num / den;
}

/** Blue for the better end of the objective, red for the worse (a colour-blind-safe diverging scale). */
const BANDS = ['#313695', '#4575b4', '#74add1', '#abd9e9', '#fee090', '#fdae61', '#f46d43', '#d73027'];

interface RenderApi {
  value(dim: number): number;
  coord(point: number[]): number[];
  visual(key: string): string;
}

const axisFor = (def: Def, name: string, p: Palette, horizontal: boolean) => {
  const common = {
    name,
    ...(horizontal ? { nameLocation: 'middle' as const, nameGap: 26 } : {}),
    ...axisStyle(p),
  };
  if (def.kind === 'categorical')
    return {
      ...common,
      type: 'value' as const,
      min: -0.5,
      max: def.choices.length - 0.5,
      // A label and tick at each choice's cell centre (the automatic ticks fall on the cell edges).
      axisTick: { customValues: def.choices.map((_, i) => i) },
      axisLabel: {
        color: p.muted,
        customValues: def.choices.map((_, i) => i),
        formatter: (x: number) => String(def.choices[Math.round(x)] ?? ''),
      },
      splitLine: { show: false },
    };
  return {
    ...common,
    type: def.log ? ('log' as const) : ('value' as const),
    min: def.low,
    max: def.high,
    ...(def.kind === 'int' ? { minInterval: 1 } : {}),
  };
};

const choiceOrValue = (def: Def, x: number): Choice =>
  def.kind === 'categorical' ? (def.choices[Math.round(x)] ?? x) : x;

/** The grid as filled bands coloured by the objective (blue better), the trials as dots, the best a diamond. */
export function contourOption(
  g: ContourGrid,
  direction: 'minimize' | 'maximize',
  best: number | null,
  p: Palette,
): ChartOption {
  const better = direction === 'minimize' ? 'lower (better)' : 'higher (better)';
  const worse = direction === 'minimize' ? 'higher (worse)' : 'lower (worse)';
  return {
    ...base(p),
    // Top: the legend, the colour scale under it, then the y axis's name.
    grid: { left: 64, right: 16, top: 84, bottom: 40 },
    legend: {
      top: 0,
      left: 'center',
      textStyle: { color: p.text },
      data: ['interpolated objective', 'trials'],
    },
    visualMap: {
      type: 'piecewise',
      splitNumber: BANDS.length,
      min: g.min,
      max: g.max === g.min ? g.min + 1e-9 : g.max,
      dimension: 2,
      seriesIndex: [0, 1],
      orient: 'horizontal',
      top: 26,
      left: 'center',
      itemWidth: 14,
      itemHeight: 10,
      itemGap: 4,
      showLabel: false,
      text: direction === 'minimize' ? [worse, better] : [better, worse],
      textStyle: { color: p.muted },
      inRange: { color: direction === 'minimize' ? BANDS : [...BANDS].reverse() },
    },
    tooltip: {
      trigger: 'item' as const,
      formatter: ({ seriesName, data }: { seriesName?: string; data?: unknown }) => {
        if (seriesName === 'trials') {
          const [x, y, value, trial] = data as [number, number, number, number];
          return tooltipLines(`trial ${trial}`, [
            [g.x.name, choiceOrValue(g.x, x)],
            [g.y.name, choiceOrValue(g.y, y)],
            ['objective', value],
          ]);
        }
        const [x0, y0, value, x1, y1] = data as number[];
        return tooltipLines('interpolated', [
          [g.x.name, `${formatNumber(choiceOrValue(g.x, x0))} – ${formatNumber(choiceOrValue(g.x, x1))}`],
          [g.y.name, `${formatNumber(choiceOrValue(g.y, y0))} – ${formatNumber(choiceOrValue(g.y, y1))}`],
          ['objective', value],
        ]);
      },
    },
    xAxis: axisFor(g.x, g.x.name, p, true),
    yAxis: axisFor(g.y, g.y.name, p, false),
    series: [
      {
        type: 'custom',
        name: 'interpolated objective',
        color: BANDS[3],
        renderItem: (_params: unknown, api: RenderApi) => {
          const [ax, ay] = api.coord([api.value(0), api.value(1)]);
          const [bx, by] = api.coord([api.value(3), api.value(4)]);
          return {
            type: 'rect',
            shape: { x: ax, y: by, width: bx - ax + 0.5, height: ay - by + 0.5 },
            style: { fill: api.visual('color') },
          };
        },
        data: g.cells,
        z: 1,
      },
      {
        type: 'scatter',
        name: 'trials',
        color: p.text,
        data: g.points.map((pt) => ({
          value: [pt.x, pt.y, pt.value, pt.trial],
          symbol: pt.trial === best ? 'diamond' : 'circle',
          symbolSize: pt.trial === best ? 16 : 9,
        })),
        itemStyle: { borderColor: p.text, borderWidth: 1.5 },
        z: 3,
      },
    ],
  };
}
