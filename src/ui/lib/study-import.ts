// Reading an imported study log: all or nothing. Every line must be a valid event that applies to the study
// built from the lines before it; the first line that is not names itself in a StudyLogError, and nothing
// of the log is kept. The parser goes a chunk of lines at a time so the page can show progress between them.
import { parseEvent, type StudyEvent } from '../../engine/search/events.ts';
import { studyOfHead, type Study } from '../../engine/search/index.ts';
import { FileFormatError, parseJson } from '../../engine/json.ts';
import { withoutFunctionName } from './errors.ts';

/** A log line that is not JSON, not a valid event, or does not fit the study so far. */
export class StudyLogError extends Error {
  constructor(
    /** 1-based line number in the file. */
    readonly line: number,
    /** What is wrong with it; names the event's field where one is at fault. */
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
    this.name = 'StudyLogError';
  }
}

export class StudyLogParser {
  readonly #lines: string[];
  #next = 0;
  #study: Study | null = null;

  constructor(text: string) {
    this.#lines = text.split('\n');
  }

  get totalLines(): number {
    return this.#lines.length;
  }

  get linesRead(): number {
    return this.#next;
  }

  get finished(): boolean {
    return this.#next >= this.#lines.length;
  }

  /** Reads up to `count` more lines. Throws a StudyLogError at the first bad one. */
  read(count: number): void {
    const end = Math.min(this.#lines.length, this.#next + count);
    for (; this.#next < end; this.#next++) {
      const text = this.#lines[this.#next];
      if (text.trim() !== '') this.#apply(this.#next + 1, text);
    }
  }

  /** The whole study, once every line is read. */
  study(): Study {
    if (!this.finished) throw new Error('StudyLogParser: the log is not read to its end yet');
    if (!this.#study) throw new StudyLogError(1, 'the log is empty');
    return this.#study;
  }

  #apply(line: number, text: string): void {
    let event;
    try {
      event = parseEvent(decode(text));
      if (this.#study) this.#study.applyEvent(event);
      else this.#study = startStudy(event);
    } catch (e) {
      throw new StudyLogError(line, withoutFunctionName((e as Error).message));
    }
  }
}

function decode(text: string): unknown {
  try {
    return parseJson(text, 'line');
  } catch (e) {
    // "not valid JSON (…)" or "JSON nested deeper than …": the caller names the line.
    throw new Error(e instanceof FileFormatError ? e.reason : (e as Error).message);
  }
}

/** The study a log's first event describes. */
function startStudy(head: StudyEvent): Study {
  if (head.type !== 'study') throw new Error(`the first event is '${head.type}', expected 'study'`);
  return studyOfHead(head);
}

/** The whole study the log describes, or a StudyLogError naming its first bad line. */
export function parseStudyLog(text: string): Study {
  const parser = new StudyLogParser(text);
  parser.read(Infinity);
  return parser.study();
}

/** As parseStudyLog, yielding to the event loop between chunks of lines and reporting lines read. */
export async function parseStudyLogInChunks(
  text: string,
  onProgress: (linesRead: number, totalLines: number) => void,
  chunkLines = 2000,
): Promise<Study> {
  const parser = new StudyLogParser(text);
  while (!parser.finished) {
    parser.read(chunkLines);
    onProgress(parser.linesRead, parser.totalLines);
    await yieldToEventLoop();
  }
  return parser.study();
}

/** Lets the page paint and handle input; unlike setTimeout, not slowed to once a second in a hidden tab. */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => {
      channel.port1.close();
      resolve();
    };
    channel.port2.postMessage(null);
  });
}
