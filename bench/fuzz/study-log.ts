// One-off fuzz of the study log reader `tune --resume` uses: ~3000 mutated logs (test/fixtures/study-logs.ts),
// each read, then one event appended the way the reader leaves the file, then read again (the next resume).
// Every case is a clear error (a StudyLogError naming the file and line), an unclear error (another error
// that names no file), a crash (TypeError, RangeError, ...), silent: lost a trial (a read that succeeded but
// lost a trial whose 'complete' line was intact), silent: skipped (lines skipped with a warning only), or fine.
// `npx tsx bench/fuzz/study-log.ts [cases]` prints the figures for the old reader and the new one.
// 3000 cases (seed 20261130): before (loadStudy, skip bad lines with a warning, append to the file as it is):
// clear error 0, unclear error 320, crash 0, silent: lost a trial 351, silent: skipped 1710, fine 619;
// after (checkJournal): clear error 2156, unclear error 0, crash 0, silent 0, fine 844.
import { loadStudy, type Study } from '../../src/engine/search/index.ts';
import { Rng } from '../../src/engine/rng.ts';
import { checkJournal, StudyLogError } from '../../src/cli/study-journal.ts';
import { intactCompleted, makeStudyLog, mutateLog, MUTATIONS } from '../../test/fixtures/study-logs.ts';

const FILE = 'study.jsonl';
const OUTCOMES = [
  'clear error',
  'unclear error',
  'crash',
  'silent: lost a trial',
  'silent: skipped',
  'fine',
] as const;
type Outcome = (typeof OUTCOMES)[number];

interface Reader {
  /** The study, lines skipped with a warning only, and the text new events are appended to. */
  read(text: string): { study: Study; skipped: number; appendTo: string };
}

/** Before: loadStudy, bad lines skipped with a warning, new events appended to the file as it was. */
const oldReader: Reader = {
  read(text) {
    const { study, errors } = loadStudy(text);
    return { study, skipped: errors.length, appendTo: text };
  },
};

/** After: checkJournal; a torn tail is cut off (and reported) before anything is appended. */
const newReader: Reader = {
  read(text) {
    const { study, kept } = checkJournal(text, FILE);
    return { study, skipped: 0, appendTo: kept };
  },
};

const completed = (study: Study) =>
  new Set(study.trials.filter((t) => t.state === 'complete').map((t) => t.number));

function classify(reader: Reader, text: string): Outcome {
  try {
    const first = reader.read(text);
    const next = first.study.trials.length;
    const appended = `${first.appendTo}${JSON.stringify({ type: 'ask', number: next, params: { lr: 1e-3, r: 4 } })}\n`;
    const second = reader.read(appended);
    const mustKeep = intactCompleted(text);
    for (const study of [first.study, second.study]) {
      const done = completed(study);
      for (const n of mustKeep) if (!done.has(n)) return 'silent: lost a trial';
    }
    return first.skipped + second.skipped > 0 ? 'silent: skipped' : 'fine';
  } catch (error) {
    if (error instanceof StudyLogError && error.message.startsWith(`${FILE}:`)) return 'clear error';
    if (error instanceof TypeError || error instanceof RangeError || !(error instanceof Error))
      return 'crash';
    return error.message.includes(FILE) ? 'clear error' : 'unclear error';
  }
}

const cases = Number(process.argv[2] ?? 3000);
const rng = new Rng(20261130, 'fuzz');
const tally = { old: new Map<Outcome, number>(), new: new Map<Outcome, number>() };
const byMutation = new Map<string, { old: Map<Outcome, number>; new: Map<Outcome, number> }>();
for (let i = 0; i < cases; i++) {
  const original = makeStudyLog(rng.int(1_000_000), 2 + rng.int(8));
  const mutation = MUTATIONS[i % MUTATIONS.length];
  const text = mutateLog(original, mutation, () => rng.random());
  const row = byMutation.get(mutation) ?? { old: new Map(), new: new Map() };
  byMutation.set(mutation, row);
  for (const [name, reader] of [
    ['old', oldReader],
    ['new', newReader],
  ] as const) {
    const outcome = classify(reader, text);
    tally[name].set(outcome, (tally[name].get(outcome) ?? 0) + 1);
    row[name].set(outcome, (row[name].get(outcome) ?? 0) + 1);
  }
}

const fmt = (m: Map<Outcome, number>) => OUTCOMES.map((o) => `${o} ${m.get(o) ?? 0}`).join(', ');
console.log(`${cases} mutated study logs`);
console.log(`  before: ${fmt(tally.old)}`);
console.log(`  after:  ${fmt(tally.new)}`);
for (const [mutation, row] of byMutation) {
  console.log(`  ${mutation.padEnd(20)} before: ${fmt(row.old)}`);
  console.log(`  ${''.padEnd(20)} after:  ${fmt(row.new)}`);
}
