// GPT-2's shape: its linears (Conv1D, fused c_attn) and its activation table, from the dims alone. The compute
// is in gpt2.ts.
//
// Shapes: N = B·T tokens, C hidden, H heads (D = C / H), F = 4C usually, V vocab, P positions.

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

export interface Gpt2Dims {
  layers: number;
  hidden: number;
  heads: number;
  ffn: number;
  vocab: number;
  positions: number;
  layerNormEps: number;
}

export function gpt2Dims(spec: ModelSpec): Gpt2Dims {
  return {
    layers: spec.layers,
    hidden: spec.hidden,
    heads: spec.heads,
    ffn: spec.ffn,
    vocab: spec.vocab,
    positions: spec.maxPositions,
    layerNormEps: spec.layerNormEps ?? 1e-5,
  };
}

export const GPT2_LINEARS = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] as const;
export type Gpt2LinearName = (typeof GPT2_LINEARS)[number];

export function gpt2ModulePath(layer: number, name: Gpt2LinearName): string {
  return `transformer.h.${layer}.${name}`;
}

export function gpt2LinearShape(dims: Gpt2Dims, name: Gpt2LinearName): LinearShape {
  const { hidden: C, ffn: F } = dims;
  switch (name) {
    case 'attn.c_attn':
      return { inFeatures: C, outFeatures: 3 * C };
    case 'attn.c_proj':
      return { inFeatures: C, outFeatures: C };
    case 'mlp.c_fc':
      return { inFeatures: C, outFeatures: F };
    case 'mlp.c_proj':
      return { inFeatures: F, outFeatures: C };
  }
}

/**
 * GPT-2's block buffers (see BlockBuffers for how training and inference hold them).
 * Block l:  xn1 = ln_1(x)   qkv = xn1·W_attn + b   q | k | v = qkv   att = attention(q, k, v)
 *           x2 = x + att·W_proj + b   xn2 = ln_2(x2)   fc = xn2·W_fc + b   x' = x2 + gelu(fc)·W_mproj + b
 */
export interface Gpt2BlockBuffers extends BlockBuffers<Gpt2LinearName> {
  mean1: GPUBuffer; // (N) f32
  rstd1: GPUBuffer; // (N) f32
  xn1: GPUBuffer; // (N, C)
  qkv: GPUBuffer; // (N, 3C)
  q: GPUBuffer; // (N, C)
  k: GPUBuffer; // (N, C)
  v: GPUBuffer; // (N, C)
  att: GPUBuffer; // (N, C)
  x2: GPUBuffer; // (N, C)
  mean2: GPUBuffer; // (N) f32
  rstd2: GPUBuffer; // (N) f32
  xn2: GPUBuffer; // (N, C)
  fc: GPUBuffer; // (N, F) pre-activation
  g: GPUBuffer; // (N, F) gelu(fc)
}

/** The final LayerNorm's statistics. */
export interface Gpt2Norm {
  mean: GPUBuffer; // (N) f32
  rstd: GPUBuffer; // (N) f32
}

/** Backward scratch, shared by all layers. */
export interface Gpt2Grads {
  dQkv: GPUBuffer; // (N, 3C)
  dAtt: GPUBuffer; // (N, C)
  dq: GPUBuffer; // (N, C)
  dk: GPUBuffer; // (N, C)
  dv: GPUBuffer; // (N, C)
  dFc: GPUBuffer; // (N, F)
  dG: GPUBuffer; // (N, F)
}

export type Gpt2Shape = FamilyShape<Gpt2LinearName, Gpt2BlockBuffers, Gpt2Norm, Gpt2Grads>;

export function gpt2Shape(dims: Gpt2Dims): Gpt2Shape {
  const { hidden: C, heads: H, ffn: F } = dims;
  return {
    layers: dims.layers,
    hidden: C,
    vocab: dims.vocab,
    maxPositions: dims.positions,
    linears: GPT2_LINEARS,
    // The backward's order: the MLP's dB (before ln_2's backward adds into dResidual), attention's dB (before
    // ln_1's does), then every dA of the layer.
    gradientGroups: [
      {
        kind: 'dB',
        members: [
          ['mlp.c_proj', 'dResidual'],
          ['mlp.c_fc', 'dFc'],
        ],
      },
      {
        kind: 'dB',
        members: [
          ['attn.c_proj', 'dResidual'],
          ['attn.c_attn', 'dQkv'],
        ],
      },
      {
        kind: 'dA',
        members: [
          ['attn.c_attn', 'xn1'],
          ['attn.c_proj', 'att'],
          ['mlp.c_fc', 'xn2'],
          ['mlp.c_proj', 'g'],
        ],
      },
    ],
    linearShape: (name) => gpt2LinearShape(dims, name),
    modulePath: gpt2ModulePath,
    attentionDims: (batch: number, seq: number): AttentionDims => ({
      batch,
      seq,
      heads: H,
      kvHeads: H,
      headDim: C / H,
    }),
    blockTable(B, T): EntryTable<BlockInternals<Gpt2BlockBuffers>> {
      const N = B * T;
      return {
        mean1: f32('(N)', N),
        rstd1: f32('(N)', N),
        xn1: act('(N, C)', N * C),
        qkv: act('(N, 3C)', N * 3 * C),
        q: act('(N, C)', N * C),
        k: act('(N, C)', N * C),
        v: act('(N, C)', N * C),
        att: act('(N, C)', N * C),
        x2: act('(N, C)', N * C),
        mean2: f32('(N)', N),
        rstd2: f32('(N)', N),
        xn2: act('(N, C)', N * C),
        fc: act('(N, F)', N * F),
        g: act('(N, F)', N * F),
      };
    },
    normTable: (N) => ({ mean: f32('(N)', N), rstd: f32('(N)', N) }),
    gradsTable(B, T): EntryTable<Gpt2Grads> {
      const N = B * T;
      return {
        dQkv: act('(N, 3C)', N * 3 * C),
        dAtt: act('(N, C)', N * C),
        dq: act('(N, C)', N * C),
        dk: act('(N, C)', N * C),
        dv: act('(N, C)', N * C),
        dFc: act('(N, F)', N * F),
        dG: act('(N, F)', N * F),
      };
    },
  };
}
