// The trial runner (what each worker of a search runs) on a real device: a stop at the final evaluation keeps
// the finished trial, a stop before it ends the trial as stopped.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TUNING_VERSION, type TuningRecord } from '../../src/engine/gpu/index.ts';
import type { TrialCallbacks, TrialJob } from '../../src/engine/tune/protocol.ts';
import { InProcessSlots } from '../../src/engine/tune/in-process.ts';
import type { TrainerOptions } from '../../src/engine/train/trainer.ts';
import { nodeGpu } from '../../src/node/dawn.ts';
import { randomExamples } from '../fixtures/examples.ts';
import { buildTinyModel, tinyModelBytes } from '../fixtures/tiny-models.ts';
import { testGpu } from './harness.ts';

const tiny = buildTinyModel({ arch: 'llama' });
const rows = randomExamples(300, 6, 12, 5);
const files = tinyModelBytes(tiny);
const slots = new InProcessSlots({ gpu: nodeGpu }, 1, {
  model: { kind: 'files', label: 'tiny-llama', files },
  precision: 'f32',
  train: rows,
  validation: rows,
  padId: 0,
});
beforeAll(async () => {
  await slots.start();
});
afterAll(async () => {
  await slots.close();
});

const options: TrainerOptions = {
  lora: { r: 4, alpha: 8, dropout: 0, targets: 'all-linear', rslora: false },
  optimizer: 'adamw',
  lr: 1e-2,
  schedule: 'constant',
  batch: 2,
  accum: 1,
  seq: 12,
  steps: 4,
  evalEvery: 2,
  seed: 1,
};
const job = (number: number): TrialJob => ({
  number,
  options,
  keepCheckpoint: false,
  exportAdapter: true,
  baseModel: 'tiny-llama',
});
/** Stops the trial at the evaluation where `when(final)` holds, and lets it continue otherwise. */
const stopAt = (when: (final: boolean) => boolean): TrialCallbacks => ({
  onStep: () => {},
  onEval: (_m, final) => {
    if (when(final)) slots.stop(0);
    return { action: 'continue' };
  },
});

describe('a trial stopped by the search (pause, stop)', () => {
  it('at its final evaluation is complete, with its adapter: nothing finished is thrown away', async () => {
    const outcome = await slots.run(
      0,
      job(0),
      stopAt((final) => final),
    );
    expect(outcome.state).toBe('complete');
    expect(outcome.steps).toBe(4);
    expect(outcome.lastEval?.step).toBe(4);
    expect(outcome.adapter?.['adapter_model.safetensors'].byteLength).toBeGreaterThan(0);
  });

  it('before it ends as stopped, without an adapter', async () => {
    const outcome = await slots.run(
      0,
      job(1),
      stopAt((final) => !final),
    );
    expect(outcome.state).toBe('stopped');
    expect(outcome.steps).toBeLessThan(4);
    expect(outcome.adapter).toBeNull();
  });
});

describe('kernel choices from the host', () => {
  it('a worker loads the tuning record it is given (it never tunes); one of another adapter is refused', async () => {
    const adapter = (await testGpu()).tuning.adapterKey;
    const record = (key: string): TuningRecord => ({
      version: TUNING_VERSION,
      adapter: key,
      choices: { 'matmul/kk:f32f32f32:32x32x32': 't32x32', 'matmul/kn:f32f32f32:32x32x32': 'generic' },
    });
    const init = { model: { kind: 'files' as const, label: 'tiny-llama', files }, precision: 'f32' as const };
    for (const [key, expected] of [
      [adapter, 2],
      [`${adapter} (another card)`, 0],
    ] as const) {
      const tuned = new InProcessSlots({ gpu: nodeGpu }, 1, {
        ...init,
        train: rows,
        validation: rows,
        padId: 0,
        tuning: record(key),
      });
      try {
        const [info] = await tuned.start();
        expect(info.tunedClasses).toBe(expected);
      } finally {
        await tuned.close();
      }
    }
  });
});
