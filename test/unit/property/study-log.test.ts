// Property test of the study log reader `tune --resume` uses (checkJournal): for valid logs as `tune` writes
// them, and for those logs damaged by each mutation in test/fixtures/study-logs.ts, the reader either throws a
// StudyLogError naming the file and line, or returns a study that keeps every trial whose 'complete' line is
// intact, also after a new event is appended where the reader leaves the log and it is read again.
// bench/fuzz/study-log.ts runs the same mutations ~3000 times and prints the figures.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../../../src/cli/args.ts';
import { checkJournal, StudyLogError } from '../../../src/cli/study-journal.ts';
import { savedFlags } from '../../../src/cli/tune.ts';
import { intactCompleted, makeStudyLog, mutateLog, MUTATIONS } from '../../fixtures/study-logs.ts';

const FILE = 'run/study.jsonl';
const completed = (text: string) =>
  new Set(
    checkJournal(text, FILE)
      .study.trials.filter((t) => t.state === 'complete')
      .map((t) => t.number),
  );

/** The contract: a StudyLogError at FILE:line, or no completed trial lost over read → append → read. */
function readKeepsContract(text: string): void {
  let kept: string;
  let trials: number;
  try {
    const checked = checkJournal(text, FILE);
    kept = checked.kept;
    trials = checked.study.trials.length;
  } catch (error) {
    expect(error).toBeInstanceOf(StudyLogError);
    expect((error as Error).message).toMatch(/^run\/study\.jsonl:\d+: expected /);
    return;
  }
  const next = `${kept}${JSON.stringify({ type: 'ask', number: trials, params: { lr: 1e-3, r: 4 } })}\n`;
  for (const log of [kept, next]) {
    const done = completed(log);
    for (const n of intactCompleted(text)) expect(done.has(n)).toBe(true);
  }
}

describe('study log reader (property)', () => {
  it('reads every valid log back with all its trials', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1e6 }), fc.integer({ min: 1, max: 8 }), (seed, trials) => {
        const log = makeStudyLog(seed, trials);
        const { study, torn, kept } = checkJournal(log, FILE);
        expect(torn).toBeNull();
        expect(kept).toBe(log);
        expect(study.trials).toHaveLength(trials);
      }),
      { seed: 15, numRuns: 100 },
    );
  });

  it('a damaged log gives a StudyLogError with file:line, or a study that loses no completed trial', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1e6 }),
        fc.integer({ min: 1, max: 8 }),
        fc.constantFrom(...MUTATIONS),
        fc.infiniteStream(fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true })),
        (seed, trials, mutation, picks) => {
          const text = mutateLog(makeStudyLog(seed, trials), mutation, () => picks.next().value as number);
          readKeepsContract(text);
        },
      ),
      { seed: 15, numRuns: 400 },
    );
  });
});

describe('tune.json reader (property)', () => {
  const PATH = 'run/tune.json';
  const flagValue = fc.oneof(fc.string(), fc.constant(true), fc.constant(false));
  const validFlags = fc.dictionary(
    fc.constantFrom(
      'model',
      'data',
      'out',
      'trials',
      'seq',
      'lr',
      'workers',
      'in-process',
      'pbt',
      'toString',
    ),
    flagValue,
  );

  it('any JSON (or a damaged file) gives the flags or a UsageError naming the file, never a TypeError', () => {
    const text = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.jsonValue().map((v) => JSON.stringify({ flags: v })),
      validFlags.map((flags) => JSON.stringify({ flags })),
      fc.tuple(validFlags, fc.nat()).map(([flags, cut]) => {
        const whole = JSON.stringify({ flags });
        return whole.slice(0, cut % whole.length);
      }),
    );
    fc.assert(
      fc.property(text, (t) => {
        try {
          const flags = savedFlags(t, PATH);
          for (const value of Object.values(flags)) expect(['string', 'boolean']).toContain(typeof value);
        } catch (error) {
          expect(error).toBeInstanceOf(UsageError);
          expect((error as Error).message).toContain(PATH);
          expect((error as Error).message).toMatch(
            /not JSON|expected \{"flags"|expected a (string|boolean)|not a flag/,
          );
        }
      }),
      { seed: 15, numRuns: 500 },
    );
  });
});
