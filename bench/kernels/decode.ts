// One KV-cache decode step of a SmolLM2-135M-shaped model (C = 576, H = 9, Hkv = 3, D = 64, F = 1536,
// V = 49152, tied head), B = 1, f16: the new token attends over a 256-position cache (kvLength = 256), then
// the final norm and the (1, V) head. Everything one `InferenceSession.forward` records for a decode step
// (15 dispatches per layer, 29 with LoRA), without the readback and host sampling. Rows: 4 and 8 of the 30
// layers (the profiler times at most 256 dispatches), and 4 layers with LoRA r = 16 on every linear.
// Weights are zeros: speed does not depend on the values, and random f16 for 135M parameters takes seconds
// of host time to make. Flops: 2 per weight (linears and head) plus the attention's 4·H·L·D per layer;
// bytes: every weight, the cache read once, the logits written.
import { BufferArena, type Gpu } from '../../src/engine/gpu/index.ts';
import { InferenceSession } from '../../src/engine/model/inference.ts';
import type { LoraAdapter } from '../../src/engine/model/linear.ts';
import {
  LLAMA_LINEARS,
  LlamaModel,
  linearShape,
  llamaModulePath,
  type LlamaDims,
  type LlamaWeights,
} from '../../src/engine/model/llama.ts';
import { SMOL, type KernelBenchCase } from './types.ts';

const CACHE = 256;

function smolDims(layers: number): LlamaDims {
  return {
    layers,
    hidden: SMOL.hidden,
    heads: SMOL.heads,
    kvHeads: SMOL.kvHeads,
    headDim: SMOL.headDim,
    ffn: SMOL.ffn,
    vocab: SMOL.vocab,
    rmsNormEps: 1e-5,
    ropeTheta: 100000,
    qkvBias: false,
  };
}

function decodeStep(layers: number, rank: number): KernelBenchCase {
  const dims = smolDims(layers);
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, vocab: V } = dims;
  const e = 2;
  const linearParams = LLAMA_LINEARS.reduce((sum, name) => {
    const { inFeatures, outFeatures } = linearShape(dims, name);
    return sum + inFeatures * outFeatures;
  }, 0);
  const loraParams = rank
    ? LLAMA_LINEARS.reduce((sum, name) => {
        const { inFeatures, outFeatures } = linearShape(dims, name);
        return sum + rank * (inFeatures + outFeatures);
      }, 0)
    : 0;
  const attentionFlops = 4 * H * CACHE * D;
  return {
    name:
      `decode step SmolLM2-135M shape, ${layers} of 30 layers${rank ? `, LoRA r=${rank} all linears` : ''}, ` +
      `cache ${CACHE}, B=1 f16`,
    flops: layers * (2 * linearParams + 2 * loraParams + attentionFlops) + 2 * V * C,
    bytes:
      layers * (e * linearParams + 4 * loraParams + 2 * e * CACHE * Hkv * D + 2 * e * C) +
      e * V * C +
      e * C +
      4 * V,
    setup(gpu: Gpu) {
      const arena = new BufferArena(gpu);
      const alloc = (name: string, elements: number, bytes = e) => arena.alloc(name, bytes * elements);
      const embed = alloc('embed', V * C);
      const weights: LlamaWeights = {
        dtype: 'f16',
        embed,
        finalNorm: alloc('norm', C),
        lmHead: embed, // tied, as SmolLM2
        layers: Array.from({ length: layers }, (_, l) => {
          const linears = {} as LlamaWeights['layers'][number]['linears'];
          for (const name of LLAMA_LINEARS) {
            const { inFeatures, outFeatures } = linearShape(dims, name);
            linears[name] = alloc(`l${l}.${name}`, inFeatures * outFeatures);
          }
          return { inputNorm: alloc(`l${l}.in`, C), postAttentionNorm: alloc(`l${l}.post`, C), linears };
        }),
      };
      const adapters = new Map<string, LoraAdapter>();
      if (rank) {
        for (let l = 0; l < layers; l++) {
          for (const name of LLAMA_LINEARS) {
            const { inFeatures, outFeatures } = linearShape(dims, name);
            const a = alloc(`l${l}.${name}.A`, rank * inFeatures, 4);
            const b = alloc(`l${l}.${name}.B`, outFeatures * rank, 4);
            adapters.set(llamaModulePath(l, name), { r: rank, scaling: 2, a, b, dA: a, dB: b });
          }
        }
      }
      const session = new InferenceSession(new LlamaModel(gpu, dims, weights, adapters), {
        capacity: CACHE,
        maxChunk: 1,
      });
      const token = Uint32Array.of(1);
      return {
        // The new token at position 255 sees kvLength = 256.
        record: (rec) => session.recordForward(rec, token, 'last', CACHE - 1),
        destroy: () => {
          session.destroy();
          arena.destroy();
        },
      };
    },
  };
}

// 30 layers need ≈ 450 dispatches: more than the profiler's 256 timestamped passes. Per-layer cost is
// (8-layer row − 4-layer row) / 4; the whole model is about that × 30 plus the 4-layer row's head share.
export const decodeBenches: KernelBenchCase[] = [decodeStep(4, 0), decodeStep(8, 0), decodeStep(4, 16)];
