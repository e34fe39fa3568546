// Tiny random models on the GPU for model tests: weights straight from a seeded RNG (no checkpoint needed).
import { BufferArena, type Gpu, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  GPT2_LINEARS,
  Gpt2Model,
  gpt2LinearShape,
  gpt2ModulePath,
  type Gpt2Dims,
  type Gpt2Weights,
} from '../../src/engine/model/gpt2.ts';
import {
  LLAMA_LINEARS,
  LlamaModel,
  linearShape,
  llamaModulePath,
  type LlamaDims,
  type LlamaLinearName,
  type LlamaWeights,
} from '../../src/engine/model/llama.ts';
import { Gemma3Model, type Gemma3Dims, type Gemma3Weights } from '../../src/engine/model/gemma3.ts';
import { randomArray } from '../reference/random.ts';
import { upload } from './harness.ts';
import { randomAdapters, type GpuAdapter, type HostAdapter } from './model-gradcheck.ts';

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

/**
 * Gemma 3 at tiny size: a sliding layer (window 3) then a global one, RoPE bases 1e4 and 1e6, head dim 48 ≠
 * hidden / heads, q/k norms, scores · 32^−½ (not 1/√48).
 */
export const TINY_GEMMA3: Gemma3Dims = {
  ...TINY_LLAMA,
  headDim: 48,
  rmsNormEps: 1e-6,
  ropeTheta: 1e6,
  qkNorm: true,
  windows: [3, null],
  slidingRope: { theta: 1e4, scaling: null },
  attentionScale: 32 ** -0.5,
};

export const TINY_GPT2: Gpt2Dims = {
  layers: 2,
  hidden: 64,
  heads: 2,
  ffn: 256,
  vocab: 101,
  positions: 32,
  layerNormEps: 1e-5,
};

export interface TinyModel<M> {
  model: M;
  host: HostAdapter[];
  adapters: Map<string, GpuAdapter>;
  arena: BufferArena;
}

interface Options {
  seed?: number;
  rank?: number;
  dropout?: number;
}

function randoms(seed: number) {
  let s = seed * 1000;
  const rand = (n: number, scale: number) => randomArray(n, s++, scale);
  return { rand, ones: (n: number) => rand(n, 0.1).map((v) => 1 + v) };
}

export function buildTinyLlama(
  gpu: Gpu,
  dtype: ScalarType,
  options: Options & { dims?: LlamaDims; targets?: readonly LlamaLinearName[] } = {},
): TinyModel<LlamaModel> {
  const dims = options.dims ?? TINY_LLAMA;
  const { rand, ones } = randoms(options.seed ?? 1);
  const { hidden: C, vocab: V, heads: H, kvHeads: Hkv, headDim: D } = dims;
  const up = (values: ArrayLike<number>) => upload(gpu, values, dtype);
  const weights: LlamaWeights = {
    dtype,
    embed: up(rand(V * C, 1)),
    finalNorm: up(ones(C)),
    lmHead: up(rand(V * C, 0.5)),
    layers: Array.from({ length: dims.layers }, () => {
      const linears = {} as LlamaWeights['layers'][number]['linears'];
      for (const name of LLAMA_LINEARS) {
        const { inFeatures, outFeatures } = linearShape(dims, name);
        linears[name] = up(rand(inFeatures * outFeatures, 1 / Math.sqrt(inFeatures)));
      }
      return {
        inputNorm: up(ones(C)),
        postAttentionNorm: up(ones(C)),
        linears,
        qkvBias: dims.qkvBias
          ? { q: up(rand(H * D, 0.2)), k: up(rand(Hkv * D, 0.2)), v: up(rand(Hkv * D, 0.2)) }
          : undefined,
        qkNorm: dims.qkNorm ? { q: up(ones(D)), k: up(ones(D)) } : undefined,
      };
    }),
  };
  const targets = options.targets ?? LLAMA_LINEARS;
  const modules = Array.from({ length: dims.layers }, (_, l) =>
    targets.map((name) => ({ key: llamaModulePath(l, name), ...linearShape(dims, name) })),
  ).flat();
  const { host, gpu: adapters } = randomAdapters(gpu, modules, {
    rank: options.rank ?? 4,
    seed: options.seed ?? 1,
    dropout: options.dropout,
  });
  return { model: new LlamaModel(gpu, dims, weights, adapters), host, adapters, arena: new BufferArena(gpu) };
}

