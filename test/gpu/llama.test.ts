import { describe, expect, it } from 'vitest';
import { CommandRecorder, type Gpu, type ScalarType } from '../../src/engine/gpu/index.ts';
import { IGNORE_INDEX } from '../../src/engine/kernels/crossentropy.ts';
import type { LlamaActivations } from '../../src/engine/model/llama.ts';
import { rng } from '../reference/random.ts';
import { download, f16SkipReason, testGpu } from './harness.ts';
import { activationsFor, buildTinyLlama, TINY_LLAMA, type TinyLlama } from './tiny-llama.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
const B = 2;
const T = 7;

function batchData(seed: number) {
  const next = rng(seed);
  const tokens = Array.from({ length: B * T }, () => Math.floor(next() * TINY_LLAMA.vocab));
  const targets = tokens.map((_, i) => (i % 5 === 3 ? IGNORE_INDEX : Math.floor(next() * TINY_LLAMA.vocab)));
  const valid = targets.filter((t) => t !== IGNORE_INDEX).length;
  return { tokens, targets, invNormaliser: 1 / valid };
}

function upload(gpu: Gpu, acts: LlamaActivations, data: ReturnType<typeof batchData>) {
  gpu.device.queue.writeBuffer(acts.tokens, 0, Uint32Array.from(data.tokens));
  gpu.device.queue.writeBuffer(acts.targets, 0, Int32Array.from(data.targets));
}

async function loss(
  tiny: TinyLlama,
  acts: LlamaActivations,
  data: ReturnType<typeof batchData>,
): Promise<number> {
  const rec = new CommandRecorder(gpu);
  tiny.model.forward(rec, acts, { invNormaliser: data.invNormaliser, accumulate: false });
  await rec.submitAndWait();
  return (await download(gpu, acts.loss, 1, 'f32'))[0];
}

async function gradients(tiny: TinyLlama, acts: LlamaActivations, data: ReturnType<typeof batchData>) {
  const rec = new CommandRecorder(gpu);
  for (const g of tiny.gpuAdapters.values()) {
    rec.clear(g.buffers.dA);
    rec.clear(g.buffers.dB);
  }
  tiny.model.forward(rec, acts, { invNormaliser: data.invNormaliser, accumulate: false });
  tiny.model.backward(rec, acts, { invNormaliser: data.invNormaliser, lossScale: 1 });
  await rec.submitAndWait();
  const out = new Map<string, { dA: Float64Array; dB: Float64Array }>();
  for (const host of tiny.adapters) {
    const g = tiny.gpuAdapters.get(host.key)!;
    out.set(host.key, {
      dA: await download(gpu, g.buffers.dA, host.a.length, 'f32'),
      dB: await download(gpu, g.buffers.dB, host.b.length, 'f32'),
    });
  }
  return out;
}

describe('Llama forward and backward on the GPU', () => {
  it.each([
    ['Llama (GQA 4:2)', TINY_LLAMA, 0],
    [
      'Qwen2 (q/k/v bias, GQA 4:1)',
      { ...TINY_LLAMA, kvHeads: 1, qkvBias: true, rmsNormEps: 1e-6, ropeTheta: 1e6 },
      0,
    ],
    ['Llama with LoRA dropout 0.3 (fixed mask)', TINY_LLAMA, 0.3],
  ])(
    '%s f32: every LoRA gradient matches 4th-order finite differences of the GPU loss (rel < 1e-3)',
    async (_name, dims, dropout) => {
      const tiny = buildTinyLlama(gpu, 'f32', { dims, dropout });
      const acts = activationsFor(tiny, B, T);
      const data = batchData(5);
      upload(gpu, acts, data);
      const l0 = await loss(tiny, acts, data);
      expect(l0).toBeGreaterThan(0);
      const grads = await gradients(tiny, acts, data);

      // Fourth-order central differences: the f32 loss is only good to ~1e-7 relative, so h must be large, and
      // the O(h⁴) stencil keeps the truncation error far below the 1e-3 bound at that h.
      const h = 3e-2;
      const pick = rng(99);
      for (const host of tiny.adapters) {
        const analytic: number[] = [];
        const numeric: number[] = [];
        for (const which of ['a', 'b'] as const) {
          const values = host[which];
          for (let j = 0; j < 2; j++) {
            const i = Math.floor(pick() * values.length);
            const keep = values[i];
            const at = async (delta: number) => {
              values[i] = keep + delta;
              tiny.syncAdapters();
              return loss(tiny, acts, data);
            };
            const [p1, m1, p2, m2] = [await at(h), await at(-h), await at(2 * h), await at(-2 * h)];
            values[i] = keep;
            numeric.push((8 * (p1 - m1) - (p2 - m2)) / (12 * h));
            analytic.push(grads.get(host.key)![which === 'a' ? 'dA' : 'dB'][i]);
          }
        }
        tiny.syncAdapters();
        // Normwise, as the kernel tests: relative to the largest entry of this adapter's whole gradient.
        const g = grads.get(host.key)!;
        const scale = Math.max(...g.dA.map(Math.abs), ...g.dB.map(Math.abs), 1e-8);
        const error = Math.max(...analytic.map((g, i) => Math.abs(g - numeric[i]))) / scale;
        if (!(error < 1e-3)) {
          throw new Error(
            `${host.key}: FD rel error ${error}\n  analytic ${analytic}\n  numeric  ${numeric}`,
          );
        }
      }
    },
  );

  it.skipIf(skipF16)(
    'f16 weights and activations give the f32 loss and gradients within a few percent',
    async () => {
      const data = batchData(8);
      const results = new Map<ScalarType, { loss: number; grads: Awaited<ReturnType<typeof gradients>> }>();
      for (const dtype of ['f32', 'f16'] as const) {
        const tiny = buildTinyLlama(gpu, dtype, { seed: 3 });
        const acts = activationsFor(tiny, B, T);
        upload(gpu, acts, data);
        results.set(dtype, { loss: await loss(tiny, acts, data), grads: await gradients(tiny, acts, data) });
      }
      const f32 = results.get('f32')!;
      const f16 = results.get('f16')!;
      expect(Math.abs(f16.loss - f32.loss) / f32.loss).toBeLessThan(1e-2);
      for (const [key, g] of f32.grads) {
        for (const which of ['dA', 'dB'] as const) {
          const ref = g[which];
          const got = f16.grads.get(key)![which];
          const scale = Math.max(...ref.map(Math.abs));
          const error = Math.max(...ref.map((v, i) => Math.abs(v - got[i]))) / scale;
          expect(error, `${key}.${which}`).toBeLessThan(5e-2);
        }
      }
    },
  );
});
