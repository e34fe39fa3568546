// The Llama family's shape (Llama, SmolLM2, TinyLlama, Mistral, Qwen2 with q/k/v bias; sliding windows per layer):
// its linears and its activation table, from the dims alone. The compute is in llama.ts.
//
// Shapes: B batch, T sequence, N = B·T tokens, C hidden, H heads, Hkv kv heads, D head dim, F ffn, V vocab.

import type { AttentionDims } from '../kernels/attention.ts';
import type { ModelSpec } from './config.ts';
import {
  act,
  f32,
  type BlockBuffers,
  type BlockInternals,
  type EntryTable,
  type FamilyShape,
  type LinearShape,
} from './family.ts';

export interface LlamaDims {
  layers: number;
  hidden: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  ffn: number;
  vocab: number;
  rmsNormEps: number;
  ropeTheta: number;
  /** Qwen2: q/k/v projections carry a bias. */
  qkvBias: boolean;
  /** Mistral, Qwen2: each layer's sliding window (keys a query sees), null for global; absent: all global. */
  windows?: (number | null)[];
}

export function llamaDims(spec: ModelSpec): LlamaDims {
  return {
    layers: spec.layers,
    hidden: spec.hidden,
    heads: spec.heads,
    kvHeads: spec.kvHeads,
    headDim: spec.headDim,
    ffn: spec.ffn,
    vocab: spec.vocab,
    rmsNormEps: spec.rmsNormEps ?? 1e-6,
    ropeTheta: spec.ropeTheta ?? 10000,
    qkvBias: spec.qkvBias,
    windows: spec.layerWindows,
  };
}

export const LLAMA_LINEARS = [
  'q_proj',
  'k_proj',
  'v_proj',
  'o_proj',
  'gate_proj',
  'up_proj',
  'down_proj',
] as const;
export type LlamaLinearName = (typeof LLAMA_LINEARS)[number];

/** The HF module path of a linear, as PEFT names adapters: 'model.layers.3.mlp.up_proj'. */
export function llamaModulePath(layer: number, name: LlamaLinearName): string {
  const group = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].includes(name) ? 'self_attn' : 'mlp';
  return `model.layers.${layer}.${group}.${name}`;
}

export function linearShape(dims: LlamaDims, name: LlamaLinearName): LinearShape {
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F } = dims;
  switch (name) {
    case 'q_proj':
      return { inFeatures: C, outFeatures: H * D };
    case 'k_proj':
    case 'v_proj':
      return { inFeatures: C, outFeatures: Hkv * D };
    case 'o_proj':
      return { inFeatures: H * D, outFeatures: C };
    case 'gate_proj':
    case 'up_proj':
      return { inFeatures: C, outFeatures: F };
    case 'down_proj':
      return { inFeatures: F, outFeatures: C };
  }
}

/**
 * Llama's block buffers (see BlockBuffers for how training and inference hold them).
 * Block l:  xn1 = rmsnorm(x)      q,k,v = xn1·W{q,k,v}ᵀ (+ bias), rope(q, k)     att = attention(q, k, v)
 *           x2 = x + att·Woᵀ      xn2 = rmsnorm(x2)    h = silu(xn2·Wgᵀ) ∘ (xn2·Wuᵀ)    x' = x2 + h·Wdᵀ
 */
export interface LlamaBlockBuffers extends BlockBuffers<LlamaLinearName> {
  rstd1: GPUBuffer; // (N) f32
  xn1: GPUBuffer; // (N, C)
  q: GPUBuffer; // (N, H·D) after rope
  k: GPUBuffer; // (N, Hkv·D) after rope
  v: GPUBuffer; // (N, Hkv·D)
  att: GPUBuffer; // (N, H·D) attention output
  x2: GPUBuffer; // (N, C) residual after attention
  rstd2: GPUBuffer; // (N) f32
  xn2: GPUBuffer; // (N, C)
  gate: GPUBuffer; // (N, F)
  up: GPUBuffer; // (N, F)
  h: GPUBuffer; // (N, F) silu(gate)·up
}

/** The final RMSNorm's statistics. */
export interface LlamaNorm {
  rstd: GPUBuffer; // (N) f32
}

/** Backward scratch, shared by all layers. */
export interface LlamaGrads {
  dAtt: GPUBuffer; // (N, H·D)
  dq: GPUBuffer; // (N, H·D)
  dk: GPUBuffer; // (N, Hkv·D)
  dv: GPUBuffer; // (N, Hkv·D)
  dGate: GPUBuffer; // (N, F)
  dUp: GPUBuffer; // (N, F)
  dH: GPUBuffer; // (N, F)
}

export type LlamaShape = FamilyShape<LlamaLinearName, LlamaBlockBuffers, LlamaNorm, LlamaGrads>;

export function llamaShape(dims: LlamaDims): LlamaShape {
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F } = dims;
  return {
    layers: dims.layers,
    hidden: C,
    vocab: dims.vocab,
    maxPositions: null,
    linears: LLAMA_LINEARS,
    // The backward's order: the MLP's dB (before the post-attention norm adds into dResidual), attention's dB
    // (before the input norm does), then every dA of the layer (x and v stay put).
    gradientGroups: [
      {
        kind: 'dB',
        members: [
          ['down_proj', 'dResidual'],
          ['gate_proj', 'dGate'],
          ['up_proj', 'dUp'],
        ],
      },
      {
        kind: 'dB',
        members: [
          ['o_proj', 'dResidual'],
          ['q_proj', 'dq'],
          ['k_proj', 'dk'],
          ['v_proj', 'dv'],
        ],
      },
      {
        kind: 'dA',
        members: [
          ['q_proj', 'xn1'],
          ['k_proj', 'xn1'],
          ['v_proj', 'xn1'],
          ['o_proj', 'att'],
          ['gate_proj', 'xn2'],
          ['up_proj', 'xn2'],
          ['down_proj', 'h'],
        ],
      },
    ],
    linearShape: (name) => linearShape(dims, name),
    modulePath: llamaModulePath,
    attentionDims: (batch: number, seq: number): AttentionDims => ({
      batch,
      seq,
      heads: H,
      kvHeads: Hkv,
      headDim: D,
    }),
    blockTable(B, T): EntryTable<BlockInternals<LlamaBlockBuffers>> {
      const N = B * T;
      return {
        rstd1: f32('(N)', N),
        xn1: act('(N, C)', N * C),
        q: act('(N, H·D)', N * H * D),
        k: act('(N, Hkv·D)', N * Hkv * D),
        v: act('(N, Hkv·D)', N * Hkv * D),
        att: act('(N, H·D)', N * H * D),
        x2: act('(N, C)', N * C),
        rstd2: f32('(N)', N),
        xn2: act('(N, C)', N * C),
        gate: act('(N, F)', N * F),
        up: act('(N, F)', N * F),
        h: act('(N, F)', N * F),
      };
    },
    normTable: (N) => ({ rstd: f32('(N)', N) }),
    gradsTable(B, T): EntryTable<LlamaGrads> {
      const N = B * T;
      return {
        dAtt: act('(N, H·D)', N * H * D),
        dq: act('(N, H·D)', N * H * D),
        dk: act('(N, Hkv·D)', N * Hkv * D),
        dv: act('(N, Hkv·D)', N * Hkv * D),
        dGate: act('(N, F)', N * F),
        dUp: act('(N, F)', N * F),
        dH: act('(N, F)', N * F),
      };
    },
  };
}
