// Activation recomputation per block: the forward keeps only each block's input and the backward rebuilds the
// block in one shared workspace. It must change memory, not results: the same LoRA gradients (with LoRA dropout
// too: the masks are a hash of (seed, step, stream), so the recomputed forward draws the same ones), the same
// training losses, one submit per step, and fewer activation bytes allocated and estimated.
import { afterAll, describe, expect, it } from 'vitest';
import { BufferArena, CommandRecorder, type ScalarType } from '../../src/engine/gpu/index.ts';
import type { CausalLM, TrainingActivations } from '../../src/engine/model/causal-lm.ts';
import { estimateMemory } from '../../src/engine/model/memory.ts';
import { loadModel, type LoadedModel } from '../../src/engine/model/load.ts';
import { openModel } from '../../src/engine/model/open.ts';
import { Trainer, type StepMetrics, type TrainerOptions } from '../../src/engine/train/trainer.ts';
import { buildTinyModel, tinyModelFiles, type TinyArch } from '../fixtures/tiny-models.ts';
import { compare } from '../reference/compare.ts';
import { randomExamples } from '../fixtures/examples.ts';
import { download, f16SkipReason, testGpu } from './harness.ts';
import {
  randomBatch,
  uploadBatch,
  type Batch,
  type GpuAdapter,
  type HostAdapter,
} from './model-gradcheck.ts';
import {
  buildTinyGemma3,
  buildTinyGpt2,
  buildTinyLlama,
  TINY_GEMMA3,
  TINY_GPT2,
  TINY_LLAMA,
  type TinyModel,
} from './tiny-models.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
const B = 2;
const T = 7;
// Three layers, so the backward recomputes two blocks (the last one is still in the workspace).
const LAYERS = 3;

type AnyTiny = TinyModel<CausalLM>;

type Family = 'llama' | 'qwen2' | 'qwen3' | 'smollm3' | 'mistral' | 'gemma3' | 'gpt2';

function build(family: Family, dtype: ScalarType, dropout: number): AnyTiny {
  if (family === 'gpt2')
    return buildTinyGpt2(gpu, dtype, { dropout, dims: { ...TINY_GPT2, layers: LAYERS } });
  // Gemma 3's recomputed blocks rebuild m and the post-feedforward norm's statistics without the residual add.
  if (family === 'gemma3')
    return buildTinyGemma3(gpu, dtype, {
      dropout,
      dims: { ...TINY_GEMMA3, layers: LAYERS, windows: [3, 2, null] },
    });
  const variant = {
    llama: {},
    qwen2: { kvHeads: 1, qkvBias: true, rmsNormEps: 1e-6, ropeTheta: 1e6 },
    // The recomputed block rebuilds the q/k norms' outputs and statistics; layer 1 is a NoPE layer.
    qwen3: { headDim: 48, qkNorm: true, rmsNormEps: 1e-6, ropeTheta: 1e6 },
    smollm3: { noRopeLayers: [1] },
    // Sliding windows shorter than T = 7 on the recomputed blocks (and a global one).
    mistral: { windows: [3, null, 2] },
  }[family];
  return buildTinyLlama(gpu, dtype, { dropout, dims: { ...TINY_LLAMA, layers: LAYERS, ...variant } });
}

/** Loss and LoRA gradients of two micro-batches (distinct dropout steps) accumulated in one submit. */
async function lossAndGradients(
  model: CausalLM,
  acts: TrainingActivations,
  batches: Batch[],
  host: HostAdapter[],
  adapters: Map<string, GpuAdapter>,
): Promise<{ loss: number; grads: Float64Array }> {
  const rec = new CommandRecorder(model.gpu);
  for (const g of adapters.values()) {
    rec.clear(g.buffers.dA);
    rec.clear(g.buffers.dB);
  }
  const before = gpu.stats.submits;
  const staging: GPUBuffer[] = [];
  for (const [i, batch] of batches.entries()) {
    // Token ids travel through a staging copy, as in the trainer, so both micro-batches share one submit.
    const staged = gpu.device.createBuffer({
      size: 8 * B * T,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
    });
    staging.push(staged);
    gpu.device.queue.writeBuffer(staged, 0, Uint32Array.from(batch.tokens));
    gpu.device.queue.writeBuffer(staged, 4 * B * T, Int32Array.from(batch.targets));
    rec.copy(staged, 0, acts.tokens, 0, 4 * B * T);
    rec.copy(staged, 4 * B * T, acts.targets, 0, 4 * B * T);
    const invNormaliser = 1 / batches.reduce((s, b) => s + 1 / b.invNormaliser, 0);
    const dropout = { dropoutStep: 3 + i, dropoutOffset: i };
    model.forward(rec, acts, { invNormaliser, accumulate: i > 0, ...dropout });
    model.backward(rec, acts, { invNormaliser, lossScale: 1, ...dropout });
  }
  await rec.submitAndWait();
  staging.forEach((b) => b.destroy());
  expect(gpu.stats.submits - before).toBe(1);
  const loss = (await download(gpu, acts.loss, 1, 'f32'))[0];
  const parts: number[] = [];
  for (const h of host) {
    const g = adapters.get(h.key)!;
    parts.push(...(await download(gpu, g.buffers.dA, h.a.length, 'f32')));
    parts.push(...(await download(gpu, g.buffers.dB, h.b.length, 'f32')));
  }
  return { loss, grads: Float64Array.from(parts) };
}

