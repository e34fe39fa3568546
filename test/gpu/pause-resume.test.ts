// Pause keeps work, on a real device: a trial stopped mid-run hands back its checkpoint, which goes through
// the checkpoint file and back, and the trial resumed from it takes exactly the steps (losses, gradient norms,
// evaluations) an uninterrupted run takes, in f32 and in f16 with dynamic loss scaling, with dropout and
// gradient accumulation. Then the search loop: a paused study keeps its running trial (not failed), a second
// `optimize` over the reloaded log continues it from its checkpoint step to the value of an uninterrupted study,
// and a corrupt checkpoint restarts the trial from step 0 with the reason said. Evaluations report progress.
import { afterAll, describe, expect, it } from 'vitest';
import {
  decodeTrialCheckpoint,
  encodeTrialCheckpoint,
} from '../../src/engine/checkpoint/trial-checkpoint.ts';
import type { PrecisionChoice } from '../../src/engine/gpu/index.ts';
import { createStudy, loadStudy, type Study } from '../../src/engine/search/index.ts';
import type { EvalMetrics, StepMetrics, TrainerOptions } from '../../src/engine/train/trainer.ts';
import { optimize, PAUSE, type CheckpointStore, type TrialResult } from '../../src/engine/tune/index.ts';
import { InProcessSlots } from '../../src/engine/tune/in-process.ts';
import type { TrialCallbacks, TrialJob } from '../../src/engine/tune/protocol.ts';
import { nodeGpu } from '../../src/node/dawn.ts';
import { randomExamples } from '../fixtures/examples.ts';
import { buildTinyModel, tinyModelBytes } from '../fixtures/tiny-models.ts';

const tiny = buildTinyModel({ arch: 'llama' });
const files = tinyModelBytes(tiny);
const train = randomExamples(300, 10, 12, 5);
const validation = randomExamples(300, 3, 12, 6);
const opened: InProcessSlots[] = [];
async function slotsOf(precision: PrecisionChoice): Promise<InProcessSlots> {
  const slots = new InProcessSlots({ gpu: nodeGpu }, 1, {
    model: { kind: 'files', label: 'tiny-llama', files },
    precision,
    train,
    validation,
    padId: 0,
  });
  opened.push(slots);
  await slots.start();
  return slots;
}
afterAll(async () => {
  for (const s of opened) await s.close();
});

const options = (lr: number): TrainerOptions => ({
  lora: { r: 4, alpha: 8, dropout: 0.1, targets: 'all-linear', rslora: false },
  optimizer: 'adamw',
  lr,
  schedule: 'cosine',
  warmupSteps: 2,
  batch: 2,
  accum: 2,
  seq: 12,
  steps: 9,
  evalEvery: 3,
  seed: 7,
});
const job = (number: number, extra: Partial<TrialJob> = {}): TrialJob => ({
  number,
  options: options(1e-2),
  keepCheckpoint: false,
  exportAdapter: false,
  baseModel: 'tiny-llama',
  ...extra,
});

interface Trace {
  steps: StepMetrics[];
  evals: EvalMetrics[];
}
/** Callbacks that record every step and evaluation; `onStep` may also stop the trial. */
function recorder(trace: Trace, onStep: (m: StepMetrics) => void = () => {}): TrialCallbacks {
  return {
    onStep: (m) => {
      trace.steps.push(m);
      onStep(m);
    },
    onEval: (m) => {
      trace.evals.push(m);
      return { action: 'continue' };
    },
  };
}
/** What must match bit for bit: every step's loss, grad norm, lr, loss scale and skip, every evaluation. */
const numbers = (t: Trace) => ({
  steps: t.steps.map((m) => [m.step, m.loss, m.gradNorm, m.lr, m.lossScale, m.skipped]),
  evals: t.evals.map((m) => [m.step, m.valLoss]),
});

describe.each(['f32', 'f16'] as const)('a trial paused and resumed (%s)', (precision) => {
  it('takes the same steps as an uninterrupted one, through the checkpoint file', async () => {
    const slots = await slotsOf(precision);
    const whole: Trace = { steps: [], evals: [] };
    const end = await slots.run(0, job(0), recorder(whole));
    expect(end.state).toBe('complete');

    const first: Trace = { steps: [], evals: [] };
    const paused = await slots.run(
      0,
      job(0),
      recorder(first, (m) => {
        if (m.step === 5) slots.stop(0);
      }),
    );
    expect(paused.state).toBe('stopped');
    // Step 6 was in flight when the stop came at step 5's report: it lands, and the checkpoint holds it.
    expect(paused.checkpoint?.step).toBe(6);
    expect(paused.steps).toBe(6);
    const file = encodeTrialCheckpoint(0, paused.checkpoint!);
    const from = await decodeTrialCheckpoint(file, 'trial-0', 0);

    const rest: Trace = { steps: [], evals: [] };
    const resumed = await slots.run(0, job(0, { resumeFrom: from }), recorder(rest));
    expect(resumed.state).toBe('complete');
    expect(rest.steps[0].step).toBe(7);
    const joined = { steps: [...first.steps, ...rest.steps], evals: [...first.evals, ...rest.evals] };
    expect(numbers(joined)).toEqual(numbers(whole));
    expect(resumed.lastEval).toEqual(end.lastEval);
    console.log(
      `${precision}: losses ${whole.steps.map((m) => m.loss.toFixed(5)).join(' ')}; paused at ${from.step}, ` +
        `file ${file.byteLength} bytes`,
    );
  });
});

