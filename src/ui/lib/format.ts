// How the dashboard writes numbers: one rule for tables, tooltips and axes, so a value reads the same everywhere.

/** Whole numbers (steps, trial numbers, ranks) as they are, others to 3 significant digits. */
export function formatNumber(v: unknown): string {
  if (typeof v !== 'number') return String(v);
  if (!Number.isFinite(v) || Number.isInteger(v)) return String(v);
  const abs = Math.abs(v);
  return abs >= 1e-3 && abs < 1e5 ? String(Number(v.toPrecision(3))) : v.toExponential(2);
}

/** A duration in seconds: "8.25 s" under a minute, "3 min 5 s" under an hour, else "2 h 4 min". */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '—';
  if (seconds < 59.95) return `${formatNumber(Number(seconds.toPrecision(3)))} s`;
  const whole = Math.round(seconds);
  if (whole < 3600) return `${Math.floor(whole / 60)} min ${whole % 60} s`;
  return `${Math.floor(whole / 3600)} h ${Math.floor((whole % 3600) / 60)} min`;
}

/** A trial's parameters as one line: `lr=0.00123, r=8`. */
export const formatParams = (params: Readonly<Record<string, unknown>>): string =>
  Object.entries(params)
    .map(([k, v]) => `${k}=${formatNumber(v)}`)
    .join(', ');
