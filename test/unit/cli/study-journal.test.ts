// The study log `tune --resume` reads (src/cli/study-journal.ts), on real files in a temporary folder: a torn
// last line is cut off with a backup of the original, every other bad line is refused with file:line, and no
// completed trial is lost across resume → append → resume.
import { existsSync } from 'node:fs';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkJournal,
  readJournal,
  repairJournal,
  repairJsonLines,
  StudyLogError,
} from '../../../src/cli/study-journal.ts';
import { makeStudyLog } from '../../fixtures/study-logs.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-journal-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const completed = (text: string) =>
  checkJournal(text, 'study.jsonl')
    .study.trials.filter((t) => t.state === 'complete')
    .map((t) => t.number);

/** A log whose last line is the 'complete' tell of a trial, so a glued append would lose that trial. */
function logEndingInCompleteTrial(): string {
  for (let seed = 1; ; seed++) {
    const log = makeStudyLog(seed, 4);
    if (/"state":"complete"[^\n]*\n$/.test(log)) return log;
  }
}

describe('study.jsonl on --resume', () => {
  it('cuts a torn last line off (the original kept as .bak) and loses no completed trial on the next resume', async () => {
    const path = join(dir, 'torn', 'study.jsonl');
    await mkdir(join(dir, 'torn'));
    const whole = logEndingInCompleteTrial();
    const done = completed(whole);
    const torn = `${whole}{"type":"ask","number":4,"par`;
    await writeFile(path, torn);

    const checked = await readJournal(path);
    expect(checked.torn).toEqual({ line: whole.split('\n').length, text: '{"type":"ask","number":4,"par' });
    const backup = await repairJournal(path, checked);
    expect(backup).toBe(`${path}.bak`);
    expect(await readFile(`${path}.bak`, 'utf8')).toBe(torn);
    expect(await readFile(path, 'utf8')).toBe(whole);

    // The resumed run appends; the next resume still has every completed trial.
    await appendFile(path, '{"type":"ask","number":4,"params":{"lr":0.001,"r":4}}\n');
    const next = await readJournal(path);
    expect(next.torn).toBeNull();
    expect(next.study.trials.filter((t) => t.state === 'complete').map((t) => t.number)).toEqual(done);

    // A second torn tail never overwrites the first backup.
    await appendFile(path, '{"type":"tell"');
    expect(await repairJournal(path, await readJournal(path))).toBe(`${path}.bak.2`);
    expect(await readFile(`${path}.bak`, 'utf8')).toBe(torn);
  });

  it('refuses a corrupt middle line with file:line and what was expected, and changes nothing', async () => {
    const path = join(dir, 'corrupt.jsonl');
    const lines = makeStudyLog(3, 4).split('\n');
    lines[2] = `${lines[2].slice(0, 10)}${lines[3]}`; // a line glued onto a torn one, as the old resume made
    const text = lines.join('\n');
    await writeFile(path, text);
    const error = await readJournal(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StudyLogError);
    expect((error as StudyLogError).message).toMatch(
      new RegExp(`^${path.replace(/[.]/g, '\\.')}:3: expected one JSON event per line`),
    );
    expect(await readFile(path, 'utf8')).toBe(text);
    expect(await readdir(dir)).not.toContain('corrupt.jsonl.bak');
  });

  it('refuses an event that contradicts the lines before it (a trial told twice), naming its line', () => {
    const lines = makeStudyLog(5, 3).trimEnd().split('\n');
    const tell = lines.findIndex((l) => l.includes('"type":"tell"'));
    lines.splice(tell + 1, 0, lines[tell]);
    expect(() => checkJournal(`${lines.join('\n')}\n`, 'out/study.jsonl')).toThrow(
      new RegExp(
        `^out/study\\.jsonl:${tell + 2}: expected an event consistent with the lines before it \\(.*already`,
      ),
    );
  });

  it('refuses a log without its study event, and a structurally bad event, with the line', () => {
    expect(() => checkJournal('', 'study.jsonl')).toThrow(/^study\.jsonl:1: expected the 'study' event/);
    expect(() => checkJournal('{"type":"study"', 'study.jsonl')).toThrow(
      /^study\.jsonl:1: expected the 'study' event, found an empty log/,
    );
    const log = makeStudyLog(2, 2).split('\n');
    log[1] = '{"type":"ask","number":null,"params":{}}';
    expect(() => checkJournal(log.join('\n'), 'study.jsonl')).toThrow(
      /^study\.jsonl:2: expected a study event: ask event: number must be a non-negative integer/,
    );
    expect(() => checkJournal('null\n', 'study.jsonl')).toThrow(/^study\.jsonl:1: expected a study event/);
  });

  it('keeps a whole last event that only lost its newline, adding the newline (no backup needed)', () => {
    const log = makeStudyLog(4, 3);
    const checked = checkJournal(log.slice(0, -1), 'study.jsonl');
    expect(checked.torn).toBeNull();
    expect(checked.kept).toBe(log);
    expect(checked.study.trials).toHaveLength(3);
  });

  it('trials.jsonl: a torn last line is cut off with a backup, a whole one gets its newline, a missing file is left', async () => {
    const path = join(dir, 'trials.jsonl');
    const whole = '{"number":0,"state":"complete"}\n';
    await writeFile(path, `${whole}{"number":1,"sta`);
    expect(await repairJsonLines(path)).toEqual({
      torn: { line: 2, text: '{"number":1,"sta' },
      backup: `${path}.bak`,
    });
    expect(await readFile(path, 'utf8')).toBe(whole);
    await writeFile(path, whole.trimEnd());
    expect(await repairJsonLines(path)).toBeNull();
    expect(await readFile(path, 'utf8')).toBe(whole);
    expect(await repairJsonLines(join(dir, 'missing.jsonl'))).toBeNull();
    expect(existsSync(join(dir, 'missing.jsonl'))).toBe(false);
  });
});
