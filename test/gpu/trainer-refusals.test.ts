// Runs the trainer refuses rather than finish with an adapter nobody can use: one whose every step from some
// point on is skipped for non-finite values stops with an error that says so (instead of an adapter of
// infinities or, in f16, of values no forward can use); a rank import would refuse is refused up front.
// Tiny model, a handful of steps.
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type LoadedModel } from '../../src/engine/model/load.ts';
import { openModel } from '../../src/engine/model/open.ts';
import type { Precision } from '../../src/engine/gpu/index.ts';
import { LoraConfigError } from '../../src/engine/lora/config.ts';
import { Trainer, TrainingDivergedError, type StepMetrics } from '../../src/engine/train/trainer.ts';
import { randomExamples } from '../fixtures/examples.ts';
import { buildTinyModel, tinyModelFiles } from '../fixtures/tiny-models.ts';
import { f16SkipReason, testGpu } from './harness.ts';

const gpu = await testGpu();
const loaded: LoadedModel[] = [];
afterAll(() => loaded.forEach((m) => m.destroy()));

async function trainer(precision: Precision, lr: number, maxSkippedSteps: number, r = 4): Promise<Trainer> {
  const opened = await openModel(tinyModelFiles(buildTinyModel({ arch: 'llama', dtype: 'F32' })));
  const model = await loadModel(gpu, opened, { precision });
  loaded.push(model);
  return new Trainer(gpu, model, randomExamples(model.spec.vocab, 8, 13, 29), [], 0, {
    lora: { r, alpha: 8, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false },
    optimizer: 'adamw',
    lr,
    schedule: 'constant',
    batch: 2,
    accum: 1,
    seq: 12,
    steps: 40,
    maxGradNorm: 0,
    seed: 5,
    maxSkippedSteps,
  });
}

describe('a diverged run stops', () => {
  const cases: [Precision, number][] = [
    ['f32', 1e38], // the first update takes the adapter to ±1e38; every forward after it overflows
    ['f16', 1e9], // the adapter passes f16's range; the loss scaler skips every step, down to its minimum
  ];
  it.each(cases)(
    '%s, lr %d: TrainingDivergedError after maxSkippedSteps skipped steps in a row',
    async (precision, lr) => {
      if (precision === 'f16' && f16SkipReason(gpu)) return;
      const t = await trainer(precision, lr, 4);
      const steps: StepMetrics[] = [];
      const error = await t.run({ onStep: (m) => steps.push(m) }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TrainingDivergedError);
      expect((error as Error).message).toMatch(
        /^training diverged: 4 consecutive optimizer steps \(up to step \d+\) were skipped/,
      );
      expect(steps.length).toBeLessThan(40);
      expect(steps.slice(-3).every((m) => m.skipped)).toBe(true);
      t.destroy();
    },
  );

  it('a healthy run with the same limit finishes', async () => {
    const t = await trainer('f32', 1e-3, 4);
    await expect(t.run()).resolves.toMatchObject({ steps: 40 });
    t.destroy();
  });
});

describe('a rank beyond the adapted layers', () => {
  it('is refused before anything is trained, naming the layer', async () => {
    // The tiny llama's q_proj is 64 → 64 and v_proj 64 → 32: r = 64 is full rank, r = 65 fits neither side.
    const full = await trainer('f32', 1e-3, 4, 64);
    full.destroy();
    await expect(trainer('f32', 1e-3, 4, 65)).rejects.toThrow(
      new LoraConfigError(
        'r',
        '65 exceeds max(in_features, out_features) = 64 of model.layers.0.self_attn.q_proj (64 → 64)',
      ),
    );
  });
});
