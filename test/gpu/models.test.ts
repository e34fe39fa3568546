import { describe, expect, it } from 'vitest';
import type { ScalarType } from '../../src/engine/gpu/index.ts';
import { f16SkipReason, testGpu } from './harness.ts';
import {
  expectGradientsMatchFiniteDifferences,
  modelGradients,
  modelLoss,
  randomBatch,
  uploadBatch,
} from './model-gradcheck.ts';
import {
  buildTinyGemma3,
  buildTinyGpt2,
  buildTinyLlama,
  TINY_GEMMA3,
  TINY_GPT2,
  TINY_LLAMA,
} from './tiny-models.ts';
import { modelMatmulProblems, problemSkinny } from '../../src/engine/kernels/autotune.ts';
import { matmulShapeClass } from '../../src/engine/kernels/matmul.ts';
import { expectClose } from '../reference/compare.ts';

const gpu = await testGpu();
/** Qwen3: per-head q/k norms, head_dim 48 ≠ hidden / heads. */
const QWEN3_DIMS = { ...TINY_LLAMA, headDim: 48, qkNorm: true, rmsNormEps: 1e-6, ropeTheta: 1e6 };
const skipF16 = f16SkipReason(gpu);
const B = 2;
const T = 7;

describe('LoRA gradients of whole models match finite differences of the GPU loss (f32, rel < 1e-3)', () => {
  it.each([
    ['Llama (GQA 4:2)', {}],
    [
      'Qwen2 (q/k/v bias, GQA 4:1)',
      { dims: { ...TINY_LLAMA, kvHeads: 1, qkvBias: true, rmsNormEps: 1e-6, ropeTheta: 1e6 } },
    ],
    ['Llama with LoRA dropout 0.3 (fixed mask)', { dropout: 0.3 }],
    // Through Qwen3's per-head q/k norms into q_proj's and k_proj's adapters; head_dim ≠ hidden / heads.
    ['Qwen3 (q/k norms, head dim 48, GQA 4:2)', { dims: QWEN3_DIMS }],
    ['SmolLM3 (layer 1 without RoPE)', { dims: { ...TINY_LLAMA, noRopeLayers: [1] } }],
    [
      'Llama 3.2 (llama3 RoPE scaling, all three bands at head dim 32)',
      {
        dims: {
          ...TINY_LLAMA,
          ropeTheta: 5e5,
          ropeScaling: {
            type: 'llama3' as const,
            factor: 32,
            lowFreqFactor: 1,
            highFreqFactor: 4,
            originalMaxPositions: 64,
          },
        },
      },
    ],
    // Head dims beyond 32/64/128 (Phi's 96, Gemma's 256), hidden ≠ heads·D as with an explicit head_dim.
    [
      'Llama, head dim 96 (2 heads, 1 kv head)',
      { dims: { ...TINY_LLAMA, layers: 1, heads: 2, kvHeads: 1, headDim: 96 } },
    ],
    [
      'Llama, head dim 256 (1 head)',
      { dims: { ...TINY_LLAMA, layers: 1, heads: 1, kvHeads: 1, headDim: 256 } },
    ],
    // T = 7 is longer than both windows: keys drop out of every query's view from position 3 (2) on.
    ['sliding windows 3 and 2 (Mistral, Qwen2)', { dims: { ...TINY_LLAMA, windows: [3, 2] } }],
    [
      'a sliding layer under a global one (Qwen2 max_window_layers)',
      { dims: { ...TINY_LLAMA, windows: [null, 2] } },
    ],
    [
      'Qwen3 q/k norms and a SmolLM3 NoPE layer through sliding windows',
      { dims: { ...QWEN3_DIMS, noRopeLayers: [1], windows: [2, 3] } },
    ],
  ])('%s', async (_name, options) => {
    const tiny = buildTinyLlama(gpu, 'f32', options);
    const acts = tiny.model.createActivations(tiny.arena, B, T);
    const batch = randomBatch(TINY_LLAMA.vocab, B * T, 5);
    uploadBatch(gpu, acts, batch);
    expect(await modelLoss(tiny.model, acts, batch)).toBeGreaterThan(0);
    await expectGradientsMatchFiniteDifferences(tiny.model, acts, batch, tiny.host, tiny.adapters);
    tiny.arena.destroy();
  });

  // The weight gradients' token split (kernels/lora-grads.ts) forced at this N: 14 tokens in chunks of 3.
  it.each([
    ['Llama with LoRA dropout 0.3', 'llama'],
    ['GPT-2', 'gpt2'],
  ] as const)('%s, the weight gradients split into token chunks of 3', async (_name, family) => {
    const tiny = family === 'gpt2' ? buildTinyGpt2(gpu, 'f32') : buildTinyLlama(gpu, 'f32', { dropout: 0.3 });
    const acts = tiny.model.createActivations(tiny.arena, B, T, { gradChunkTokens: 3 });
    const batch = randomBatch(tiny.model.vocab, B * T, 5);
    uploadBatch(gpu, acts, batch);
    await expectGradientsMatchFiniteDifferences(tiny.model, acts, batch, tiny.host, tiny.adapters);
    tiny.arena.destroy();
  });

  // Every target's adapter through Gemma's sandwich norms, (1 + w) q/k norms, GeGLU, √C embeddings, tied head,
  // and a sliding layer (window 3 < T, its own RoPE base) under a global one.
  it.each([
    ['Gemma 3 (sliding window 3 then global, two RoPE bases, head dim 48, score scale 32^−½)', {}],
    ['Gemma 3 with LoRA dropout 0.3 (fixed mask)', { dropout: 0.3 }],
    [
      'Gemma 3-style block with head dim 256 (Gemma-3-270M/1B), 1 layer',
      { dims: { ...TINY_GEMMA3, layers: 1, heads: 1, kvHeads: 1, headDim: 256, windows: [3] } },
    ],
  ])('%s', async (_name, options) => {
    const tiny = buildTinyGemma3(gpu, 'f32', options);
    const acts = tiny.model.createActivations(tiny.arena, B, T);
    const batch = randomBatch(TINY_GEMMA3.vocab, B * T, 7);
    uploadBatch(gpu, acts, batch);
    expect(await modelLoss(tiny.model, acts, batch)).toBeGreaterThan(0);
    const error = await expectGradientsMatchFiniteDifferences(
      tiny.model,
      acts,
      batch,
      tiny.host,
      tiny.adapters,
    );
    console.log(`${_name}: LoRA gradients vs finite differences, max rel error ${error.toExponential(2)}`);
    tiny.arena.destroy();
  });

  it('GPT-2 (Conv1D, fused c_attn, learned positions, tied head)', async () => {
    const tiny = buildTinyGpt2(gpu, 'f32');
    const acts = tiny.model.createActivations(tiny.arena, B, T);
    const batch = randomBatch(TINY_GPT2.vocab, B * T, 6);
    uploadBatch(gpu, acts, batch);
    await expectGradientsMatchFiniteDifferences(tiny.model, acts, batch, tiny.host, tiny.adapters);
    tiny.arena.destroy();
  });
});

