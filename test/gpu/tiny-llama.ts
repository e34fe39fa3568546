// A tiny random Llama on the GPU for model tests: weights straight from a seeded RNG (no checkpoint needed).
import { BufferArena, type Gpu, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  LLAMA_LINEARS,
  LlamaActivations,
  LlamaModel,
  linearShape,
  type LlamaDims,
  type LlamaLinearName,
  type LlamaWeights,
} from '../../src/engine/model/llama.ts';
import type { LoraAdapter } from '../../src/engine/model/linear.ts';
import { randomArray } from '../reference/random.ts';
import { encode, upload } from './harness.ts';

export const TINY_LLAMA: LlamaDims = {
  layers: 2,
  hidden: 64,
  heads: 4,
  kvHeads: 2,
  headDim: 32,
  ffn: 96,
  vocab: 97,
  rmsNormEps: 1e-5,
  ropeTheta: 10000,
  qkvBias: false,
};

export interface HostAdapter {
  key: string;
  r: number;
  inFeatures: number;
  outFeatures: number;
  a: Float64Array;
  b: Float64Array;
}

export interface TinyLlama {
  model: LlamaModel;
  adapters: HostAdapter[];
  /** Writes host adapter values to the GPU (after perturbing them). */
  syncAdapters(): void;
  /** Reads dA and dB of every adapter. */
  gpuAdapters: Map<string, LoraAdapter & { buffers: Record<'a' | 'b' | 'dA' | 'dB', GPUBuffer> }>;
}

export function buildTinyLlama(
  gpu: Gpu,
  dtype: ScalarType,
  options: {
    dims?: LlamaDims;
    seed?: number;
    rank?: number;
    targets?: readonly LlamaLinearName[];
    dropout?: number;
  } = {},
): TinyLlama {
  const dims = options.dims ?? TINY_LLAMA;
  const seed = options.seed ?? 1;
  const r = options.rank ?? 4;
  let s = seed * 1000;
  const rand = (n: number, scale: number) => randomArray(n, s++, scale);
  const ones = (n: number) => rand(n, 0.1).map((v) => 1 + v);
  const { hidden: C, vocab: V } = dims;
  const up = (values: ArrayLike<number>) => upload(gpu, values, dtype);
  const weights: LlamaWeights = {
    dtype,
    embed: up(rand(V * C, 1)),
    finalNorm: up(ones(C)),
    lmHead: up(rand(V * C, 0.5)),
    layers: Array.from({ length: dims.layers }, () => {
      const linears = {} as Record<LlamaLinearName, GPUBuffer>;
      for (const name of LLAMA_LINEARS) {
        const { inFeatures, outFeatures } = linearShape(dims, name);
        linears[name] = up(rand(inFeatures * outFeatures, 1 / Math.sqrt(inFeatures)));
      }
      const { heads: H, kvHeads: Hkv, headDim: D } = dims;
      return {
        inputNorm: up(ones(C)),
        postAttentionNorm: up(ones(C)),
        linears,
        qkvBias: dims.qkvBias
          ? { q: up(rand(H * D, 0.2)), k: up(rand(Hkv * D, 0.2)), v: up(rand(Hkv * D, 0.2)) }
          : undefined,
      };
    }),
  };

  const targets = options.targets ?? LLAMA_LINEARS;
  const adapters: HostAdapter[] = [];
  const gpuAdapters: TinyLlama['gpuAdapters'] = new Map();
  for (let l = 0; l < dims.layers; l++) {
    for (const name of targets) {
      const { inFeatures, outFeatures } = linearShape(dims, name);
      // B is non-zero (PEFT starts it at 0) so every gradient path is exercised.
      const host = {
        key: `${l}.${name}`,
        r,
        inFeatures,
        outFeatures,
        a: rand(r * inFeatures, 1 / Math.sqrt(inFeatures)),
        b: rand(outFeatures * r, 0.3),
      };
      adapters.push(host);
      const buffers = {
        a: upload(gpu, host.a, 'f32'),
        b: upload(gpu, host.b, 'f32'),
        dA: upload(gpu, new Float64Array(r * inFeatures), 'f32'),
        dB: upload(gpu, new Float64Array(outFeatures * r), 'f32'),
      };
      const dropout = options.dropout ? { p: options.dropout, seed: 7, stream: adapters.length } : undefined;
      gpuAdapters.set(host.key, { r, scaling: 2, dropout, ...buffers, buffers });
    }
  }
  const model = new LlamaModel(gpu, dims, weights, gpuAdapters);
  return {
    model,
    adapters,
    gpuAdapters,
    syncAdapters() {
      for (const host of adapters) {
        const g = gpuAdapters.get(host.key)!;
        gpu.device.queue.writeBuffer(g.buffers.a, 0, encode(host.a, 'f32'));
        gpu.device.queue.writeBuffer(g.buffers.b, 0, encode(host.b, 'f32'));
      }
    },
  };
}

export function activationsFor(tiny: TinyLlama, batch: number, seq: number): LlamaActivations {
  return new LlamaActivations(new BufferArena(tiny.model.gpu), tiny.model, batch, seq);
}
