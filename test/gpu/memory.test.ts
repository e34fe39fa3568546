// The memory estimate is what is allocated: for every family, with and without recompute, the estimate made
// from the config alone (before loading) equals the bytes the arenas hold once the checkpoint is loaded and a
// trainer has allocated its adapter, optimizer state and activations.
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type LoadedModel } from '../../src/engine/model/load.ts';
import { estimateMemory, optimizerMoments, type MemoryEstimate } from '../../src/engine/model/memory.ts';
import { openModel } from '../../src/engine/model/open.ts';
import { Trainer, type TrainerOptions } from '../../src/engine/train/trainer.ts';
import { randomExamples } from '../fixtures/examples.ts';
import { buildTinyModel, tinyModelFiles, type TinyArch } from '../fixtures/tiny-models.ts';
import { f16SkipReason, testGpu } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
const loaded: LoadedModel[] = [];
afterAll(() => loaded.forEach((m) => m.destroy()));

const options = (o: Partial<TrainerOptions>): TrainerOptions => ({
  lora: { r: 4, alpha: 8, dropout: 0, targets: 'all-linear', rslora: false },
  optimizer: 'adamw',
  lr: 1e-3,
  schedule: 'constant',
  batch: 2,
  accum: 1,
  seq: 24,
  steps: 1,
  seed: 1,
  ...o,
});

/** Allocated bytes: the frozen weights' arena, and the trainer's (adapter, optimizer, activations, staging). */
async function allocated(arch: TinyArch, precision: 'f16' | 'f32', o: TrainerOptions) {
  const opened = await openModel(tinyModelFiles(buildTinyModel({ arch, dtype: 'F32' })));
  const model = await loadModel(gpu, opened, { precision });
  loaded.push(model);
  const trainer = new Trainer(gpu, model, randomExamples(model.spec.vocab, 4, 30, 7), [], 0, o);
  const bytes = { weights: model.arena.bytesInUse, trainer: trainer.gpuBytes };
  trainer.destroy();
  const estimate = estimateMemory(model.spec, {
    batch: o.batch,
    seq: o.seq,
    precision,
    lora: { rank: o.lora.r, targets: o.lora.targets, dropout: o.lora.dropout },
    recompute: o.recompute,
    accum: o.accum,
    moments: optimizerMoments(o),
    limits: gpu.limits,
    gradChunkTokens: o.gradChunkTokens,
  });
  return { bytes, estimate };
}

function report(name: string, estimate: MemoryEstimate, bytes: { weights: number; trainer: number }) {
  const trainerEstimate = estimate.activations.bytes + estimate.lora.bytes + estimate.scratch.bytes;
  console.log(
    `${name}: estimate ${estimate.totalBytes} B (weights ${estimate.weights.bytes}, step ${trainerEstimate}); ` +
      `allocated ${bytes.weights + bytes.trainer} B (weights ${bytes.weights}, step ${bytes.trainer})`,
  );
  return trainerEstimate;
}

describe('the memory estimate equals what the arenas allocate', () => {
  const cases: [TinyArch, 'f16' | 'f32', Partial<TrainerOptions>][] = [
    ['llama', 'f32', {}],
    ['llama', 'f32', { recompute: true }],
    ['qwen2', 'f32', {}],
    ['qwen2', 'f32', { recompute: true }],
    ['gpt2', 'f32', {}],
    ['gpt2', 'f32', { recompute: true }],
    ['llama', 'f16', {}],
    ['gpt2', 'f16', { recompute: true }],
    // Qwen3's q/k norm buffers (per layer, and in the recompute workspace), SmolLM3, Llama 3.2.
    ['qwen3', 'f32', {}],
    ['qwen3', 'f16', { recompute: true }],
    ['smollm3', 'f32', {}],
    ['llama3', 'f32', { recompute: true }],
    // Gemma 3's sandwich norms, q/k norms and its own backward scratch.
    ['gemma3', 'f32', {}],
    ['gemma3', 'f16', { recompute: true }],
    // LoRA dropout's scratch, staged micro-batches, SGD's single moment, a subset of targets, another rank.
    ['qwen2', 'f32', { accum: 3, optimizer: 'sgd', momentum: 0.9 }],
    [
      'llama',
      'f32',
      { lora: { r: 8, alpha: 16, dropout: 0.1, targets: ['q_proj', 'down_proj'], rslora: false } },
    ],
    [
      'gpt2',
      'f32',
      { recompute: true, lora: { r: 2, alpha: 4, dropout: 0.2, targets: ['c_proj'], rslora: false } },
    ],
    // The LoRA gradients' token-split workspace (chunks of 8 of the 48 tokens: 6 chunks of the largest group).
    ['llama', 'f32', { gradChunkTokens: 8 }],
    ['gpt2', 'f16', { recompute: true, gradChunkTokens: 8 }],
  ];
  it.each(cases)('%s %s %o', async (arch, precision, extra) => {
    if (precision === 'f16' && skipF16) return;
    const o = options(extra);
    const { bytes, estimate } = await allocated(arch, precision, o);
    const step = report(`${arch} ${precision} ${JSON.stringify(extra)}`, estimate, bytes);
    const total = bytes.weights + bytes.trainer;
    expect(Math.abs(estimate.totalBytes - total) / total).toBeLessThan(0.05);
    // Read from the same tables, they agree to the byte.
    expect(estimate.weights.bytes).toBe(bytes.weights);
    expect(step).toBe(bytes.trainer);
  });
});
