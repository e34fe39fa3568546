// Shared checks for GPU models with LoRA: loss, analytic adapter gradients, and 4th-order finite differences.
import { CommandRecorder, type Gpu } from '../../src/engine/gpu/index.ts';
import { IGNORE_INDEX } from '../../src/engine/kernels/crossentropy.ts';
import type { CausalLM, TrainingActivations } from '../../src/engine/model/causal-lm.ts';
import type { LoraAdapter } from '../../src/engine/model/linear.ts';
import { rng } from '../reference/random.ts';
import { download, encode, upload } from './harness.ts';

export interface HostAdapter {
  key: string;
  r: number;
  inFeatures: number;
  outFeatures: number;
  a: Float64Array;
  b: Float64Array;
}

export type GpuAdapter = LoraAdapter & { buffers: Record<'a' | 'b' | 'dA' | 'dB', GPUBuffer> };

/** Adapters with random A and a non-zero B (PEFT starts B at 0), so every gradient path is exercised. */
export function randomAdapters(
  gpu: Gpu,
  modules: { key: string; inFeatures: number; outFeatures: number }[],
  options: { rank: number; seed: number; dropout?: number },
): { host: HostAdapter[]; gpu: Map<string, GpuAdapter> } {
  const host: HostAdapter[] = [];
  const gpuAdapters = new Map<string, GpuAdapter>();
  const next = rng(options.seed);
  const rand = (n: number, scale: number) => Float64Array.from({ length: n }, () => (2 * next() - 1) * scale);
  const r = options.rank;
  for (const m of modules) {
    const h = {
      ...m,
      r,
      a: rand(r * m.inFeatures, 1 / Math.sqrt(m.inFeatures)),
      b: rand(m.outFeatures * r, 0.3),
    };
    host.push(h);
    const buffers = {
      a: upload(gpu, h.a, 'f32'),
      b: upload(gpu, h.b, 'f32'),
      dA: upload(gpu, new Float64Array(h.a.length), 'f32'),
      dB: upload(gpu, new Float64Array(h.b.length), 'f32'),
    };
    const dropout = options.dropout ? { p: options.dropout, seed: 7, stream: host.length } : undefined;
    gpuAdapters.set(m.key, { r, scaling: 2, dropout, ...buffers, buffers });
  }
  return { host, gpu: gpuAdapters };
}

export function syncAdapters(gpu: Gpu, host: HostAdapter[], adapters: Map<string, GpuAdapter>): void {
  for (const h of host) {
    const g = adapters.get(h.key)!;
    gpu.device.queue.writeBuffer(g.buffers.a, 0, encode(h.a, 'f32'));
    gpu.device.queue.writeBuffer(g.buffers.b, 0, encode(h.b, 'f32'));
  }
}

export interface Batch {
  tokens: number[];
  targets: number[];
  invNormaliser: number;
}

export function randomBatch(vocab: number, tokens: number, seed: number): Batch {
  const next = rng(seed);
  const ids = Array.from({ length: tokens }, () => Math.floor(next() * vocab));
  const targets = ids.map((_, i) => (i % 5 === 3 ? IGNORE_INDEX : Math.floor(next() * vocab)));
  return { tokens: ids, targets, invNormaliser: 1 / targets.filter((t) => t !== IGNORE_INDEX).length };
}

export function uploadBatch(gpu: Gpu, acts: TrainingActivations, batch: Batch): void {
  gpu.device.queue.writeBuffer(acts.tokens, 0, Uint32Array.from(batch.tokens));
  gpu.device.queue.writeBuffer(acts.targets, 0, Int32Array.from(batch.targets));
}

export async function modelLoss<A extends TrainingActivations>(
  model: CausalLM<A>,
  acts: A,
  batch: Batch,
): Promise<number> {
  const rec = new CommandRecorder(model.gpu);
  model.forward(rec, acts, { invNormaliser: batch.invNormaliser, accumulate: false });
  await rec.submitAndWait();
  return (await download(model.gpu, acts.loss, 1, 'f32'))[0];
}

export async function modelGradients<A extends TrainingActivations>(
  model: CausalLM<A>,
  acts: A,
  batch: Batch,
  host: HostAdapter[],
  adapters: Map<string, GpuAdapter>,
): Promise<Map<string, { dA: Float64Array; dB: Float64Array }>> {
  const rec = new CommandRecorder(model.gpu);
  for (const g of adapters.values()) {
    rec.clear(g.buffers.dA);
    rec.clear(g.buffers.dB);
  }
  model.forward(rec, acts, { invNormaliser: batch.invNormaliser, accumulate: false });
  model.backward(rec, acts, { invNormaliser: batch.invNormaliser, lossScale: 1 });
  await rec.submitAndWait();
  const out = new Map<string, { dA: Float64Array; dB: Float64Array }>();
  for (const h of host) {
    const g = adapters.get(h.key)!;
    out.set(h.key, {
      dA: await download(model.gpu, g.buffers.dA, h.a.length, 'f32'),
      dB: await download(model.gpu, g.buffers.dB, h.b.length, 'f32'),
    });
  }
  return out;
}

/**
 * Compares analytic LoRA gradients with 4th-order central differences of the GPU loss at a few random
 * coordinates of every A and B; throws with the numbers when the normwise error reaches `tolerance`, else returns
 * the largest error over the adapters.
 */
export async function expectGradientsMatchFiniteDifferences<A extends TrainingActivations>(
  model: CausalLM<A>,
  acts: A,
  batch: Batch,
  host: HostAdapter[],
  adapters: Map<string, GpuAdapter>,
  tolerance = 1e-3,
  samples = 2,
): Promise<number> {
  const grads = await modelGradients(model, acts, batch, host, adapters);
  let worst = 0;
  // The f32 loss is only good to ~1e-7 relative, so h must be large; the O(h⁴) stencil keeps truncation small.
  const h = 3e-2;
  const pick = rng(99);
  for (const adapter of host) {
    const analytic: number[] = [];
    const numeric: number[] = [];
    for (const which of ['a', 'b'] as const) {
      const values = adapter[which];
      for (let j = 0; j < samples; j++) {
        const i = Math.floor(pick() * values.length);
        const keep = values[i];
        const at = async (delta: number) => {
          values[i] = keep + delta;
          syncAdapters(model.gpu, host, adapters);
          return modelLoss(model, acts, batch);
        };
        const [p1, m1, p2, m2] = [await at(h), await at(-h), await at(2 * h), await at(-2 * h)];
        values[i] = keep;
        numeric.push((8 * (p1 - m1) - (p2 - m2)) / (12 * h));
        analytic.push(grads.get(adapter.key)![which === 'a' ? 'dA' : 'dB'][i]);
      }
    }
    syncAdapters(model.gpu, host, adapters);
    // Normwise, as the kernel tests: relative to the largest entry of this adapter's whole gradient.
    const g = grads.get(adapter.key)!;
    const scale = Math.max(...g.dA.map(Math.abs), ...g.dB.map(Math.abs), 1e-8);
    const error = Math.max(...analytic.map((v, i) => Math.abs(v - numeric[i]))) / scale;
    if (!(error < tolerance)) {
      throw new Error(`${adapter.key}: FD rel error ${error}\n  analytic ${analytic}\n  numeric  ${numeric}`);
    }
    worst = Math.max(worst, error);
  }
  return worst;
}
