// Replaying a recorded step (CommandRecorder.replayable): a capture is confirmed by two identical recordings
// and then issued without calling the recording code; StepScalar uniform words take their value at each
// submit; a command stream that changes is never confirmed. The trainer with replay gives bit-identical steps
// to the trainer that records every step.
import { afterAll, describe, expect, it } from 'vitest';
import { CommandRecorder, StepScalar, type Precision } from '../../src/engine/gpu/index.ts';
import { CONTROL, GRADNORM_PARTIALS_BYTES, gradNorm } from '../../src/engine/kernels/gradnorm.ts';
import { loadModel, type LoadedModel } from '../../src/engine/model/load.ts';
import { openModel } from '../../src/engine/model/open.ts';
import { evaluateLoss } from '../../src/engine/train/evaluate.ts';
import { Trainer, type StepMetrics } from '../../src/engine/train/trainer.ts';
import { crossEntropyRef, transformerForwardRef } from '../reference/transformer.ts';
import { randomExamples } from '../fixtures/examples.ts';
import { buildTinyModel, tinyModelFiles, type TinyArch } from '../fixtures/tiny-models.ts';
import { rng } from '../reference/random.ts';
import { download, f16SkipReason, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
const loaded: LoadedModel[] = [];
afterAll(() => loaded.forEach((m) => m.destroy()));

describe('CommandRecorder.replayable', () => {
  const n = 1000;
  const next = rng(11);
  const values = Array.from({ length: n }, () => next() - 0.5);
  const norm = Math.sqrt(values.reduce((s, v) => s + v * v, 0));
  const storage = (size: number) =>
    gpu.device.createBuffer({
      size,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });

  it('replays a confirmed capture without recording, with each StepScalar’s value at its submit', async () => {
    const grads = upload(gpu, values, 'f32');
    const control = storage(CONTROL.bytes);
    const partials = storage(GRADNORM_PARTIALS_BYTES);
    const lossScale = new StepScalar();
    const rec = new CommandRecorder(gpu);
    let recorded = 0;
    const scales = [1, 2, 4, 8, 0.5];
    const replays: boolean[] = [];
    for (const scale of scales) {
      lossScale.value = scale;
      replays.push(
        rec.replayable('norm', () => {
          recorded++;
          gradNorm(rec, control, grads, n, partials, { lossScale, maxNorm: 0 });
        }),
      );
      expect(rec.counts.dispatches).toBe(2);
      await rec.submitAndWait();
      const [measured] = await download(gpu, control, CONTROL.words, 'f32').then((w) => [w[CONTROL.norm]]);
      expect(measured).toBeCloseTo(norm / scale, 4);
      expect(rec.lastCounts.bindGroups).toBe(replays.length === 1 ? 2 : 0);
    }
    expect(replays).toEqual([false, false, true, true, true]);
    expect(recorded).toBe(2);
    rec.destroy();
    for (const b of [grads, control, partials]) b.destroy();
  });

  it('never confirms a stream that changes, and refuses readbacks and nesting inside', async () => {
    const grads = [upload(gpu, values, 'f32'), upload(gpu, values, 'f32')];
    const control = storage(CONTROL.bytes);
    const partials = storage(GRADNORM_PARTIALS_BYTES);
    const rec = new CommandRecorder(gpu);
    let recorded = 0;
    for (let i = 0; i < 4; i++) {
      // Another gradient buffer every time: another bind group, so the capture never repeats.
      const replayed = rec.replayable('alternating', () => {
        recorded++;
        gradNorm(rec, control, grads[i % 2], n, partials, { lossScale: 1 });
      });
      expect(replayed).toBe(false);
      rec.submit();
    }
    expect(recorded).toBe(4);
    expect(() => rec.replayable('read', () => rec.readback(control))).toThrow(/not inside replayable/);
    expect(() => rec.replayable('outer', () => rec.replayable('inner', () => {}))).toThrow(/nested/);
    rec.submit();
    // Without replay (the `replay: false` option) every call records.
    const plain = new CommandRecorder(gpu, { replay: false });
    for (let i = 0; i < 3; i++) {
      expect(plain.replayable('k', () => gradNorm(plain, control, grads[0], n, partials))).toBe(false);
      plain.submit();
    }
    await gpu.device.queue.onSubmittedWorkDone();
    rec.destroy();
    plain.destroy();
    for (const b of [...grads, control, partials]) b.destroy();
  });
});

describe('a trainer that replays its step equals one that records every step, bit for bit', () => {
  const cases: [TinyArch, Precision][] = [
    ['llama', 'f32'],
    ['gpt2', 'f32'],
    ['llama', 'f16'],
  ];
  it.each(cases)(
    '%s, %s: 6 steps, warmup + cosine lr, dropout, accum 2, an evaluation midway',
    async (arch, precision) => {
      if (precision === 'f16' && skipF16) return;
      const opened = await openModel(tinyModelFiles(buildTinyModel({ arch, dtype: 'F32' })));
      const model = await loadModel(gpu, opened, { precision });
      loaded.push(model);
      // Rows of different lengths: the loss normaliser (a StepScalar) differs from step to step.
      const rows = randomExamples(model.spec.vocab, 12, 11, 8).map((e, i) => ({
        ...e,
        ids: e.ids.slice(0, 6 + (i % 5)),
        labels: e.labels.slice(0, 6 + (i % 5)),
      }));
      const run = async (replay: boolean) => {
        const trainer = new Trainer(gpu, model, rows, rows.slice(0, 2), 0, {
          lora: { r: 4, alpha: 8, dropout: 0.1, targets: 'all-linear', rslora: false },
          optimizer: 'adamw',
          lr: 3e-3,
          schedule: 'cosine',
          warmupSteps: 2,
          batch: 2,
          accum: 2,
          seq: 10,
          steps: 6,
          evalEvery: 3,
          maxGradNorm: 1,
          seed: 9,
          replay,
        });
        const steps: StepMetrics[] = [];
        const replayed: number[] = [];
        const { lastEval } = await trainer.run({
          onStep: (m) => {
            steps.push(m);
            replayed.push(trainer.lastStepCounts.replayed);
          },
        });
        const params = await trainer.readParams();
        trainer.destroy();
        return { steps, replayed, params, lastEval };
      };
      const recorded = await run(false);
      const replayed = await run(true);
      expect(recorded.replayed.every((n) => n === 0)).toBe(true);
      expect(replayed.replayed.filter((n) => n > 0).length).toBeGreaterThanOrEqual(3);
      const pick = (m: StepMetrics) => [m.loss, m.lr, m.gradNorm, m.lossScale, m.skipped];
      expect(replayed.steps.map(pick)).toEqual(recorded.steps.map(pick));
      expect(new Set(recorded.steps.map((m) => m.lr)).size).toBeGreaterThan(3);
      expect(Array.from(replayed.params)).toEqual(Array.from(recorded.params));
      expect(replayed.lastEval?.valLoss).toBe(recorded.lastEval?.valLoss);
    },
  );
});

describe('evaluation replays its forward from the third batch on', () => {
  it('the mean loss over 7 batches of rows of varying length equals the f64 reference', async () => {
    const tiny = buildTinyModel({ arch: 'llama', dtype: 'F32' });
    const opened = await openModel(tinyModelFiles(tiny));
    const model = await loadModel(gpu, opened, { precision: 'f32' });
    loaded.push(model);
    const V = model.spec.vocab;
    const examples = randomExamples(V, 13, 10, 21).map((e, i) => ({
      ...e,
      ids: e.ids.slice(0, 4 + (i % 6)),
      labels: e.labels.slice(0, 4 + (i % 6)),
    }));
    const lora = model.withAdapters(new Map());
    const acts = lora.createActivations(model.arena, 2, 9);
    const before = { ...gpu.stats };
    const result = await evaluateLoss(lora, acts, examples, 0);
    // Bind groups are made for the first batch (and the one uniform of the accumulating ones), not per batch.
    const perBatch = (gpu.stats.dispatches - before.dispatches) / 7;
    expect(gpu.stats.bindGroups - before.bindGroups).toBeLessThanOrEqual(perBatch + 2);
    let sum = 0;
    let count = 0;
    for (const e of examples) {
      const T = e.ids.length - 1;
      const logits = transformerForwardRef(opened.spec, tiny.tensors, e.ids.slice(0, T), 1, T, {
        prefix: opened.weights.prefix,
      });
      sum += T * crossEntropyRef(logits, e.ids.slice(1), V);
      count += T;
    }
    expect(result.tokens).toBe(count);
    expect(Math.abs(result.loss - sum / count)).toBeLessThan(1e-4 * (sum / count));
  });
});
