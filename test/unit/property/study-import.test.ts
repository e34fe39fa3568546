// The page's study-log import parser: a valid log gives the whole study, line for line; a damaged one gives a
// StudyLogError naming a line at or after the damage, never a partial study.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createStudy } from '../../../src/engine/search/index.ts';
import { MIXED_SPACE } from '../../fixtures/study-logs.ts';
import {
  parseStudyLog,
  parseStudyLogInChunks,
  StudyLogError,
  StudyLogParser,
} from '../../../src/ui/lib/study-import.ts';

type Fate = 'complete' | 'pruned' | 'failed' | 'running';
interface TrialPlan {
  reports: number[];
  fate: Fate;
  value: number;
  pbt: boolean;
}

const trialPlan: fc.Arbitrary<TrialPlan> = fc.record({
  reports: fc.array(fc.double({ noNaN: false }), { maxLength: 4 }),
  fate: fc.constantFrom<Fate>('complete', 'pruned', 'failed', 'running'),
  value: fc.double({ min: -1e6, max: 1e6, noNaN: true }),
  pbt: fc.boolean(),
});

/** A log the real Study writes: trials asked, reported, sometimes PBT-continued, told (or left running). */
function validLog(seed: number, plans: TrialPlan[]): string {
  const study = createStudy({
    space: MIXED_SPACE,
    sampler: 'random',
    seed,
  });
  plans.forEach((p, n) => {
    const trial = study.ask();
    p.reports.forEach((v, k) => trial.report((k + 1) * 10, v));
    if (p.pbt && n > 0) study.recordPbt(n, 100, n - 1, study.trial(n - 1).params);
    if (p.fate === 'complete') study.tell(trial, { state: 'complete', value: p.value });
    else if (p.fate !== 'running') study.tell(trial, { state: p.fate });
  });
  return study.log();
}

const logs = fc
  .tuple(fc.integer({ min: 0, max: 1000 }), fc.array(trialPlan, { maxLength: 8 }))
  .map(([seed, plans]) => validLog(seed, plans));

const nonBlank = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

/** The parse either yields the whole study, every line applied, or an error at line `from` or later. */
function expectWholeOrErrorFrom(text: string, from: number): void {
  let study;
  try {
    study = parseStudyLog(text);
  } catch (e) {
    expect(e).toBeInstanceOf(StudyLogError);
    const { line } = e as StudyLogError;
    expect(line).toBeGreaterThanOrEqual(from);
    expect(line).toBeLessThanOrEqual(Math.max(1, text.split('\n').length));
    return;
  }
  const lines = nonBlank(text);
  expect(study.events.length).toBe(lines.length);
  expect(study.events.slice(1)).toEqual(lines.slice(1).map((l) => JSON.parse(l) as unknown));
}

type Mutation = (lines: string[], k: number, json: unknown) => string[];
const MUTATIONS: Record<string, Mutation> = {
  delete: (lines, k) => lines.toSpliced(k, 1),
  duplicate: (lines, k) => lines.toSpliced(k, 0, lines[k]),
  swapWithNext: (lines, k) =>
    k + 1 < lines.length ? lines.toSpliced(k, 2, lines[k + 1], lines[k]) : lines.toSpliced(k, 1),
  replaceField: (lines, k, json) => {
    const event = JSON.parse(lines[k]) as Record<string, unknown>;
    const keys = Object.keys(event);
    const key = keys[Math.abs(JSON.stringify(json).length) % keys.length];
    return lines.toSpliced(k, 1, JSON.stringify({ ...event, [key]: json }));
  },
  replaceLine: (lines, k, json) => lines.toSpliced(k, 1, JSON.stringify(json)),
  blankLine: (lines, k) => lines.toSpliced(k, 0, '   '),
};

describe('the study-log import parser', () => {
  it('reads every valid log whole, the same in one go as in chunks', () => {
    fc.assert(
      fc.property(logs, fc.integer({ min: 1, max: 7 }), (log, chunk) => {
        const whole = parseStudyLog(log);
        const parser = new StudyLogParser(log);
        while (!parser.finished) parser.read(chunk);
        expect(parser.study().events).toEqual(whole.events);
        expect(whole.log()).toBe(log);
      }),
    );
  });

  it('names the line of a truncated or garbled line, whichever line it is', () => {
    fc.assert(
      fc.property(logs, fc.nat(), fc.nat(), (log, at, cut) => {
        const lines = nonBlank(log);
        const k = at % lines.length;
        const text = lines[k];
        const garbled = lines.toSpliced(k, 1, text.slice(0, 1 + (cut % (text.length - 1)))).join('\n');
        expect(() => parseStudyLog(garbled)).toThrow(StudyLogError);
        try {
          parseStudyLog(garbled);
        } catch (e) {
          expect((e as StudyLogError).line).toBe(k + 1);
          expect((e as StudyLogError).message).toMatch(new RegExp(`^line ${k + 1}: `));
        }
      }),
    );
  });

  it('gives the whole study or an error at or after the mutated line, never part of one', () => {
    fc.assert(
      fc.property(
        logs,
        fc.nat(),
        fc.constantFrom(...Object.keys(MUTATIONS)),
        fc.jsonValue(),
        (log, at, mutation, json) => {
          const lines = nonBlank(log);
          const k = at % lines.length;
          const mutated = MUTATIONS[mutation](lines, k, json).join('\n');
          expectWholeOrErrorFrom(mutated, k + 1);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses an empty log and a log that does not start with the study', () => {
    expect(() => parseStudyLog('\n  \n')).toThrow('line 1: the log is empty');
    const log = nonBlank(validLog(1, [{ reports: [1], fate: 'complete', value: 1, pbt: false }]));
    expect(() => parseStudyLog(log.slice(1).join('\n'))).toThrow(
      "line 1: the first event is 'ask', expected 'study'",
    );
    expect(() =>
      parseStudyLog([log[0], '{"type":"report","number":0,"step":1,"value":"x"}'].join('\n')),
    ).toThrow('line 2: report event: value must be a number');
  });
});

describe('reading a log in chunks', () => {
  it('reports its progress and gives the same study', async () => {
    const log = validLog(3, [{ reports: [1, 2], fate: 'complete', value: 1, pbt: false }]);
    const seen: [number, number][] = [];
    const study = await parseStudyLogInChunks(log, (done, total) => seen.push([done, total]), 2);
    expect(study.events).toEqual(parseStudyLog(log).events);
    expect(seen).toEqual([
      [2, 6],
      [4, 6],
      [6, 6],
    ]);
  });
});
