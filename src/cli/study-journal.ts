// Reading `tune`'s study log (study.jsonl) for --resume, strictly: every event is appended as one write of a
// JSON line, so the only damage a crash can do is a last line cut short (no newline after it). That torn
// tail is cut off (the original file kept next to it as a backup) before anything is appended, else the next
// event would be glued onto it and that line lost on the following resume. Any other bad line is refused
// with its line number: skipping it would silently drop a trial, or run again one that finished.
import { access, copyFile, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { parseJson, type FileFormatError } from '../engine/json.ts';
import { parseEvent } from '../engine/search/events.ts';
import { loadStudy, type Study } from '../engine/search/index.ts';
import { writeFileAtomic } from '../node/files.ts';

/** A study log that cannot be resumed: which file, which line, what was expected there. */
export class StudyLogError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason}`);
    this.name = 'StudyLogError';
  }
}

/** A last line cut short by a crash mid-write: it is not part of the study. */
export interface TornTail {
  /** 1-based line number of the cut line. */
  line: number;
  text: string;
}

export interface CheckedJournal {
  study: Study;
  /** The log as it must be on disk before new events are appended (ends with a newline, or is empty). */
  kept: string;
  torn: TornTail | null;
}

/**
 * The study in a log's text, checked line by line. A torn last line is reported (not applied); any other
 * line that is not a valid event consistent with the ones before it throws a StudyLogError naming `file`.
 */
export function checkJournal(text: string, file: string): CheckedJournal {
  const { kept, torn } = splitTornTail(text, isWholeEvent);
  const lines = numberedLines(kept, file);
  if (lines.length === 0)
    throw new StudyLogError(file, torn ? torn.line : 1, "expected the 'study' event, found an empty log");
  let loaded;
  try {
    loaded = loadStudy(lines.map((l) => l.event));
  } catch (error) {
    // Only the first event (the study's description) makes loadStudy throw.
    const reason = (error as Error).message.replace(/^loadStudy: line \d+: /, '');
    throw new StudyLogError(file, lines[0].line, `expected the 'study' event (${reason})`);
  }
  const first = loaded.errors[0];
  if (first) {
    throw new StudyLogError(
      file,
      lines[first.line - 1].line,
      `expected an event consistent with the lines before it (${first.reason})`,
    );
  }
  return { study: loaded.study, kept, torn };
}

/**
 * The text up to its last complete line, and the line after it when that one is torn. A last line without
 * its newline that is whole (`isWhole`) only lost the newline: it is kept (and the newline added).
 */
function splitTornTail(
  text: string,
  isWhole: (line: string) => boolean,
): { kept: string; torn: TornTail | null } {
  if (text === '' || text.endsWith('\n')) return { kept: text, torn: null };
  const cut = text.lastIndexOf('\n') + 1;
  const tail = text.slice(cut);
  if (isWhole(tail)) return { kept: `${text}\n`, torn: null };
  const line = text.slice(0, cut).split('\n').length;
  return { kept: text.slice(0, cut), torn: { line, text: tail } };
}

function isJson(line: string): boolean {
  try {
    parseJson(line, 'line');
    return true;
  } catch {
    return false;
  }
}

function isWholeEvent(line: string): boolean {
  try {
    parseEvent(parseJson(line, 'line'));
    return true;
  } catch {
    return false;
  }
}

/** Each non-blank line's event, structurally checked, with its 1-based line number. */
function numberedLines(text: string, file: string): { line: number; event: unknown }[] {
  const out: { line: number; event: unknown }[] = [];
  text.split('\n').forEach((raw, i) => {
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = parseJson(raw, file);
    } catch (error) {
      throw new StudyLogError(
        file,
        i + 1,
        `expected one JSON event per line, found ${describe(raw)} (${(error as FileFormatError).reason})`,
      );
    }
    try {
      out.push({ line: i + 1, event: parseEvent(value) });
    } catch (error) {
      throw new StudyLogError(file, i + 1, `expected a study event: ${(error as Error).message}`);
    }
  });
  return out;
}

const describe = (raw: string) =>
  raw.length > 60 ? `'${raw.slice(0, 40)}…' (${raw.length} characters)` : `'${raw}'`;

/** Reads and checks the log at `path` without changing anything (a missing file is a UsageError upstream). */
export async function readJournal(path: string): Promise<CheckedJournal & { original: string }> {
  const original = await readFile(path, 'utf8');
  return { ...checkJournal(original, path), original };
}

/**
 * Makes the checked log at `path` ready to be appended to: a torn tail is cut off after the original is
 * copied to `<path>.bak` (or `.bak.2`, ... : an older backup is never overwritten); a missing final newline
 * is added. Does nothing to a log that ends cleanly.
 */
export async function repairJournal(
  path: string,
  checked: Pick<CheckedJournal, 'kept' | 'torn'> & { original: string },
): Promise<string | null> {
  if (checked.kept === checked.original) return null;
  let backup: string | null = null;
  if (checked.torn) {
    backup = await freeName(`${path}.bak`);
    await copyFile(path, backup);
  }
  await writeFileAtomic(path, checked.kept);
  return backup;
}

/**
 * Cuts a torn last line off another append-only JSON-lines log (trials.jsonl) before a resumed run appends
 * to it, the original kept as a backup as for the study log; null when it ends cleanly or is missing.
 */
export async function repairJsonLines(path: string): Promise<{ torn: TornTail; backup: string } | null> {
  const original = await readFile(path, 'utf8').catch(() => null);
  if (original === null) return null;
  const { kept, torn } = splitTornTail(original, isJson);
  if (kept === original) return null;
  const repaired = await repairJournal(path, { kept, torn, original });
  return torn && repaired ? { torn, backup: repaired } : null;
}

async function freeName(base: string): Promise<string> {
  for (let n = 1; ; n++) {
    const name = n === 1 ? base : `${base}.${n}`;
    const taken = await access(name).then(
      () => true,
      () => false,
    );
    if (!taken) return name;
  }
}

/** The warning `tune --resume` prints about a cut-off torn line. */
export const tornTailWarning = (path: string, torn: TornTail, backup: string | null): string =>
  `warning: ${basename(path)} line ${torn.line} was cut short by a crash mid-write (${torn.text.length} ` +
  `characters, no newline); removed it before resuming${backup ? `, the original file is kept as ${backup}` : ''}\n`;