describe('LoRA gradients with recompute equal those without (3 layers, two micro-batches)', () => {
  const cases: [Family, ScalarType, number, number][] = [
    ['llama', 'f32', 0, 1e-5],
    ['llama', 'f32', 0.3, 1e-5],
    ['qwen2', 'f32', 0, 1e-5],
    ['qwen2', 'f32', 0.3, 1e-5],
    ['qwen3', 'f32', 0.3, 1e-5],
    ['smollm3', 'f32', 0.3, 1e-5],
    ['mistral', 'f32', 0.3, 1e-5],
    ['gemma3', 'f32', 0.3, 1e-5],
    ['gemma3', 'f16', 0.3, 1e-2],
    ['gpt2', 'f32', 0, 1e-5],
    ['gpt2', 'f32', 0.3, 1e-5],
    ['llama', 'f16', 0.3, 1e-2],
    ['gpt2', 'f16', 0.3, 1e-2],
  ];
  it.each(cases)('%s %s, LoRA dropout %s: rel < %s', async (family, dtype, dropout, tolerance) => {
    if (dtype === 'f16' && skipF16) return;
    const tiny = build(family, dtype, dropout);
    const batches = [5, 6].map((seed) => randomBatch(tiny.model.vocab, B * T, seed));
    const results = [];
    for (const recompute of [false, true]) {
      const acts = tiny.model.createActivations(tiny.arena, B, T, { recompute });
      expect(acts.recompute).toBe(recompute);
      uploadBatch(gpu, acts, batches[0]);
      results.push(await lossAndGradients(tiny.model, acts, batches, tiny.host, tiny.adapters));
    }
    const [off, on] = results;
    const { relError, mismatches } = compare(on.grads, off.grads, tolerance);
    console.log(
      `${family} ${dtype} dropout ${dropout}: loss ${off.loss} vs ${on.loss}; ` +
        `LoRA grads (${off.grads.length}) max rel diff ${relError.toExponential(2)}`,
    );
    expect(mismatches, mismatches.join('\n')).toEqual([]);
    expect(relError).toBeLessThan(tolerance);
    expect(Math.abs(on.loss - off.loss) / off.loss).toBeLessThan(tolerance);
    // Dropout must act at all: its gradients differ from those of the same model without it.
    if (dropout > 0) {
      const plain = build(family, dtype, 0);
      const acts = plain.model.createActivations(plain.arena, B, T, { recompute: true });
      const without = await lossAndGradients(plain.model, acts, batches, plain.host, plain.adapters);
      expect(compare(without.grads, on.grads, tolerance).relError).toBeGreaterThan(1e-3);
      plain.arena.destroy();
    }
    tiny.arena.destroy();
  });
});