/**
 * Runs `body` with every rank-r product of the tiny Llama's step (u = x·Aᵀ, v = dy·B) tuned to the skinny matmul,
 * as autotuning on a GPU where it wins would leave them; returns the matmul programs that ran.
 */
async function onSkinny<T>(body: () => Promise<T>): Promise<{ result: T; ran: Set<string> }> {
  const shape = { family: 'llama' as const, ...TINY_LLAMA };
  for (const p of modelMatmulProblems(shape, gpu.limits, { tokens: B * T, rank: 4, dtype: 'f32' })) {
    if (!problemSkinny(p)) continue;
    gpu.tuning.set(
      'matmul',
      matmulShapeClass(p.dims, { aK: true, bK: p.transB === true }, p.types),
      'skinny',
    );
  }
  const ran = new Set<string>();
  const get = gpu.pipelines.get.bind(gpu.pipelines);
  gpu.pipelines.get = (program) => (ran.add(program.name), get(program));
  try {
    return { result: await body(), ran };
  } finally {
    gpu.pipelines.get = get;
    gpu.tuning.clear();
  }
}

describe('the rank-r LoRA products on the skinny matmul', () => {
  it('Llama with LoRA dropout 0.3: loss and LoRA gradients as on the tiled kernel, and by finite differences', async () => {
    const tiny = buildTinyLlama(gpu, 'f32', { dropout: 0.3 });
    const acts = tiny.model.createActivations(tiny.arena, B, T);
    const batch = randomBatch(TINY_LLAMA.vocab, B * T, 5);
    uploadBatch(gpu, acts, batch);
    const tiled = {
      loss: await modelLoss(tiny.model, acts, batch),
      grads: await modelGradients(tiny.model, acts, batch, tiny.host, tiny.adapters),
    };
    const { result: skinny, ran } = await onSkinny(async () => {
      await expectGradientsMatchFiniteDifferences(tiny.model, acts, batch, tiny.host, tiny.adapters);
      return {
        loss: await modelLoss(tiny.model, acts, batch),
        grads: await modelGradients(tiny.model, acts, batch, tiny.host, tiny.adapters),
      };
    });
    // u with its dropout mask (the stacked q, k, v and gate, up adapters) and v ran on it.
    expect([...ran].filter((n) => n.startsWith('matmul.skinny')).sort()).toEqual([
      'matmul.skinny16',
      'matmul.skinny16+mask_a+rng',
    ]);
    expect(Math.abs(skinny.loss - tiled.loss) / tiled.loss).toBeLessThan(1e-6);
    for (const [key, g] of tiled.grads) {
      for (const which of ['dA', 'dB'] as const) {
        expectClose(`${key}.${which}`, skinny.grads.get(key)![which], g[which], 1e-5);
      }
    }
    tiny.arena.destroy();
  });
});

