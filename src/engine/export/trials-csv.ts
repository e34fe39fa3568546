// trials.csv: one row per trial (Optuna's trials_dataframe columns): number, state, value, params_<name> for
// every parameter of the space, duration in seconds, and the count of reported intermediate values. RFC 4180
// quoting; an inactive parameter, a missing value or an unknown duration is an empty field.
//
// Formula injection: a text cell starting with = + - @, a tab or a carriage return is what a spreadsheet runs
// as a formula (a categorical choice '=HYPERLINK(...)'), so such text is written with a ' in front (OWASP's
// advice; spreadsheets show the cell as text). Numbers are written as they are: -0.5 is a number, not a formula,
// and pandas / Optuna read the column back as floats.
import type { Study } from '../search/study.ts';
import type { TrialTiming } from './context.ts';

/** Text a spreadsheet would take for a formula. */
const FORMULA_START = /^[=+\-@\t\r]/;

export function csvField(value: string | number | boolean | null | undefined): string {
  if (value === null || value === undefined) return '';
  let s = String(value);
  if (typeof value === 'string' && FORMULA_START.test(s)) s = `'${s}`;
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

export function csvRow(fields: readonly (string | number | boolean | null | undefined)[]): string {
  return fields.map(csvField).join(',') + '\r\n';
}

/** The parameter names of the space, then any other name a trial carries, in first-seen order. */
export function paramColumns(study: Study): string[] {
  const names = Object.keys(study.space.spec);
  for (const t of study.trials) for (const k of Object.keys(t.params)) if (!names.includes(k)) names.push(k);
  return names;
}

export function trialsCsv(study: Study, timings: Readonly<Record<number, TrialTiming>> = {}): string {
  const params = paramColumns(study);
  // A multi-objective study: one values_<i> column per objective after value (the first), as Optuna names them.
  const objectives = study.directions.length > 1 ? study.directions.map((_, i) => i) : [];
  let out = csvRow([
    'number',
    'state',
    'value',
    ...objectives.map((i) => `values_${i}`),
    ...params.map((p) => `params_${p}`),
    'duration',
    'intermediate_count',
  ]);
  for (const t of study.trials) {
    out += csvRow([
      t.number,
      t.state,
      t.value,
      ...objectives.map((i) => t.values?.[i]),
      ...params.map((p) => t.params[p]),
      timings[t.number]?.duration,
      t.intermediate.length,
    ]);
  }
  return out;
}
