// ECharts with only the modules the dashboard uses (keeps the bundle small). Custom series draw the contour's
// cells and the timeline's bars; the visual map colours the contour by the objective.
import { BarChart, CustomChart, LineChart, ParallelChart, ScatterChart } from 'echarts/charts';
import {
  GridComponent,
  LegendComponent,
  ParallelComponent,
  TitleComponent,
  TooltipComponent,
  VisualMapComponent,
} from 'echarts/components';
import * as echarts from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';

echarts.use([
  LineChart,
  ScatterChart,
  BarChart,
  CustomChart,
  ParallelChart,
  GridComponent,
  LegendComponent,
  ParallelComponent,
  TitleComponent,
  TooltipComponent,
  VisualMapComponent,
  CanvasRenderer,
]);

export { echarts };
export type ChartOption = echarts.EChartsCoreOption;
/** A click on a chart's data point: its series, its index there and its data (as the option gave it). */
export type ChartClick = Pick<echarts.ECElementEvent, 'seriesName' | 'dataIndex' | 'data'>;