describe.skipIf(skipF16)('f16 weights and activations', () => {
  it.each(['llama', 'qwen3', 'gemma3', 'gpt2'] as const)(
    '%s: loss and LoRA gradients within a few percent of f32',
    async (family) => {
      const results = new Map<
        ScalarType,
        { loss: number; grads: Map<string, { dA: Float64Array; dB: Float64Array }> }
      >();
      for (const dtype of ['f32', 'f16'] as const) {
        const tiny =
          family === 'gpt2'
            ? buildTinyGpt2(gpu, dtype, { seed: 3 })
            : family === 'gemma3'
              ? buildTinyGemma3(gpu, dtype, { seed: 3 })
              : buildTinyLlama(gpu, dtype, { seed: 3, dims: family === 'qwen3' ? QWEN3_DIMS : TINY_LLAMA });
        const acts = tiny.model.createActivations(tiny.arena, B, T);
        const batch = randomBatch(tiny.model.vocab, B * T, 8);
        uploadBatch(gpu, acts, batch);
        results.set(dtype, {
          loss: await modelLoss(tiny.model, acts, batch),
          grads: await modelGradients(tiny.model, acts, batch, tiny.host, tiny.adapters),
        });
        tiny.arena.destroy();
      }
      const f32 = results.get('f32')!;
      const f16 = results.get('f16')!;
      expect(Math.abs(f16.loss - f32.loss) / f32.loss).toBeLessThan(1e-2);
      let worst = 0;
      for (const [key, g] of f32.grads) {
        for (const which of ['dA', 'dB'] as const) {
          const ref = g[which];
          const got = f16.grads.get(key)![which];
          const scale = Math.max(...ref.map(Math.abs));
          const error = Math.max(...ref.map((v, i) => Math.abs(v - got[i]))) / scale;
          expect(error, `${key}.${which}`).toBeLessThan(5e-2);
          worst = Math.max(worst, error);
        }
      }
      console.log(`${family}: f16 vs f32 LoRA gradients, max rel error ${worst.toExponential(2)}`);
    },
  );
});
