// GPT-2 on the GPU: learned positions, pre-LayerNorm blocks, fused c_attn, gelu_new MLP, head tied to wte.
// Conv1D weights are stored (in, out), so the linears use the 'in-out' layout. One explicit forward and one
// explicit backward per block (llm.c's train_gpt2.c is the model) over the activations its table declares
// (gpt2-shape.ts), LoRA gradients only. The blocks' loop and the loss are transformer.ts's.
//
// Shapes: N = B·T tokens, C hidden, H heads (D = C / H), F = 4C usually, V vocab, P positions.
// Block l:  xn1 = ln_1(x)   qkv = xn1·W_attn + b   q | k | v = qkv   att = attention(q, k, v)
//           x2 = x + att·W_proj + b   xn2 = ln_2(x2)   fc = xn2·W_fc + b   x' = x2 + gelu(fc)·W_mproj + b

import type { CommandRecorder, Gpu, ScalarType } from '../gpu/index.ts';
import type { AttentionTensor, TensorLayout } from '../kernels/attention.ts';
import { geluBackward, geluForward } from '../kernels/activations.ts';
import { copyColumns } from '../kernels/copy2d.ts';
import { embeddingForward } from '../kernels/embedding.ts';
import { layernormBackward, layernormForward } from '../kernels/layernorm.ts';
import {
  gpt2Shape,
  type Gpt2BlockBuffers,
  type Gpt2Dims,
  type Gpt2Grads,
  type Gpt2LinearName,
  type Gpt2Norm,
} from './gpt2-shape.ts';
import type { KvCacheSlot } from './kv-cache.ts';
import { linearForward, type LinearContext, type LoraAdapter } from './linear.ts';
import { TransformerModel, type FamilyActivations } from './transformer.ts';

export * from './gpt2-shape.ts';

export interface Gpt2LayerWeights {
  ln1: { w: GPUBuffer; b: GPUBuffer }; // (C), (C)
  ln2: { w: GPUBuffer; b: GPUBuffer };
  /** Conv1D weights (in, out) and biases (out), by linear name. */
  linears: Record<Gpt2LinearName, { w: GPUBuffer; b: GPUBuffer }>;
}

export interface Gpt2Weights {
  dtype: ScalarType;
  wte: GPUBuffer; // (V, C), also the head
  wpe: GPUBuffer; // (P, C)
  lnF: { w: GPUBuffer; b: GPUBuffer };
  layers: Gpt2LayerWeights[];
}

/** Three tensors as the column blocks of one (N, 3C) buffer, as c_attn writes q | k | v. */
function qkvLayout<T extends AttentionTensor>(
  C: number,
  ...names: [T, T, T]
): Partial<Record<T, TensorLayout>> {
  return Object.fromEntries(
    names.map((name, i) => [name, { rowStride: 3 * C, colOffset: i * C }]),
  ) as Partial<Record<T, TensorLayout>>;
}

export type Gpt2Activations = FamilyActivations<Gpt2LinearName, Gpt2BlockBuffers, Gpt2Norm, Gpt2Grads>;

export class Gpt2Model extends TransformerModel<Gpt2LinearName, Gpt2BlockBuffers, Gpt2Norm, Gpt2Grads> {
  readonly name = 'GPT-2';
  readonly linearLayout = 'in-out';

  constructor(
    gpu: Gpu,
    readonly dims: Gpt2Dims,
    readonly weights: Gpt2Weights,
    /** Adapters keyed by HF module path, e.g. 'transformer.h.0.attn.c_attn'. */
    adapters: ReadonlyMap<string, LoraAdapter> = new Map(),
  ) {
    super(gpu, weights.dtype, gpt2Shape(dims), adapters);
  }

  get head(): GPUBuffer {
    return this.weights.wte;
  }

  linearWeight(layer: number, name: Gpt2LinearName): GPUBuffer {
    return this.weights.layers[layer].linears[name].w;
  }

  embed(
    rec: CommandRecorder,
    x: GPUBuffer,
    errors: GPUBuffer,
    tokens: GPUBuffer,
    B: number,
    T: number,
    offset: number,
  ): void {
    const { hidden: C, vocab: V, positions: P } = this.dims;
    const wpe = this.ref(this.weights.wpe);
    const wte = this.ref(this.weights.wte);
    embeddingForward(rec, this.ref(x), errors, tokens, wte, { N: B * T, C, V }, { wpe, T, P, offset });
  }

  finalNorm(rec: CommandRecorder, xn: GPUBuffer, stats: Gpt2Norm, x: GPUBuffer, rows: number): void {
    const { hidden: C, layerNormEps: eps } = this.dims;
    const { w, b } = this.weights.lnF;
    const a = (buffer: GPUBuffer) => this.ref(buffer);
    layernormForward(rec, a(xn), stats.mean, stats.rstd, a(x), a(w), a(b), { N: rows, C }, eps);
  }

  finalNormBackward(
    rec: CommandRecorder,
    dx: GPUBuffer,
    dxn: GPUBuffer,
    x: GPUBuffer,
    stats: Gpt2Norm,
    rows: number,
  ): void {
    const a = (buffer: GPUBuffer) => this.ref(buffer);
    const w = a(this.weights.lnF.w);
    layernormBackward(rec, a(dx), a(dxn), a(x), w, stats.mean, stats.rstd, { N: rows, C: this.dims.hidden });
  }

