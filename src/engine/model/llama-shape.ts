// The Llama family's shape (Llama 2/3.x, SmolLM2/3, TinyLlama, Mistral, Qwen2 with q/k/v bias, Qwen3 with
// per-head q/k norms; sliding windows per layer): its linears and its activation table, from the dims alone. The
// compute is in llama.ts.
//
// Shapes: B batch, T sequence, N = B·T tokens, C hidden, H heads, Hkv kv heads, D head dim, F ffn, V vocab.

import type { AttentionDims } from '../kernels/attention.ts';
import type { ModelSpec, RopeScaling } from './config.ts';
import {
  act,
  f32,
  type BlockBuffers,
  type BlockInternals,
  type EntryTable,
  type FamilyShape,
  type GradientGroup,
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
  /** rope_scaling (Llama 3.x); absent or null: none. */
  ropeScaling?: RopeScaling | null;
  /** Qwen2: q/k/v projections carry a bias. */
  qkvBias: boolean;
  /** Mistral, Qwen2: each layer's sliding window (keys a query sees), null for global; absent: all global. */
  windows?: (number | null)[];
  /** Qwen3: q and k pass an RMSNorm over each head's D values (weights (D)) before RoPE. */
  qkNorm?: boolean;
  /** SmolLM3: the layers that skip RoPE (NoPE); absent: every layer rotates. */
  noRopeLayers?: readonly number[];
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
    ropeScaling: spec.ropeScaling,
    qkvBias: spec.qkvBias,
    windows: spec.layerWindows,
    qkNorm: spec.qkNorm,
    noRopeLayers: spec.noRopeLayers,
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
 * Qwen3's per-head q/k RMSNorm: qn = rmsnorm(q) over each head's D values (rows of D), and what attention reads
 * in place of q and k.
 */
export interface QkNormBuffers {
  qn: GPUBuffer; // (N, H·D) = (N·H, D) normed rows
  kn: GPUBuffer; // (N, Hkv·D)
  rstdQ: GPUBuffer; // (N·H) f32
  rstdK: GPUBuffer; // (N·Hkv) f32
}

/** A block's q/k norm buffers when the model has them (Qwen3), else null. */
export function qkNormBuffers(s: Partial<QkNormBuffers>): QkNormBuffers | null {
  const { qn, kn, rstdQ, rstdK } = s;
  return qn && kn && rstdQ && rstdK ? { qn, kn, rstdQ, rstdK } : null;
}

/** The gradients of the normed q and k (attention's dq, dk), before the norms' backward. */
export interface QkNormGrads {
  dqn: GPUBuffer; // (N, H·D)
  dkn: GPUBuffer; // (N, Hkv·D)
}

/**
 * Llama's block buffers (see BlockBuffers for how training and inference hold them).
 * Block l:  xn1 = rmsnorm(x)      q,k,v = xn1·W{q,k,v}ᵀ (+ bias)   [Qwen3: q,k = headnorm(q), headnorm(k)]
 *           att = attention(rope(q), rope(k), v)                   [SmolLM3: no rope in its NoPE layers]
 *           x2 = x + att·Woᵀ      xn2 = rmsnorm(x2)    h = silu(xn2·Wgᵀ) ∘ (xn2·Wuᵀ)    x' = x2 + h·Wdᵀ
 */
export interface LlamaBlockBuffers extends BlockBuffers<LlamaLinearName>, Partial<QkNormBuffers> {
  rstd1: GPUBuffer; // (N) f32
  xn1: GPUBuffer; // (N, C)
  q: GPUBuffer; // (N, H·D) as projected (attention rotates it as it loads it)
  k: GPUBuffer; // (N, Hkv·D) as projected
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
export interface LlamaGrads extends Partial<QkNormGrads> {
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
    gradientGroups: ropeGradientGroups('dResidual'),
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
      const qkNorm: EntryTable<QkNormBuffers> | null = dims.qkNorm
        ? {
            qn: act('(N, H·D)', N * H * D),
            kn: act('(N, Hkv·D)', N * Hkv * D),
            rstdQ: f32('(N·H)', N * H),
            rstdK: f32('(N·Hkv)', N * Hkv),
          }
        : null;
      return {
        ...qkNorm,
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
      const qkNorm: EntryTable<QkNormGrads> | null = dims.qkNorm
        ? { dqn: act('(N, H·D)', N * H * D), dkn: act('(N, Hkv·D)', N * Hkv * D) }
        : null;
      return {
        ...qkNorm,
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

/**
 * A rope family's weight-gradient groups in the backward's order: the MLP's dB, attention's dB, then every dA of
 * the layer. `branch` names the buffer that holds down_proj's and o_proj's dy when the group is read (Llama: the
 * residual's gradient; Gemma 3: the branch's gradient, before the post-norm's backward overwrites it).
 */
export function ropeGradientGroups(branch: string): GradientGroup<LlamaLinearName>[] {
  return [
    {
      kind: 'dB',
      members: [
        ['down_proj', branch],
        ['gate_proj', 'dGate'],
        ['up_proj', 'dUp'],
      ],
    },
    {
      kind: 'dB',
      members: [
        ['o_proj', branch],
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
  ];
}
