// ECharts is most of the page's weight and only the Run and Results steps draw: every chart loads it through
// this one promise, on first use.
let charts: Promise<typeof import('./charts.ts')> | null = null;

export const loadCharts = (): Promise<typeof import('./charts.ts')> => (charts ??= import('./charts.ts'));