  blockForward(
    rec: CommandRecorder,
    l: number,
    s: Gpt2BlockBuffers,
    next: GPUBuffer | null,
    B: number,
    T: number,
    ctx: LinearContext,
    cache?: KvCacheSlot,
  ): void {
    const N = B * T;
    const { hidden: C, ffn: F, layerNormEps: eps } = this.dims;
    const w = this.weights.layers[l];
    const a = (buffer: GPUBuffer) => this.ref(buffer);
    const bias = (name: Gpt2LinearName) => a(w.linears[name].b);

    layernormForward(rec, a(s.xn1), s.mean1, s.rstd1, a(s.x), a(w.ln1.w), a(w.ln1.b), { N, C }, eps);
    const attn = this.linear(l, 'attn.c_attn');
    linearForward(rec, a(s.qkv), s.u['attn.c_attn'] ?? null, a(s.xn1), attn, N, ctx, {
      bias: bias('attn.c_attn'),
    });
    if (cache) {
      // The KV cache takes k and v as whole rows: split them out of qkv first.
      for (const [i, part] of [s.q, s.k, s.v].entries()) {
        const from = { tensor: a(s.qkv), stride: 3 * C, column: i * C };
        copyColumns(rec, { tensor: a(part), stride: C, column: 0 }, from, N, C);
      }
      this.attention(rec, l, s, B, T, cache);
    } else {
      // Training: attention reads q, k and v straight out of qkv's columns.
      const qkv = { q: s.qkv, k: s.qkv, v: s.qkv, att: s.att, lse: s.lse };
      this.attention(rec, l, qkv, B, T, undefined, qkvLayout(C, 'q', 'k', 'v'));
    }
    // x2 = x + att·W_proj + b: the residual and the bias join in the projection's epilogue.
    const proj = this.linear(l, 'attn.c_proj');
    linearForward(rec, a(s.x2), s.u['attn.c_proj'] ?? null, a(s.att), proj, N, ctx, {
      bias: bias('attn.c_proj'),
      residual: a(s.x),
    });

    layernormForward(rec, a(s.xn2), s.mean2, s.rstd2, a(s.x2), a(w.ln2.w), a(w.ln2.b), { N, C }, eps);
    linearForward(rec, a(s.fc), s.u['mlp.c_fc'] ?? null, a(s.xn2), this.linear(l, 'mlp.c_fc'), N, ctx, {
      bias: bias('mlp.c_fc'),
    });
    geluForward(rec, a(s.g), a(s.fc), N * F);
    const mproj = this.linear(l, 'mlp.c_proj');
    // next = null (recompute): the backward needs mlp.c_proj's u = dropout(g)·Aᵀ, not x'.
    linearForward(rec, next && a(next), s.u['mlp.c_proj'] ?? null, a(s.g), mproj, N, ctx, {
      bias: bias('mlp.c_proj'),
      residual: a(s.x2),
    });
  }

  blockBackward(rec: CommandRecorder, l: number, acts: Gpt2Activations, ctx: LinearContext): void {
    const { batch: B, seq: T, grads: d } = acts;
    const N = B * T;
    const { hidden: C, ffn: F } = this.dims;
    const a = (buffer: GPUBuffer) => this.ref(buffer);
    const dRes = a(acts.dResidual);
    const dNormed = a(acts.dNormed);
    const s = acts.layers[l];
    const w = this.weights.layers[l];
    const back = this.linearsBackward(rec, l, acts, ctx);

    // MLP branch (biases are frozen: their gradient is not needed).
    back(d.dG, acts.dResidual, 'mlp.c_proj');
    geluBackward(rec, a(d.dFc), a(d.dG), a(s.fc), N * F);
    back(acts.dNormed, d.dFc, 'mlp.c_fc');
    // The MLP adapters' dB read dResidual before ln_2's backward adds into it.
    this.loraGradients(rec, l, acts, ctx, 0, { dResidual: acts.dResidual, dFc: d.dFc });
    const ln2 = [a(w.ln2.w), s.mean2, s.rstd2] as const;
    layernormBackward(rec, dRes, dNormed, a(s.x2), ...ln2, { N, C }, { accumulate: true });

    // Attention branch.
    back(d.dAtt, acts.dResidual, 'attn.c_proj');
    // q, k, v are qkv's columns, and dq, dk, dv go straight into dQkv's.
    const qkv = { q: s.qkv, k: s.qkv, v: s.qkv, att: s.att, lse: s.lse };
    const dqkv = { dq: d.dQkv, dk: d.dQkv, dv: d.dQkv, dAtt: d.dAtt };
    this.attentionBackward(rec, l, qkv, dqkv, acts, {
      ...qkvLayout(C, 'q', 'k', 'v'),
      ...qkvLayout(C, 'dq', 'dk', 'dv'),
    });
    // Below layer 0 are the frozen embeddings: no input gradient needed there.
    back(l > 0 ? acts.dNormed : null, d.dQkv, 'attn.c_attn');
    this.loraGradients(rec, l, acts, ctx, 1, { dResidual: acts.dResidual, dQkv: d.dQkv });
    this.loraGradients(rec, l, acts, ctx, 2, { xn1: s.xn1, att: s.att, xn2: s.xn2, g: s.g });
    if (l > 0) {
      const ln1 = [a(w.ln1.w), s.mean1, s.rstd1] as const;
      layernormBackward(rec, dRes, dNormed, a(s.x), ...ln1, { N, C }, { accumulate: true });
    }
  }
}
