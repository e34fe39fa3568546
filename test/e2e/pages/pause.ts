// Test page (served by the e2e Vite server): the page's RunState runs a 2-trial study of a tiny checkpoint on
// two real trial Workers. The test pauses it, resumes it, reloads the page in between, and reads what the
// page shows and what IndexedDB holds through `window.pauseTest`.
import { memoryFiles } from '../../../src/engine/checkpoint/byte-source.ts';
import {
  decodeTrialCheckpoint,
  trialCheckpointName,
} from '../../../src/engine/checkpoint/trial-checkpoint.ts';
import { openModel } from '../../../src/engine/model/open.ts';
import { dataTokenizer, padIdOf, parseDataset, splitExamples } from '../../../src/engine/train/data.ts';
import { getFile, listStudies } from '../../../src/ui/lib/db.ts';
import { defaultSettings } from '../../../src/ui/lib/search-config.ts';
import { RunState, type RunInputs } from '../../../src/ui/state/run-state.svelte.ts';
import { buildTinyModel } from '../../fixtures/tiny-models.ts';

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
    trials: 2,
    stepsPerTrial: 8,
    evalEvery: 2,
    workers: 2,
    seq: 8,
    valRatio: 0.25,
    maxEvalExamples: 4,
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

export interface TrialView {
  number: number;
  /** As the trial table shows it: 'paused' for a running trial with its checkpoint stored. */
  shown: string;
  step: number;
  note: string;
  /** The step of its stored checkpoint, read back through the checkpoint file's checks; null: none. */
  checkpoint: number | null;
}

export interface RunView {
  phase: string;
  error: string;
  /** The stored study's status, as a reload finds it. */
  status: string;
  trials: TrialView[];
  /** Validation examples each evaluation uses, of the split's. */
  evaluation: { used: number; total: number } | null;
  /** What each trial was doing just before the pause (startAndPause). */
  activities?: string[];
}

let run = new RunState();
let runInputs: Promise<RunInputs> | null = null;
let running: Promise<void> = Promise.resolve();

async function view(): Promise<RunView> {
  const id = run.meta!.id;
  const trials: TrialView[] = [];
  for (const t of run.trials) {
    const l = run.live[t.number];
    const bytes = await getFile(id, trialCheckpointName(t.number));
    const checkpoint =
      bytes instanceof Uint8Array ? (await decodeTrialCheckpoint(bytes, 'stored', t.number)).step : null;
    trials.push({
      number: t.number,
      shown: t.state === 'running' && l?.paused ? 'paused' : t.state,
      step: l?.step ?? 0,
      note: l?.note ?? '',
      checkpoint,
    });
  }
  const meta = (await listStudies()).find((s) => s.id === id);
  return {
    phase: run.phase,
    error: run.error,
    status: meta?.status ?? 'missing',
    trials,
    evaluation: run.evaluation,
  };
}

const until = async (ready: () => boolean) => {
  while (!ready()) await new Promise((r) => setTimeout(r, 20));
};
/** Every trial asked is running and past `step`. */
const allPast = (step: number) => () =>
  run.trials.length === 2 &&
  run.trials.every((t) => t.state === 'running' && (run.live[t.number]?.step ?? 0) >= step);

const api = {
  /** Starts a study and pauses it once both trials are past `step`; resolves when it is paused. */
  async startAndPause(name: string, step: number): Promise<RunView> {
    runInputs ??= inputs();
    running = run.start(await runInputs, name);
    await until(allPast(step));
    const activities = run.trials.map((t) => run.live[t.number]?.activity ?? '');
    run.pause();
    await running;
    return { ...(await view()), activities };
  },
  /** Starts a study and resolves once both trials are past `step` and each has a stored checkpoint. */
  async startAndRun(name: string, step: number): Promise<RunView> {
    runInputs ??= inputs();
    running = run.start(await runInputs, name);
    for (;;) {
      await until(allPast(step));
      const v = await view();
      if (v.trials.every((t) => t.checkpoint !== null)) return v;
    }
  },
  /** Opens the stored study named `name` as the page does after a reload. */
  async open(name: string): Promise<RunView> {
    run = new RunState();
    const meta = (await listStudies()).find((s) => s.name === name);
    if (!meta) throw new Error(`no stored study named ${name}`);
    await run.open(meta);
    return view();
  },
  /** Resume, to the end of the study. */
  async resume(): Promise<RunView> {
    runInputs ??= inputs();
    await run.resume(await runInputs);
    return view();
  },
  view,
};

(window as unknown as { pauseTest: typeof api }).pauseTest = api;
