// Test page (served by the e2e Vite server): the page's RunState runs a 3-trial study of a tiny checkpoint on
// a real trial Worker, and the disk "fills up" (the db test hook) once the first trial has completed. The
// outcome, with what IndexedDB holds, lands in `window.runQuotaResult`; then the same study is resumed. First,
// a study that cannot even be stored when it starts.
import { memoryFiles } from '../../../src/engine/checkpoint/byte-source.ts';
import { openModel } from '../../../src/engine/model/open.ts';
import { dataTokenizer, padIdOf, parseDataset, splitExamples } from '../../../src/engine/train/data.ts';
import { injectWriteError, listStudies, readEvents } from '../../../src/ui/lib/db.ts';
import { defaultSettings } from '../../../src/ui/lib/search-config.ts';
import { parseStudyLog } from '../../../src/ui/lib/study-import.ts';
import { RunState, type RunInputs } from '../../../src/ui/state/run-state.svelte.ts';
import { buildTinyModel } from '../../fixtures/tiny-models.ts';

export interface RunOutcome {
  phase: string;
  error: string;
  /** The stored study, as a reload would find it. */
  status: string;
  storedStates: string[];
  storedEvents: number;
  /** Whether the stored log is exactly the start of the log in memory. */
  storedIsPrefix: boolean;
  memoryEvents: number;
  error_?: string;
}

async function inputs(): Promise<RunInputs> {
  const tiny = buildTinyModel({ arch: 'llama' });
  const modelBlobs = Object.fromEntries(
    Object.entries(tiny.files).map(([name, data]) => [name, new Blob([data as BlobPart])]),
  );
  const opened = await openModel(memoryFiles('tiny-llama', tiny.files));
  const dataText = Array.from({ length: 24 }, (_, i) =>
    JSON.stringify({ prompt: `${i}+${i % 7}=`, completion: `${i + (i % 7)}` }),
  ).join('\n');
  const tok = dataTokenizer(opened.tokenizer);
  const data = parseDataset('add.jsonl', dataText, tok, { seq: 8 });
  const { train, validation } = splitExamples(data.examples, 0.25, 1);
  const settings = {
    ...defaultSettings(),
    sampler: 'random' as const,
    pruner: 'none' as const,
    trials: 3,
    stepsPerTrial: 4,
    evalEvery: 2,
    workers: 1,
    seq: 8,
    valRatio: 0.25,
  };
  return {
    modelRef: { kind: 'local', label: 'tiny-llama' },
    modelBlobs,
    family: opened.spec.family,
    model: { maxPositions: opened.spec.maxPositions, hidden: opened.spec.hidden },
    dataFile: 'add.jsonl',
    dataText,
    train,
    validation,
    padId: padIdOf(tok),
    classes: null,
    settings,
  };
}

async function outcome(run: RunState): Promise<RunOutcome> {
  const meta = (await listStudies()).find((s) => s.id === run.meta?.id);
  const stored = await readEvents(run.meta!.id);
  const memory = run.study!.events;
  return {
    phase: run.phase,
    error: run.error,
    status: meta?.status ?? 'missing',
    // Strict: a damaged or out-of-order stored log throws here.
    storedStates: parseStudyLog(stored.map((e) => JSON.stringify(e)).join('\n')).trials.map((t) => t.state),
    storedEvents: stored.length,
    storedIsPrefix: JSON.stringify(memory.slice(0, stored.length)) === JSON.stringify(stored),
    memoryEvents: memory.length,
  };
}

export interface NoRoomOutcome {
  phase: string;
  error: string;
  /** Whether any of the study that could not start was stored. */
  stored: boolean;
}

/** The disk is full when a study starts: its summary fits, its dataset does not. */
async function startWithoutRoom(runInputs: RunInputs): Promise<NoRoomOutcome> {
  const run = new RunState();
  injectWriteError(1);
  await run.start(runInputs, 'no room');
  const stored = (await listStudies()).some((s) => s.name === 'no room');
  return { phase: run.phase, error: run.error, stored };
}

/** A study whose next write fails (a DOMException named `name`) as soon as one trial has completed. */
async function runUntilWriteFails(run: RunState, runInputs: RunInputs, name: string): Promise<RunOutcome> {
  const watch = setInterval(() => {
    if (run.trials.some((t) => t.state === 'complete')) {
      injectWriteError(0, name);
      clearInterval(watch);
    }
  }, 5);
  await run.start(runInputs, `${name} study`);
  clearInterval(watch);
  return outcome(run);
}

export interface RunQuotaResult {
  noRoom: NoRoomOutcome;
  full: RunOutcome;
  resumed: RunOutcome;
  /** Another write failure than a full disk. */
  broken: RunOutcome;
}

async function main(): Promise<RunQuotaResult> {
  const runInputs = await inputs();
  const noRoom = await startWithoutRoom(runInputs);
  const run = new RunState();
  const full = await runUntilWriteFails(run, runInputs, 'QuotaExceededError');
  // Space freed: Resume continues from the stored log.
  await run.resume(runInputs);
  const resumed = await outcome(run);
  const broken = await runUntilWriteFails(new RunState(), runInputs, 'UnknownError');
  return { noRoom, full, resumed, broken };
}

const w = window as unknown as { runQuotaResult?: unknown };
main().then(
  (r) => {
    w.runQuotaResult = r;
  },
  (error: unknown) => {
    w.runQuotaResult = { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  },
);
