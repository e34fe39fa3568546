// The trial table's rows: what each trial shows, how the table sorts and which rows a filter keeps. Plain data
// in, plain data out, so the component only draws.
import type { Params, TrialRecord } from '../../engine/search/index.ts';
import { isFeasible } from '../../engine/search/index.ts';
import { formatParams } from './format.ts';

/** What a row says a trial is: the study's state, with a paused running trial and a broken constraint told apart. */
export type TrialStatus = 'complete' | 'infeasible' | 'pruned' | 'failed' | 'running' | 'paused';
export const TRIAL_STATUSES: readonly TrialStatus[] = [
  'complete',
  'infeasible',
  'pruned',
  'failed',
  'running',
  'paused',
];

export interface TrialRow {
  number: number;
  status: TrialStatus;
  params: Params;
  /** `lr=0.00123, r=8`, as the table shows it and the text filter searches it. */
  paramsText: string;
  value: number | undefined;
  /** The last step it reached. */
  step: number;
  tokensPerSecond: number | undefined;
  /** Wall-clock seconds it ran, when recorded. */
  seconds: number | undefined;
}

/** What the page knows of a trial beyond the study log. */
export interface TrialExtras {
  step?: number;
  tokensPerSecond?: number;
  paused?: boolean;
  seconds?: number;
}

export function trialStatus(t: TrialRecord, paused: boolean): TrialStatus {
  if (t.state === 'running') return paused ? 'paused' : 'running';
  if (t.state === 'complete' && !isFeasible(t)) return 'infeasible';
  return t.state;
}

export function trialRow(t: TrialRecord, extras: TrialExtras = {}): TrialRow {
  return {
    number: t.number,
    status: trialStatus(t, extras.paused ?? false),
    params: t.params,
    paramsText: formatParams(t.params),
    value: t.value,
    step: Math.max(extras.step ?? 0, t.intermediate.at(-1)?.[0] ?? 0),
    tokensPerSecond: extras.tokensPerSecond ? extras.tokensPerSecond : undefined,
    seconds: extras.seconds,
  };
}

export type SortKey = 'number' | 'status' | 'value' | 'step' | 'tokensPerSecond' | 'seconds';
export interface Sort {
  key: SortKey;
  descending: boolean;
}

const sortValue = (row: TrialRow, key: SortKey): number | undefined =>
  key === 'status' ? TRIAL_STATUSES.indexOf(row.status) : row[key];

/**
 * Rows ordered by one column. Rows without a value in it (no objective yet) come last either way; ties keep
 * trial order.
 */
export function sortRows(rows: readonly TrialRow[], sort: Sort): TrialRow[] {
  const sign = sort.descending ? -1 : 1;
  return rows.slice().sort((a, b) => {
    const x = sortValue(a, sort.key);
    const y = sortValue(b, sort.key);
    const missingX = x === undefined || Number.isNaN(x);
    const missingY = y === undefined || Number.isNaN(y);
    if (missingX || missingY) return missingX === missingY ? a.number - b.number : missingX ? 1 : -1;
    return x === y ? a.number - b.number : sign * (x - y);
  });
}

/** The order a click on a column header gives: the same column flips, another starts ascending. */
export const nextSort = (current: Sort, key: SortKey): Sort =>
  current.key === key ? { key, descending: !current.descending } : { key, descending: false };

/**
 * One term of the parameter filter: `name=prefix` (the value as shown starts with it), `name<x`, `name<=x`,
 * `name>x`, `name>=x` (numbers), or plain text found anywhere in the parameters line. Case-insensitive.
 */
type Term =
  | { kind: 'text'; text: string }
  | { kind: 'equals'; name: string; prefix: string }
  | { kind: 'compare'; name: string; op: '<' | '<=' | '>' | '>='; bound: number };

export class ParamFilterError extends Error {
  constructor(
    readonly term: string,
    readonly reason: string,
  ) {
    super(`“${term}”: ${reason}`);
    this.name = 'ParamFilterError';
  }
}

function parseTerm(term: string): Term {
  const m = /^([^<>=]+)(<=|>=|<|>|=)(.*)$/.exec(term);
  if (!m) return { kind: 'text', text: term.toLowerCase() };
  const [, name, op, rest] = m;
  if (op === '=') return { kind: 'equals', name: name.toLowerCase(), prefix: rest.toLowerCase() };
  const bound = Number(rest);
  if (rest === '' || !Number.isFinite(bound))
    throw new ParamFilterError(term, `expected a number after ${op}, e.g. ${name}${op}0.001`);
  return { kind: 'compare', name: name.toLowerCase(), op: op as '<' | '<=' | '>' | '>=', bound };
}

/** The terms of a filter text, separated by spaces or commas; throws a ParamFilterError on a bad comparison. */
export function parseParamFilter(text: string): Term[] {
  return text
    .replace(/\s*(<=|>=|<|>|=)\s*/g, '$1') // "lr < 0.001" is one term
    .split(/[\s,]+/)
    .filter((t) => t !== '')
    .map(parseTerm);
}

function paramValue(row: TrialRow, name: string): unknown {
  const key = Object.keys(row.params).find((k) => k.toLowerCase() === name);
  return key === undefined ? undefined : row.params[key];
}

function matches(row: TrialRow, term: Term): boolean {
  if (term.kind === 'text') return row.paramsText.toLowerCase().includes(term.text);
  const v = paramValue(row, term.name);
  if (v === undefined) return false;
  if (term.kind === 'equals') {
    const shown = formatParams({ x: v }).slice(2).toLowerCase();
    return shown.startsWith(term.prefix) || String(v).toLowerCase().startsWith(term.prefix);
  }
  if (typeof v !== 'number') return false;
  switch (term.op) {
    case '<':
      return v < term.bound;
    case '<=':
      return v <= term.bound;
    case '>':
      return v > term.bound;
    case '>=':
      return v >= term.bound;
  }
}

/** The rows whose status is one of `statuses` and whose parameters match every term of `text`. */
export function filterRows(
  rows: readonly TrialRow[],
  statuses: ReadonlySet<TrialStatus>,
  text: string,
): TrialRow[] {
  const terms = parseParamFilter(text);
  return rows.filter((r) => statuses.has(r.status) && terms.every((t) => matches(r, t)));
}
