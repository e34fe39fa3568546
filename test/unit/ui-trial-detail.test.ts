// The trial detail in words: why each kind of trial ended, its runs (a pause and a resume are two), and its lines of
// a real study log.
import { describe, expect, it } from 'vitest';
import { createStudy, type TrialRecord } from '../../src/engine/search/index.ts';
import { formatNumber } from '../../src/ui/lib/format.ts';
import { describeRuns, prunerName, trialEnding, trialLog } from '../../src/ui/lib/trial-detail.ts';
import { parseHistory, runEnded, runStarted, type TrialHistory } from '../../src/ui/lib/trial-history.ts';

const record = (t: Partial<TrialRecord> & { number: number }): TrialRecord => ({
  params: {},
  state: 'complete',
  value: undefined,
  intermediate: [],
  system: {},
  ...t,
});
const CONTEXT = { pruner: 'median' as const, objective: 'validation loss', steps: 40, spans: [], step: 0 };

describe('why a trial ended', () => {
  it('says a complete trial finished, with its objective', () => {
    expect(trialEnding(record({ number: 0, value: 1.23456 }), { ...CONTEXT, status: 'complete' })).toBe(
      'Finished its 40 steps: validation loss 1.23.',
    );
  });

  it('names the step and the pruner of a pruned trial', () => {
    const t = record({
      number: 1,
      state: 'pruned',
      intermediate: [
        [10, 2.5],
        [20, 2.25],
      ],
    });
    expect(trialEnding(t, { ...CONTEXT, status: 'pruned' })).toMatch(
      /^Pruned at step 20 by the median pruner: its validation loss there, 2.25,/,
    );
    expect(trialEnding(t, { ...CONTEXT, pruner: { type: 'asha' }, status: 'pruned' })).toMatch(
      /by ASHA \(successive halving\)/,
    );
  });

  it('gives a failed trial’s error when the page saw it, and says so when it did not', () => {
    const t = record({ number: 2, state: 'failed' });
    const spans = [
      {
        slot: 0,
        start: 0,
        end: 5000,
        fromStep: 0,
        toStep: 3,
        ended: 'failed' as const,
        reason: 'out of memory',
      },
    ];
    expect(trialEnding(t, { ...CONTEXT, status: 'failed', spans })).toBe('Failed: out of memory.');
    expect(trialEnding(t, { ...CONTEXT, status: 'failed' })).toMatch(/keeps no error messages/);
  });

  it('counts the broken constraints of an infeasible trial', () => {
    const t = record({ number: 3, value: 0.5, constraints: [2, -1, 0.5] });
    expect(trialEnding(t, { ...CONTEXT, status: 'infeasible' })).toMatch(
      /broke 2 constraints, so it is never the best/,
    );
  });

  it('says where a paused or running trial is', () => {
    const t = record({ number: 4, state: 'running' });
    expect(trialEnding(t, { ...CONTEXT, status: 'paused', step: 12 })).toBe(
      'Paused at step 12 of 40, its checkpoint stored: Resume continues it from there.',
    );
    expect(trialEnding(t, { ...CONTEXT, status: 'running', step: 13 })).toBe('Running: step 13 of 40.');
  });

  it('names the pruners', () => {
    expect(prunerName('none')).toBe('no pruner');
    expect(prunerName({ type: 'median' })).toBe('the median pruner');
  });
});

describe('a trial’s runs', () => {
  it('records a run paused and resumed on another worker as two spans', () => {
    let h: TrialHistory = {};
    h = runStarted(h, 7, { slot: 0, at: 1000, fromStep: 0 });
    h = runEnded(h, 7, { at: 31_000, toStep: 20, ended: 'paused' });
    h = runStarted(h, 7, { slot: 1, at: 100_000, fromStep: 20 });
    h = runEnded(h, 7, { at: 250_000, toStep: 40, ended: 'complete' });
    expect(h[7]).toEqual([
      { slot: 0, start: 1000, end: 31_000, fromStep: 0, toStep: 20, ended: 'paused' },
      { slot: 1, start: 100_000, end: 250_000, fromStep: 20, toStep: 40, ended: 'complete' },
    ]);
    expect(describeRuns(h[7])).toEqual([
      'Started on worker 1, ran 30 s, paused at step 20 with its checkpoint stored.',
      'Resumed from the checkpoint at step 20 on worker 2, ran 2 min 30 s, complete at step 40.',
    ]);
    // An end with no start seen changes nothing; a history survives the round trip through storage.
    expect(runEnded(h, 8, { at: 1, toStep: 1, ended: 'failed' })).toBe(h);
    expect(parseHistory(JSON.stringify(h))).toEqual(h);
    expect(parseHistory(null)).toEqual({});
    expect(parseHistory('not json')).toEqual({});
  });

  it('says when a run has no recorded end', () => {
    expect(describeRuns([{ slot: 2, start: 0, fromStep: 0 }])).toEqual([
      'Started on worker 3; no end recorded (still running, or the page closed).',
    ]);
  });
});

describe('a trial’s lines of the study log', () => {
  it('lists its ask, reports and tell, and nothing of other trials', () => {
    const study = createStudy({
      space: { lr: { type: 'float', low: 1e-4, high: 1e-1, log: true } },
      sampler: 'random',
      seed: 3,
    });
    const a = study.ask();
    const b = study.ask();
    a.report(10, 2.34567);
    b.report(10, 3);
    study.tell(b, { state: 'pruned' });
    a.report(20, Number.NaN);
    study.tell(a, 1.98765);
    const lr = a.params.lr as number;
    expect(trialLog(study.events, a.number)).toEqual([
      `asked: lr=${formatNumber(lr)}`,
      'step 10: objective 2.35',
      'step 20: objective not finite',
      'told: complete, objective 1.99',
    ]);
    expect(trialLog(study.events, b.number)).toEqual([
      expect.stringMatching(/^asked: lr=/),
      'step 10: objective 3',
      'told: pruned',
    ]);
  });
});
