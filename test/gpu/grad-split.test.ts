// The trainer's LoRA weight gradients with the token split (kernels/lora-grads.ts: partial tiles per token chunk
// in step.gradWorkspace, then a reduce into the flat gradient buffer, one work list for every layer shifted by a
// gradient base) train as the unsplit kernel does: the same parameter updates up to f32 rounding, for every
// layer and both kinds. SGD keeps an update proportional to its gradients, so a gradient landing in the wrong
// layer or a chunk left out shows as a large difference.
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type LoadedModel } from '../../src/engine/model/load.ts';
import { openModel } from '../../src/engine/model/open.ts';
import { Trainer } from '../../src/engine/train/trainer.ts';
import { randomExamples } from '../fixtures/examples.ts';
import { buildTinyModel, tinyModelFiles } from '../fixtures/tiny-models.ts';
import { expectClose } from '../reference/compare.ts';
import { testGpu } from './harness.ts';

const gpu = await testGpu();
const loaded: LoadedModel[] = [];
afterAll(() => loaded.forEach((m) => m.destroy()));

describe('the trainer’s LoRA gradients split into token chunks', () => {
  it.each(['llama', 'gpt2'] as const)(
    '%s: three SGD steps (dropout, 2 micro-batches) update the adapters as without the split',
    async (arch) => {
      const opened = await openModel(tinyModelFiles(buildTinyModel({ arch, dtype: 'F32' })));
      const model = await loadModel(gpu, opened, { precision: 'f32' });
      loaded.push(model);
      const rows = randomExamples(model.spec.vocab, 8, 13, 29);
      const train = async (gradChunkTokens?: number) => {
        const trainer = new Trainer(gpu, model, rows, [], 0, {
          lora: { r: 4, alpha: 8, dropout: 0.1, targets: 'all-linear', rslora: false },
          optimizer: 'sgd',
          lr: 0.5,
          schedule: 'constant',
          batch: 2,
          accum: 2,
          seq: 12,
          steps: 3,
          maxGradNorm: 0,
          seed: 5,
          gradChunkTokens,
        });
        const before = await trainer.readParams();
        await trainer.run();
        const after = await trainer.readParams();
        trainer.destroy();
        return Float64Array.from(after, (v, i) => v - before[i]);
      };
      const whole = await train();
      const split = await train(5); // 24 tokens a micro-batch: 5 chunks, the last of 4
      expect(Math.max(...whole.map(Math.abs))).toBeGreaterThan(1e-3);
      expectClose(`${arch} updates`, split, whole, 1e-4);
    },
  );
});
