// Trial workers killed at any moment, on real worker threads with a Dawn device each. dawn.node aborts the whole
// process when a thread is stopped inside one of its calls or with one of its promises pending, so a kill must
// let the thread free its device and settle first (spawn-node.ts). The killed trial fails with WorkerDiedError,
// the process lives on, and a fresh worker runs the next trial to its end.
import { afterAll, describe, expect, it } from 'vitest';
import type { TrialCallbacks, TrialJob } from '../../src/engine/tune/protocol.ts';
import { WorkerDiedError, WorkerPool } from '../../src/workers/pool.ts';
import { spawnNodeWorker } from '../../src/workers/spawn-node.ts';
import { randomExamples } from '../fixtures/examples.ts';
import { buildTinyModel, tinyModelBytes } from '../fixtures/tiny-models.ts';

const tiny = buildTinyModel({ arch: 'llama' });
const files = tinyModelBytes(tiny);
const rows = randomExamples(64, 6, 12, 5);
const pool = new WorkerPool(spawnNodeWorker, 1, {
  model: { kind: 'files', label: 'tiny-llama', files },
  precision: 'f32',
  train: rows,
  validation: rows,
  padId: 0,
});
afterAll(() => pool.close());

const STEPS = 6;
const job = (number: number): TrialJob => ({
  number,
  options: {
    lora: { r: 4, alpha: 8, dropout: 0, targets: 'all-linear', rslora: false },
    optimizer: 'adamw',
    lr: 1e-2,
    schedule: 'constant',
    batch: 2,
    accum: 1,
    seq: 12,
    steps: STEPS,
    evalEvery: 2,
    seed: number,
  },
  keepCheckpoint: false,
  exportAdapter: true,
  baseModel: 'tiny-llama',
  checkpointEvery: 3,
});

const carryOn: TrialCallbacks = { onStep: () => {}, onEval: () => ({ action: 'continue' }) };

describe('a trial worker killed mid-trial', { timeout: 240_000 }, () => {
  it('at fifteen moments (steps, evaluations, checkpoints, between them) fails only its trial', async () => {
    await pool.start();
    // Kill at step `at`, `delayMs` later: 0 ms lands between calls, the longer delays inside the GPU work of the
    // next step, its evaluation or its checkpoint.
    const moments = [1, 2, 3, 4, 5].flatMap((at) => [0, 2, 9].map((delayMs) => ({ at, delayMs })));
    for (const [i, { at, delayMs }] of moments.entries()) {
      const kill = () => pool.kill(0, `killed by the test at step ${at} + ${delayMs} ms`);
      const run = pool.run(0, job(i), {
        ...carryOn,
        onStep: (m) => {
          if (m.step === at) setTimeout(kill, delayMs);
        },
      });
      // A worker can finish its trial before a late kill lands; every kill that lands fails the trial.
      const outcome = await run.then(
        (o) => o,
        (error: unknown) => error,
      );
      if (outcome instanceof Error) {
        expect(outcome).toBeInstanceOf(WorkerDiedError);
        expect(outcome.message).toContain(`at step ${at} + ${delayMs} ms`);
      } else {
        expect(at + 1).toBeGreaterThanOrEqual(STEPS); // only a kill after the last step can come too late
      }
      await pool.restart(0);
    }
    const outcome = await pool.run(0, job(99), carryOn);
    expect(outcome.state).toBe('complete');
    expect(outcome.steps).toBe(STEPS);
  });
});