/** Gemma 3's norms store w around 0 (the scale is 1 + w); its tied table is small (× √C on the way in). */
export function buildTinyGemma3(
  gpu: Gpu,
  dtype: ScalarType,
  options: Options & { dims?: Gemma3Dims; targets?: readonly LlamaLinearName[] } = {},
): TinyModel<Gemma3Model> {
  const dims = options.dims ?? TINY_GEMMA3;
  const { rand } = randoms(options.seed ?? 4);
  const { hidden: C, vocab: V, headDim: D } = dims;
  const up = (values: ArrayLike<number>) => upload(gpu, values, dtype);
  const norm = (n: number) => up(rand(n, 0.5));
  const embed = up(rand(V * C, 0.25));
  const weights: Gemma3Weights = {
    dtype,
    embed,
    finalNorm: norm(C),
    lmHead: embed,
    layers: Array.from({ length: dims.layers }, () => {
      const linears = {} as Gemma3Weights['layers'][number]['linears'];
      for (const name of LLAMA_LINEARS) {
        const { inFeatures, outFeatures } = linearShape(dims, name);
        linears[name] = up(rand(inFeatures * outFeatures, 1 / Math.sqrt(inFeatures)));
      }
      return {
        inputNorm: norm(C),
        postAttentionNorm: norm(C),
        preFeedforwardNorm: norm(C),
        postFeedforwardNorm: norm(C),
        qNorm: norm(D),
        kNorm: norm(D),
        linears,
      };
    }),
  };
  const targets = options.targets ?? LLAMA_LINEARS;
  const modules = Array.from({ length: dims.layers }, (_, l) =>
    targets.map((name) => ({ key: llamaModulePath(l, name), ...linearShape(dims, name) })),
  ).flat();
  const { host, gpu: adapters } = randomAdapters(gpu, modules, {
    rank: options.rank ?? 4,
    seed: options.seed ?? 4,
    dropout: options.dropout,
  });
  return {
    model: new Gemma3Model(gpu, dims, weights, adapters),
    host,
    adapters,
    arena: new BufferArena(gpu),
  };
}

export function buildTinyGpt2(
  gpu: Gpu,
  dtype: ScalarType,
  options: Options & { dims?: Gpt2Dims } = {},
): TinyModel<Gpt2Model> {
  const dims = options.dims ?? TINY_GPT2;
  const { rand, ones } = randoms(options.seed ?? 2);
  const { hidden: C, vocab: V } = dims;
  const up = (values: ArrayLike<number>) => upload(gpu, values, dtype);
  const weights: Gpt2Weights = {
    dtype,
    wte: up(rand(V * C, 0.5)),
    wpe: up(rand(dims.positions * C, 0.1)),
    lnF: { w: up(ones(C)), b: up(rand(C, 0.1)) },
    layers: Array.from({ length: dims.layers }, () => {
      const linears = {} as Gpt2Weights['layers'][number]['linears'];
      for (const name of GPT2_LINEARS) {
        const { inFeatures, outFeatures } = gpt2LinearShape(dims, name);
        linears[name] = {
          w: up(rand(inFeatures * outFeatures, 1 / Math.sqrt(inFeatures))),
          b: up(rand(outFeatures, 0.1)),
        };
      }
      return {
        ln1: { w: up(ones(C)), b: up(rand(C, 0.1)) },
        ln2: { w: up(ones(C)), b: up(rand(C, 0.1)) },
        linears,
      };
    }),
  };
  const modules = Array.from({ length: dims.layers }, (_, l) =>
    GPT2_LINEARS.map((name) => ({ key: gpt2ModulePath(l, name), ...gpt2LinearShape(dims, name) })),
  ).flat();
  const { host, gpu: adapters } = randomAdapters(gpu, modules, {
    rank: options.rank ?? 4,
    seed: options.seed ?? 2,
    dropout: options.dropout,
  });
  return { model: new Gpt2Model(gpu, dims, weights, adapters), host, adapters, arena: new BufferArena(gpu) };
}
