// The trial table: sorting by a column (missing values last either way, ties in trial order), the state and
// parameter filters, and the numbers as the dashboard writes them.
import { describe, expect, it } from 'vitest';
import type { TrialRecord } from '../../src/engine/search/index.ts';
import { formatDuration, formatNumber, formatParams } from '../../src/ui/lib/format.ts';
import {
  filterRows,
  nextSort,
  ParamFilterError,
  sortRows,
  TRIAL_STATUSES,
  trialRow,
  type TrialRow,
} from '../../src/ui/lib/trial-table.ts';

const record = (t: Partial<TrialRecord> & { number: number }): TrialRecord => ({
  params: {},
  state: 'complete',
  value: undefined,
  intermediate: [],
  system: {},
  ...t,
});

const ROWS: TrialRow[] = [
  trialRow(record({ number: 0, params: { lr: 0.00123, r: 8, schedule: 'cosine' }, value: 2.5 })),
  trialRow(record({ number: 1, params: { lr: 0.0301, r: 16, schedule: 'linear' }, state: 'pruned' }), {
    step: 20,
  }),
  trialRow(record({ number: 2, params: { lr: 0.00045, r: 4, schedule: 'cosine' }, value: 1.75 })),
  trialRow(
    record({ number: 3, params: { lr: 0.01, r: 8, schedule: 'cosine' }, value: 1.75, constraints: [3] }),
  ),
  trialRow(record({ number: 4, params: { lr: 0.002, r: 16, schedule: 'linear' }, state: 'running' }), {
    paused: true,
    step: 12,
    tokensPerSecond: 900,
  }),
  trialRow(record({ number: 5, params: { lr: 0.5, r: 2, schedule: 'cosine' }, state: 'failed' })),
];
const numbers = (rows: readonly TrialRow[]) => rows.map((r) => r.number);
const ALL = new Set(TRIAL_STATUSES);

describe('trial rows', () => {
  it('tells paused, running and infeasible trials apart from the study state', () => {
    expect(ROWS.map((r) => r.status)).toEqual([
      'complete',
      'pruned',
      'complete',
      'infeasible',
      'paused',
      'failed',
    ]);
    const running = trialRow(record({ number: 9, state: 'running', intermediate: [[30, 1]] }), { step: 25 });
    expect(running.status).toBe('running');
    expect(running.step).toBe(30); // the last evaluation is further than the live step
    expect(ROWS[0].paramsText).toBe('lr=0.00123, r=8, schedule=cosine');
  });
});

describe('sorting', () => {
  it('sorts by the objective both ways with trials that have none last, ties by number', () => {
    expect(numbers(sortRows(ROWS, { key: 'value', descending: false }))).toEqual([2, 3, 0, 1, 4, 5]);
    expect(numbers(sortRows(ROWS, { key: 'value', descending: true }))).toEqual([0, 2, 3, 1, 4, 5]);
  });

  it('sorts by number, step, tokens/s and state (in the filter order)', () => {
    expect(numbers(sortRows(ROWS, { key: 'number', descending: true }))).toEqual([5, 4, 3, 2, 1, 0]);
    expect(numbers(sortRows(ROWS, { key: 'step', descending: true }))).toEqual([1, 4, 0, 2, 3, 5]);
    expect(numbers(sortRows(ROWS, { key: 'tokensPerSecond', descending: false }))).toEqual([
      4, 0, 1, 2, 3, 5,
    ]);
    expect(numbers(sortRows(ROWS, { key: 'status', descending: false }))).toEqual([0, 2, 3, 1, 5, 4]);
  });

  it('leaves the input alone', () => {
    const before = numbers(ROWS);
    sortRows(ROWS, { key: 'value', descending: true });
    expect(numbers(ROWS)).toEqual(before);
  });

  it('flips the clicked column, starts another ascending', () => {
    expect(nextSort({ key: 'value', descending: false }, 'value')).toEqual({
      key: 'value',
      descending: true,
    });
    expect(nextSort({ key: 'value', descending: true }, 'step')).toEqual({ key: 'step', descending: false });
  });
});

describe('filtering', () => {
  it('keeps only the chosen states', () => {
    expect(numbers(filterRows(ROWS, new Set(['complete']), ''))).toEqual([0, 2]);
    expect(numbers(filterRows(ROWS, new Set(['pruned', 'failed', 'infeasible']), ''))).toEqual([1, 3, 5]);
    expect(numbers(filterRows(ROWS, new Set(), ''))).toEqual([]);
  });

  it('finds text anywhere in the parameters, every term, any case', () => {
    expect(numbers(filterRows(ROWS, ALL, 'LINEAR'))).toEqual([1, 4]);
    expect(numbers(filterRows(ROWS, ALL, 'linear r=16'))).toEqual([1, 4]);
    expect(numbers(filterRows(ROWS, ALL, 'linear, cosine'))).toEqual([]);
  });

  it('matches name=value on that parameter only, by the value as shown', () => {
    // "r=8" is not found inside "lr=…": the name must be the parameter's.
    expect(numbers(filterRows(ROWS, ALL, 'r=8'))).toEqual([0, 3]);
    expect(numbers(filterRows(ROWS, ALL, 'lr=0.001'))).toEqual([0]);
    expect(numbers(filterRows(ROWS, ALL, 'schedule=cos'))).toEqual([0, 2, 3, 5]);
    expect(numbers(filterRows(ROWS, ALL, 'rank=8'))).toEqual([]);
  });

  it('compares numbers', () => {
    expect(numbers(filterRows(ROWS, ALL, 'lr<0.002'))).toEqual([0, 2]);
    expect(numbers(filterRows(ROWS, ALL, 'lr<=0.002'))).toEqual([0, 2, 4]);
    expect(numbers(filterRows(ROWS, ALL, 'r>=8 lr>0.005'))).toEqual([1, 3]);
    expect(numbers(filterRows(ROWS, ALL, 'lr < 0.002'))).toEqual([0, 2]);
    expect(numbers(filterRows(ROWS, ALL, 'schedule>1'))).toEqual([]); // not a number: no match
  });

  it('refuses a comparison without a number, naming the term', () => {
    expect(() => filterRows(ROWS, ALL, 'lr<abc')).toThrow(ParamFilterError);
    expect(() => filterRows(ROWS, ALL, 'r>2 lr<abc')).toThrow('“lr<abc”: expected a number after <');
    expect(() => filterRows(ROWS, ALL, 'r>')).toThrow('“r>”: expected a number after >, e.g. r>0.001');
  });
});

describe('numbers as the dashboard writes them', () => {
  it('gives values 3 significant digits and keeps whole numbers', () => {
    expect(formatNumber(0.0012345)).toBe('0.00123');
    expect(formatNumber(40)).toBe('40');
    expect(formatParams({ lr: 2.5e-5, r: 8, bias: false })).toBe('lr=2.50e-5, r=8, bias=false');
  });

  it('writes durations in s under a minute, min and s under an hour, h and min beyond', () => {
    expect(formatDuration(0.1234)).toBe('0.123 s');
    expect(formatDuration(8.25)).toBe('8.25 s');
    expect(formatDuration(59.94)).toBe('59.9 s');
    expect(formatDuration(59.96)).toBe('1 min 0 s');
    expect(formatDuration(185.4)).toBe('3 min 5 s');
    expect(formatDuration(7445)).toBe('2 h 4 min');
    expect(formatDuration(-1)).toBe('—');
    expect(formatDuration(NaN)).toBe('—');
  });
});
