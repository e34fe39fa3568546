// The Gemma 3 text family's shape: Llama's linears (same names, shapes and PEFT paths) in a "sandwich" block,
// every norm an RMSNorm with (1 + w) weights: the attention and MLP outputs pass their own norm before they join
// the residual stream. Its activation table, from the dims alone. The compute is in gemma3.ts.
//
// Shapes: B batch, T sequence, N = B·T tokens, C hidden, H heads, Hkv kv heads, D head dim, F ffn, V vocab.

import type { AttentionDims } from '../kernels/attention.ts';
import type { ModelSpec, Rope } from './config.ts';
import {
  act,
  f32,
  type BlockBuffers,
  type BlockInternals,
  type EntryTable,
  type FamilyShape,
} from './family.ts';
import {
  LLAMA_LINEARS,
  linearShape,
  llamaDims,
  llamaModulePath,
  ropeGradientGroups,
  type LlamaDims,
  type LlamaLinearName,
  type LlamaNorm,
  type QkNormBuffers,
  type QkNormGrads,
} from './llama-shape.ts';

export interface Gemma3Dims extends LlamaDims {
  /** Each layer's sliding window, null for a global layer. */
  windows: (number | null)[];
  /** The global layers' RoPE is ropeTheta / ropeScaling; the sliding layers' is this (rope_local_base_freq). */
  slidingRope: Rope;
  /** Attention's score scale: query_pre_attn_scalar^−½. */
  attentionScale: number;
}

export function gemma3Dims(spec: ModelSpec): Gemma3Dims {
  if (spec.family !== 'gemma3' || !spec.slidingRope || spec.attentionScale === undefined) {
    throw new Error(`gemma3Dims: ${spec.architecture} is not a Gemma 3 spec`);
  }
  return {
    ...llamaDims(spec),
    qkNorm: true,
    windows: spec.layerWindows ?? Array<null>(spec.layers).fill(null),
    slidingRope: spec.slidingRope,
    attentionScale: spec.attentionScale,
  };
}

/**
 * Gemma 3's block buffers (see BlockBuffers for how training and inference hold them). Every norm is
 * rmsnorm(·)·(1 + w).
 * Block l:  xn1 = norm_in(x)     q,k,v = xn1·W{q,k,v}ᵀ    qn, kn = headnorm(q), headnorm(k)
 *           att = attention(rope_l(qn), rope_l(kn), v) (window_l, scores · query_pre_attn_scalar^−½)
 *           o = att·Woᵀ          x2 = x + norm_post_att(o)
 *           xn2 = norm_pre_ffw(x2)    h = gelu_tanh(xn2·Wgᵀ) ∘ (xn2·Wuᵀ)    m = h·Wdᵀ
 *           x' = x2 + norm_post_ffw(m)
 */
export interface Gemma3BlockBuffers extends BlockBuffers<LlamaLinearName>, QkNormBuffers {
  rstd1: GPUBuffer; // (N) f32
  xn1: GPUBuffer; // (N, C)
  q: GPUBuffer; // (N, H·D) as projected
  k: GPUBuffer; // (N, Hkv·D) as projected
  v: GPUBuffer; // (N, Hkv·D)
  att: GPUBuffer; // (N, H·D) attention output
  o: GPUBuffer; // (N, C) att·Woᵀ, before its norm
  rstdO: GPUBuffer; // (N) f32 of the post-attention norm
  branch: GPUBuffer; // (N, C) a branch's normed output on its way into the residual (not read backward)
  x2: GPUBuffer; // (N, C) residual after attention
  rstd2: GPUBuffer; // (N) f32 of the pre-feedforward norm
  xn2: GPUBuffer; // (N, C)
  gate: GPUBuffer; // (N, F)
  up: GPUBuffer; // (N, F)
  h: GPUBuffer; // (N, F) gelu_tanh(gate)·up
  m: GPUBuffer; // (N, C) h·Wdᵀ, before its norm
  rstdM: GPUBuffer; // (N) f32 of the post-feedforward norm
}

/** Backward scratch, shared by all layers. */
export interface Gemma3Grads extends QkNormGrads {
  dBranch: GPUBuffer; // (N, C) gradient of m, then of o (a branch's output before its post-norm)
  dAtt: GPUBuffer; // (N, H·D)
  dq: GPUBuffer; // (N, H·D)
  dk: GPUBuffer; // (N, Hkv·D)
  dv: GPUBuffer; // (N, Hkv·D)
  dGate: GPUBuffer; // (N, F)
  dUp: GPUBuffer; // (N, F)
  dH: GPUBuffer; // (N, F)
}

export type Gemma3Shape = FamilyShape<LlamaLinearName, Gemma3BlockBuffers, LlamaNorm, Gemma3Grads>;

export function gemma3Shape(dims: Gemma3Dims): Gemma3Shape {
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F } = dims;
  return {
    layers: dims.layers,
    hidden: C,
    vocab: dims.vocab,
    maxPositions: null,
    linears: LLAMA_LINEARS,
    // The backward's order: the MLP's dB (down_proj's dy is dBranch = dm, before the post-attention norm's
    // backward overwrites it with do), attention's dB (o_proj's dy is then dBranch = do), every dA of the layer.
    gradientGroups: ropeGradientGroups('dBranch'),
    linearShape: (name) => linearShape(dims, name),
    modulePath: llamaModulePath,
    attentionDims: (batch: number, seq: number): AttentionDims => ({
      batch,
      seq,
      heads: H,
      kvHeads: Hkv,
      headDim: D,
    }),
    blockTable(B, T): EntryTable<BlockInternals<Gemma3BlockBuffers>> {
      const N = B * T;
      return {
        rstd1: f32('(N)', N),
        xn1: act('(N, C)', N * C),
        q: act('(N, H·D)', N * H * D),
        k: act('(N, Hkv·D)', N * Hkv * D),
        v: act('(N, Hkv·D)', N * Hkv * D),
        qn: act('(N, H·D)', N * H * D),
        kn: act('(N, Hkv·D)', N * Hkv * D),
        rstdQ: f32('(N·H)', N * H),
        rstdK: f32('(N·Hkv)', N * Hkv),
        att: act('(N, H·D)', N * H * D),
        o: act('(N, C)', N * C),
        rstdO: f32('(N)', N),
        branch: act('(N, C)', N * C),
        x2: act('(N, C)', N * C),
        rstd2: f32('(N)', N),
        xn2: act('(N, C)', N * C),
        gate: act('(N, F)', N * F),
        up: act('(N, F)', N * F),
        h: act('(N, F)', N * F),
        m: act('(N, C)', N * C),
        rstdM: f32('(N)', N),
      };
    },
    normTable: (N) => ({ rstd: f32('(N)', N) }),
    gradsTable(B, T): EntryTable<Gemma3Grads> {
      const N = B * T;
      return {
        dBranch: act('(N, C)', N * C),
        dAtt: act('(N, H·D)', N * H * D),
        dq: act('(N, H·D)', N * H * D),
        dk: act('(N, Hkv·D)', N * Hkv * D),
        dv: act('(N, Hkv·D)', N * Hkv * D),
        dqn: act('(N, H·D)', N * H * D),
        dkn: act('(N, Hkv·D)', N * Hkv * D),
        dGate: act('(N, F)', N * F),
        dUp: act('(N, F)', N * F),
        dH: act('(N, F)', N * F),
      };
    },
  };
}
