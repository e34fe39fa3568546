// Streams an opened checkpoint onto the GPU, tensor by tensor, in the device's precision, and builds the
// model family's weights. The frozen weights are loaded once; `withAdapters` makes a model over them for
// each trial's fresh LoRA adapters.

import { BufferArena, GpuLimitError, formatBytes, type Gpu, type Precision } from '../gpu/index.ts';
import type { CausalLM } from './causal-lm.ts';
import type { ModelSpec } from './config.ts';
import { Gemma3Model, gemma3Dims, type Gemma3Weights } from './gemma3.ts';
import { Gpt2Model, gpt2Dims, type Gpt2LinearName, type Gpt2Weights } from './gpt2.ts';
import type { LoraAdapter } from './linear.ts';
import { LlamaModel, llamaDims, type LlamaLinearName, type LlamaWeights } from './llama.ts';
import type { OpenedModel } from './open.ts';
import { readWeights, listWeights, type Gpt2BlockWeights, type RopeBlockWeights } from './weights.ts';

export { gemma3Dims } from './gemma3-shape.ts';
export { gpt2Dims } from './gpt2-shape.ts';
export { llamaDims } from './llama-shape.ts';

export interface LoadProgress {
  tensor: string;
  loaded: number;
  total: number;
  bytes: number;
}

export interface LoadedModel {
  spec: ModelSpec;
  precision: Precision;
  arena: BufferArena;
  /** Bytes of frozen weights on the GPU. */
  weightBytes: number;
  /** Finite checkpoint values that did not fit f16 (saturated to ±65504 — reported, not hidden). */
  f16Overflow: number;
  withAdapters(adapters: ReadonlyMap<string, LoraAdapter>): CausalLM;
  destroy(): void;
}

/**
 * Uploads every parameter of `opened` (already validated against its config) to the GPU. Never holds more
 * than one converted tensor in JS memory. `precision` defaults to the device's policy.
 */
export async function loadModel(
  gpu: Gpu,
  opened: OpenedModel,
  options: { precision?: Precision; onProgress?: (p: LoadProgress) => void } = {},
): Promise<LoadedModel> {
  const precision = options.precision ?? gpu.precision;
  if (precision === 'f16' && !gpu.hasF16) {
    throw new GpuLimitError("f16 weights need the 'shader-f16' feature, which this GPU lacks: use f32");
  }
  const { spec } = opened;
  const expected = listWeights(opened.weights.weights);
  const bytesPer = precision === 'f16' ? 2 : 4;
  for (const t of expected) {
    const bytes = bytesPer * t.shape.reduce((a, b) => a * b, 1);
    try {
      gpu.assertBufferFits(t.name, bytes);
    } catch (error) {
      throw new GpuLimitError(
        `${(error as Error).message}. tunelab does not split tensors across buffers yet, so ${spec.architecture} ` +
          `with a ${formatBytes(bytes)} '${t.name}' cannot load on this GPU.`,
      );
    }
  }

  const arena = new BufferArena(gpu);
  const buffers = new Map<string, GPUBuffer>();
  let f16Overflow = 0;
  let loaded = 0;
  let weightBytes = 0;
  try {
    for await (const tensor of readWeights(opened.checkpoint, opened.weights, precision)) {
      const buffer = arena.upload(tensor.name, tensor.data as ArrayBufferView<ArrayBuffer>);
      buffers.set(tensor.name, buffer);
      f16Overflow += tensor.f16Overflow;
      weightBytes += tensor.data.byteLength;
      loaded++;
      options.onProgress?.({ tensor: tensor.name, loaded, total: expected.length, bytes: weightBytes });
    }
    await gpu.settle();
  } catch (error) {
    arena.destroy();
    throw error;
  }
  const get = (name: string): GPUBuffer => {
    const buffer = buffers.get(name);
    if (!buffer) throw new Error(`internal: tensor '${name}' was not uploaded`);
    return buffer;
  };
  const names = opened.weights.weights;
  let build: (adapters: ReadonlyMap<string, LoraAdapter>) => CausalLM;
  if (spec.family === 'gpt2') {
    const weights: Gpt2Weights = {
      dtype: precision,
      wte: get(names.embed.name),
      wpe: get(names.positions!.name),
      lnF: { w: get(names.finalNorm.name), b: get(names.finalNormBias!.name) },
      layers: names.blocks.map((block) => {
        const b = block as Gpt2BlockWeights;
        const pair = (w: { name: string }, bias: { name: string }) => ({ w: get(w.name), b: get(bias.name) });
        const linears: Record<Gpt2LinearName, { w: GPUBuffer; b: GPUBuffer }> = {
          'attn.c_attn': pair(b.qkv, b.qkvBias),
          'attn.c_proj': pair(b.o, b.oBias),
          'mlp.c_fc': pair(b.fc, b.fcBias),
          'mlp.c_proj': pair(b.proj, b.projBias),
        };
        return { ln1: pair(b.ln1, b.ln1Bias), ln2: pair(b.ln2, b.ln2Bias), linears };
      }),
    };
    const dims = gpt2Dims(spec);
    build = (adapters) => new Gpt2Model(gpu, dims, weights, adapters);
  } else if (spec.family === 'gemma3') {
    const weights: Gemma3Weights = {
      dtype: precision,
      embed: get(names.embed.name),
      finalNorm: get(names.finalNorm.name),
      lmHead: get(names.lmHead.name),
      layers: names.blocks.map((block) => {
        const b = block as RopeBlockWeights;
        return {
          inputNorm: get(b.inputNorm.name),
          postAttentionNorm: get(b.postNorm.name),
          preFeedforwardNorm: get(b.preFfwNorm!.name),
          postFeedforwardNorm: get(b.postFfwNorm!.name),
          qNorm: get(b.qNorm!.name),
          kNorm: get(b.kNorm!.name),
          linears: ropeLinears(b, get),
        };
      }),
    };
    const dims = gemma3Dims(spec);
    build = (adapters) => new Gemma3Model(gpu, dims, weights, adapters);
  } else {
    const weights: LlamaWeights = {
      dtype: precision,
      embed: get(names.embed.name),
      finalNorm: get(names.finalNorm.name),
      lmHead: get(names.lmHead.name),
      layers: names.blocks.map((block) => {
        const b = block as RopeBlockWeights;
        return {
          inputNorm: get(b.inputNorm.name),
          postAttentionNorm: get(b.postNorm.name),
          linears: ropeLinears(b, get),
          qkvBias: b.qBias
            ? { q: get(b.qBias.name), k: get(b.kBias!.name), v: get(b.vBias!.name) }
            : undefined,
          oBias: b.oBias ? get(b.oBias.name) : undefined,
          qkNorm: b.qNorm && b.kNorm ? { q: get(b.qNorm.name), k: get(b.kNorm.name) } : undefined,
        };
      }),
    };
    const dims = llamaDims(spec);
    build = (adapters) => new LlamaModel(gpu, dims, weights, adapters);
  }
  return {
    spec,
    precision,
    arena,
    weightBytes,
    f16Overflow,
    withAdapters: build,
    destroy: () => arena.destroy(),
  };
}

/** A rope block's seven linears, by the engine's names. */
function ropeLinears(
  b: RopeBlockWeights,
  get: (name: string) => GPUBuffer,
): Record<LlamaLinearName, GPUBuffer> {
  return {
    q_proj: get(b.q.name),
    k_proj: get(b.k.name),
    v_proj: get(b.v.name),
    o_proj: get(b.o.name),
    gate_proj: get(b.gate.name),
    up_proj: get(b.up.name),
    down_proj: get(b.down.name),
  };
}