describe('periodic checkpoints', () => {
  it('are handed over every N steps without changing the trajectory', async () => {
    const slots = await slotsOf('f32');
    const plain: Trace = { steps: [], evals: [] };
    await slots.run(0, job(0), recorder(plain));
    const traced: Trace = { steps: [], evals: [] };
    const at: number[] = [];
    const progress: [number, number][] = [];
    await slots.run(0, job(0, { checkpointEvery: 2 }), {
      ...recorder(traced),
      onCheckpoint: (c) => void at.push(c.step),
      onEvalProgress: (done, total) => void progress.push([done, total]),
    });
    // Every evaluation says how far it got: 3 validation rows are 2 micro-batches of 2.
    expect(progress).toEqual(traced.evals.map(() => [2, 2]));
    // Taken after the step in flight landed, with nothing in flight: 2 → 3, 4 → 5, 6 → 7, 8 → 9 (the last
    // step: none needed).
    expect(at).toEqual([3, 5, 7]);
    expect(numbers(traced)).toEqual(numbers(plain));
  });
});

describe('the search loop over a pause', () => {
  const space = { lr: { type: 'float' as const, low: 1e-3, high: 3e-2, log: true } };
  const run = (study: Study, slots: InProcessSlots, store: CheckpointStore, signal?: AbortSignal) =>
    optimize(study, slots, {
      trials: 2,
      objective: 'val_loss',
      trainerOptions: (p) => options(p.lr as number),
      baseModel: 'tiny-llama',
      checkpoints: store,
      ...(signal ? { signal } : {}),
    });
  const memoryStore = (): CheckpointStore & { files: Map<number, Uint8Array> } => {
    const files = new Map<number, Uint8Array>();
    return {
      files,
      write: async (n, b) => void files.set(n, b),
      read: async (n) => files.get(n) ?? null,
      remove: async (n) => void files.delete(n),
      describe: (n) => `memory/trial-${n}`,
    };
  };

  it('keeps the paused trial running with its checkpoint, and the next run finishes it as if never paused', async () => {
    const slots = await slotsOf('f32');
    const reference = createStudy({ space, sampler: 'random', seed: 5 });
    await run(reference, slots, memoryStore());
    expect(reference.trials.map((t) => t.state)).toEqual(['complete', 'complete']);

    for (const damage of ['none', 'corrupt'] as const) {
      const study = createStudy({ space, sampler: 'random', seed: 5 });
      const store = memoryStore();
      const pause = new AbortController();
      const first = await optimize(study, slots, {
        trials: 2,
        objective: 'val_loss',
        trainerOptions: (p) => options(p.lr as number),
        baseModel: 'tiny-llama',
        checkpoints: store,
        signal: pause.signal,
        listener: { step: (n, m) => n === 1 && m.step === 4 && pause.abort(PAUSE) },
      });
      expect(first.stopped).toBe(true);
      expect(first.results.map((r) => [r.number, r.state, r.steps])).toEqual([
        [0, 'complete', 9],
        [1, 'paused', 4],
      ]);
      expect(study.trial(1).state).toBe('running');
      expect(study.trial(1).intermediate.map(([s]) => s)).toEqual([3]);
      expect([...store.files.keys()]).toEqual([1]);
      if (damage === 'corrupt') store.files.get(1)![store.files.get(1)!.length - 3] ^= 1;

      // As after a reload: the study rebuilt from its log, the checkpoints from the store.
      const { study: reloaded } = loadStudy(study.events);
      const started: { number: number; resumedFrom?: number; note?: string }[] = [];
      const finished: TrialResult[] = [];
      const second = await optimize(reloaded, slots, {
        trials: 2,
        objective: 'val_loss',
        trainerOptions: (p) => options(p.lr as number),
        baseModel: 'tiny-llama',
        checkpoints: store,
        listener: { trialStarted: (t) => started.push(t), trialFinished: (r) => finished.push(r) },
      });
      expect(second.resumed).toEqual([1]);
      expect(second.interrupted).toEqual([]);
      expect(started).toHaveLength(1);
      expect(started[0].number).toBe(1);
      if (damage === 'none') {
        expect(started[0].resumedFrom).toBe(4);
        expect(started[0].note).toBeUndefined();
      } else {
        expect(started[0].resumedFrom).toBe(0);
        expect(started[0].note).toMatch(
          /^its checkpoint was refused \(memory\/trial-1: the data does not match __metadata__\.checksum .*\): restarting from step 0$/,
        );
      }
      expect(finished.map((r) => [r.number, r.state, r.steps])).toEqual([[1, 'complete', 9]]);
      // The same values as the study that was never paused: reports, final value, and no trial asked anew.
      expect(reloaded.trials.map((t) => [t.state, t.value, t.intermediate])).toEqual(
        reference.trials.map((t) => [t.state, t.value, t.intermediate]),
      );
      expect(store.files.size).toBe(0);
    }
  });
});