describe('activation memory', () => {
  it('recompute allocates the saved block inputs plus one block workspace instead of L blocks', () => {
    const bytes = (family: 'llama' | 'gpt2', layers: number, recompute: boolean) => {
      const tiny =
        family === 'llama'
          ? buildTinyLlama(gpu, 'f32', { dims: { ...TINY_LLAMA, layers } })
          : buildTinyGpt2(gpu, 'f32', { dims: { ...TINY_GPT2, layers } });
      const arena = new BufferArena(gpu);
      tiny.model.createActivations(arena, B, T, { recompute });
      const held = arena.bytesInUse;
      arena.destroy();
      tiny.arena.destroy();
      return held;
    };
    for (const family of ['llama', 'gpt2'] as const) {
      const C = family === 'llama' ? TINY_LLAMA.hidden : TINY_GPT2.hidden;
      const x = 4 * B * T * C; // one saved block input (f32)
      const full = bytes(family, 4, false);
      const onBlock = full - bytes(family, 3, false); // one layer's activations, its input included
      const recompute = bytes(family, 4, true);
      console.log(
        `${family} 4 layers, B ${B} × T ${T}, f32: activations ${full} B without recompute, ${recompute} B with`,
      );
      expect(recompute).toBeLessThan(full);
      // Saved: every block's internals but one.
      expect(full - recompute).toBe(3 * (onBlock - x));
      // A single layer has nothing to recompute and allocates the same either way.
      expect(bytes(family, 1, true)).toBe(bytes(family, 1, false));
    }
  });
});

// ── The trainer, on checkpoints loaded from HF layout ──

const loadedModels: LoadedModel[] = [];
afterAll(() => loadedModels.forEach((m) => m.destroy()));

async function load(arch: TinyArch, precision: 'f32' | 'f16') {
  const opened = await openModel(tinyModelFiles(buildTinyModel({ arch, dtype: 'F32' })));
  const loaded = await loadModel(gpu, opened, { precision });
  loadedModels.push(loaded);
  return loaded;
}

describe('the trainer with recompute', () => {
  const options = (recompute: boolean): TrainerOptions => ({
    lora: { r: 4, alpha: 8, dropout: 0.1, targets: 'all-linear', rslora: false },
    optimizer: 'adamw',
    lr: 1e-2,
    schedule: 'constant',
    batch: 2,
    accum: 2,
    seq: 12,
    steps: 4,
    maxGradNorm: 1,
    seed: 3,
    recompute,
  });

  it.each([
    ['llama', 'f32'],
    ['qwen2', 'f32'],
    ['gpt2', 'f32'],
    ['llama', 'f16'],
  ] as const)(
    '%s %s: the same step losses and grad norms, one submit per step, fewer bytes',
    async (arch, precision) => {
      if (precision === 'f16' && skipF16) return;
      const loaded = await load(arch, precision);
      const rows = randomExamples(loaded.spec.vocab, 6, 13, 29);
      const runs: { steps: StepMetrics[]; bytes: number; submits: number }[] = [];
      for (const recompute of [false, true]) {
        const trainer = new Trainer(gpu, loaded, rows, [], 0, options(recompute));
        const steps: StepMetrics[] = [];
        const before = gpu.stats.submits;
        await trainer.run({ onStep: (m) => steps.push(m) });
        runs.push({ steps, bytes: trainer.gpuBytes, submits: gpu.stats.submits - before });
        trainer.destroy();
      }
      const [off, on] = runs;
      console.log(
        `${arch} ${precision}: losses off ${off.steps.map((m) => m.loss).join(', ')}; on ${on.steps.map((m) => m.loss).join(', ')}; ` +
          `trainer bytes ${off.bytes} → ${on.bytes}`,
      );
      const tolerance = precision === 'f32' ? 1e-5 : 1e-2;
      for (const [i, m] of off.steps.entries()) {
        expect(Math.abs(on.steps[i].loss - m.loss) / m.loss).toBeLessThan(tolerance);
        expect(Math.abs(on.steps[i].gradNorm - m.gradNorm) / m.gradNorm).toBeLessThan(tolerance);
      }
      expect(on.steps.at(-1)!.loss).toBeLessThan(on.steps[0].loss);
      expect(on.submits).toBe(4);
      expect(off.submits).toBe(4);
      expect(on.bytes).toBeLessThan(off.bytes);
    },
  );

  it('the estimate with recompute (what the trainer checks before allocating) is smaller too', async () => {
    const loaded = await load('llama', 'f32');
    const opts = { batch: 4, seq: 64, precision: 'f32' as const, lora: { rank: 8, targets: ['q_proj'] } };
    const off = estimateMemory(loaded.spec, opts);
    const on = estimateMemory(loaded.spec, { ...opts, recompute: true });
    console.log(
      `estimate, tiny llama (${loaded.spec.layers} layers) B 4 × T 64 f32: activations ${off.activations.bytes} B → ${on.activations.bytes} B`,
    );
    expect(on.activations.bytes).toBeLessThan(off.activations.bytes);
  });
});
