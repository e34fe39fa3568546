// The Gemma 3 text family on the GPU (Gemma3ForCausalLM): one explicit forward and one explicit backward per
// block over the activations its table declares (gemma3-shape.ts). What differs from Llama: embeddings × √C,
// every RMSNorm's weight is (1 + w), norms after attention and after the MLP as well as before (a sandwich), q/k
// norms before RoPE, scores scaled by query_pre_attn_scalar^−½, a GeGLU MLP, and sliding-window layers with their
// own RoPE base between global ones. Base weights are frozen: the backward computes input gradients through them
// and LoRA gradients only.
//
// Shapes: B batch, T sequence, N = B·T tokens, C hidden, H heads, Hkv kv heads, D head dim, F ffn, V vocab.
// Block l:  xn1 = norm_in(x)     q,k,v = xn1·W{q,k,v}ᵀ    qn, kn = headnorm(q), headnorm(k)
//           att = attention(rope_l(qn), rope_l(kn), v)     o = att·Woᵀ      x2 = x + norm_post_att(o)
//           xn2 = norm_pre_ffw(x2)    h = gelu_tanh(xn2·Wgᵀ) ∘ (xn2·Wuᵀ)    m = h·Wdᵀ
//           x' = x2 + norm_post_ffw(m)

import type { CommandRecorder, Gpu, ScalarType } from '../gpu/index.ts';
import { gatedBackward, gatedForward } from '../kernels/activations.ts';
import type { AttentionRope } from '../kernels/attention.ts';
import { add } from '../kernels/elementwise.ts';
import { embeddingForward } from '../kernels/embedding.ts';
import { rmsnormBackward, rmsnormForward } from '../kernels/rmsnorm.ts';
import { gemma3Shape, type Gemma3BlockBuffers, type Gemma3Dims, type Gemma3Grads } from './gemma3-shape.ts';
import type { KvCacheSlot } from './kv-cache.ts';
import { linearForward, linearUp, loraDown, type LinearContext, type LoraAdapter } from './linear.ts';
import { ropeFrequencies, type LlamaLinearName, type LlamaNorm } from './llama.ts';
import { TransformerModel, type FamilyActivations } from './transformer.ts';

export * from './gemma3-shape.ts';

/** Gemma's RMSNorm scales by (1 + w): the 1 is added in f32 inside the kernel, as Gemma3RMSNorm does. */
const ONE_PLUS_W = { weightOffset: 1 };

/** Frozen weights on the GPU, in the activation storage type. */
export interface Gemma3LayerWeights {
  inputNorm: GPUBuffer; // (C) input_layernorm
  postAttentionNorm: GPUBuffer; // (C) post_attention_layernorm: norms o
  preFeedforwardNorm: GPUBuffer; // (C) pre_feedforward_layernorm: the MLP's input norm
  postFeedforwardNorm: GPUBuffer; // (C) post_feedforward_layernorm: norms m
  qNorm: GPUBuffer; // (D)
  kNorm: GPUBuffer; // (D)
  linears: Record<LlamaLinearName, GPUBuffer>; // (out, in)
}

export interface Gemma3Weights {
  dtype: ScalarType;
  embed: GPUBuffer; // (V, C)
  finalNorm: GPUBuffer; // (C)
  lmHead: GPUBuffer; // (V, C); the embedding itself when tied
  layers: Gemma3LayerWeights[];
}

export type Gemma3Activations = FamilyActivations<
  LlamaLinearName,
  Gemma3BlockBuffers,
  LlamaNorm,
  Gemma3Grads
>;

export class Gemma3Model extends TransformerModel<
  LlamaLinearName,
  Gemma3BlockBuffers,
  LlamaNorm,
  Gemma3Grads
> {
  readonly name = 'Gemma 3';
  readonly linearLayout = 'out-in';

  constructor(
    gpu: Gpu,
    readonly dims: Gemma3Dims,
    readonly weights: Gemma3Weights,
    /** Adapters keyed by HF module path, e.g. 'model.layers.0.self_attn.q_proj'. */
    adapters: ReadonlyMap<string, LoraAdapter> = new Map(),
  ) {
    super(gpu, weights.dtype, gemma3Shape(dims), adapters);
  }

  get head(): GPUBuffer {
    return this.weights.lmHead;
  }

  /** The global and the sliding layers' inv_freq tables, looked up once. */
  #ropes: { global: AttentionRope; sliding: AttentionRope } | null = null;

  protected override ropeOf(l: number): AttentionRope {
    const { headDim: D, ropeTheta, ropeScaling = null, slidingRope } = this.dims;
    this.#ropes ??= {
      global: { invFreq: ropeFrequencies(this.gpu, D, ropeTheta, ropeScaling) },
      sliding: { invFreq: ropeFrequencies(this.gpu, D, slidingRope.theta, slidingRope.scaling) },
    };
    return this.dims.windows[l] === null ? this.#ropes.global : this.#ropes.sliding;
  }

  override attentionWindow(l: number): number | undefined {
    return this.dims.windows[l] ?? undefined;
  }

  protected override get attentionScale(): number {
    return this.dims.attentionScale;
  }

  linearWeight(layer: number, name: LlamaLinearName): GPUBuffer {
    return this.weights.layers[layer].linears[name];
  }

  /** x = embed_tokens[tokens] · √C, the factor rounded to the table's type as Gemma3TextScaledWordEmbedding does. */
  embed(
    rec: CommandRecorder,
    x: GPUBuffer,
    errors: GPUBuffer,
    tokens: GPUBuffer,
    B: number,
    T: number,
  ): void {
    const { hidden: C, vocab: V } = this.dims;
    const dims = { N: B * T, C, V };
    embeddingForward(
      rec,
      this.ref(x),
      errors,
      tokens,
      this.ref(this.weights.embed),
      dims,
      undefined,
      C ** 0.5,
    );
  }

  finalNorm(rec: CommandRecorder, xn: GPUBuffer, stats: LlamaNorm, x: GPUBuffer, rows: number): void {
    const { hidden: C, rmsNormEps: eps } = this.dims;
    const w = this.ref(this.weights.finalNorm);
    rmsnormForward(rec, this.ref(xn), stats.rstd, this.ref(x), w, { N: rows, C }, eps, ONE_PLUS_W);
  }

  finalNormBackward(
    rec: CommandRecorder,
    dx: GPUBuffer,
    dxn: GPUBuffer,
    x: GPUBuffer,
    stats: LlamaNorm,
    rows: number,
  ): void {
    const w = this.ref(this.weights.finalNorm);
    const dims = { N: rows, C: this.dims.hidden };
    rmsnormBackward(rec, this.ref(dx), this.ref(dxn), this.ref(x), w, stats.rstd, dims, ONE_PLUS_W);
  }

  blockForward(
    rec: CommandRecorder,
    l: number,
    s: Gemma3BlockBuffers,
    next: GPUBuffer | null,
    B: number,
    T: number,
    ctx: LinearContext,
    cache?: KvCacheSlot,
  ): void {
    const { hidden: C, ffn: F, heads: H, kvHeads: Hkv, headDim: D, rmsNormEps: eps } = this.dims;
    const N = B * T;
    const w = this.weights.layers[l];
    const a = (buffer: GPUBuffer) => this.ref(buffer);
    const lin = (name: LlamaLinearName) => this.linear(l, name);
    const u = (name: LlamaLinearName) => s.u[name] ?? null;
    const norm = (y: GPUBuffer, rstd: GPUBuffer, x: GPUBuffer, weight: GPUBuffer, rows = N, width = C) =>
      rmsnormForward(rec, a(y), rstd, a(x), a(weight), { N: rows, C: width }, eps, ONE_PLUS_W);

    norm(s.xn1, s.rstd1, s.x, w.inputNorm);
    const qkv = ['q_proj', 'k_proj', 'v_proj'] as const;
    loraDown(rec, qkv.map(u), a(s.xn1), qkv.map(lin), N, ctx);
    linearUp(rec, a(s.q), u('q_proj'), a(s.xn1), lin('q_proj'), N);
    linearUp(rec, a(s.k), u('k_proj'), a(s.xn1), lin('k_proj'), N);
    linearUp(rec, a(s.v), u('v_proj'), a(s.xn1), lin('v_proj'), N);
    // Every head's D values of q and k are one RMSNorm row, weights (D) shared by the heads; RoPE rotates the
    // normed q and k inside attention (the cache holds the normed, unrotated k).
    norm(s.qn, s.rstdQ, s.q, w.qNorm, N * H, D);
    norm(s.kn, s.rstdK, s.k, w.kNorm, N * Hkv, D);
    this.attention(rec, l, { ...s, q: s.qn, k: s.kn }, B, T, cache);
    linearForward(rec, a(s.o), u('o_proj'), a(s.att), lin('o_proj'), N, ctx);
    // The branch joins the residual after its own norm: x2 = x + norm(o), rounded as torch rounds each step.
    norm(s.branch, s.rstdO, s.o, w.postAttentionNorm);
    add(rec, a(s.x2), a(s.x), a(s.branch), N * C);

    norm(s.xn2, s.rstd2, s.x2, w.preFeedforwardNorm);
    const gateUp = ['gate_proj', 'up_proj'] as const;
    loraDown(rec, gateUp.map(u), a(s.xn2), gateUp.map(lin), N, ctx);
    linearUp(rec, a(s.gate), u('gate_proj'), a(s.xn2), lin('gate_proj'), N);
    linearUp(rec, a(s.up), u('up_proj'), a(s.xn2), lin('up_proj'), N);
    gatedForward(rec, a(s.h), a(s.gate), a(s.up), N * F, 'gelu_tanh');
    linearForward(rec, a(s.m), u('down_proj'), a(s.h), lin('down_proj'), N, ctx);
    // The backward reads m and its rstd; next = null (recompute) needs nothing past them.
    norm(s.branch, s.rstdM, s.m, w.postFeedforwardNorm);
    if (next) add(rec, a(next), a(s.x2), a(s.branch), N * C);
  }

  blockBackward(rec: CommandRecorder, l: number, acts: Gemma3Activations, ctx: LinearContext): void {
    const { hidden: C, ffn: F, heads: H, kvHeads: Hkv, headDim: D } = this.dims;
    const { batch: B, seq: T, grads: d } = acts;
    const N = B * T;
    const a = (buffer: GPUBuffer) => this.ref(buffer);
    const s = acts.layers[l];
    const w = this.weights.layers[l];
    const back = this.linearsBackward(rec, l, acts, ctx);
    // dx (=, or += with accumulate) from dy through the norm of x with (1 + weight).
    const normBack = (
      dx: GPUBuffer,
      dy: GPUBuffer,
      x: GPUBuffer,
      weight: GPUBuffer,
      rstd: GPUBuffer,
      accumulate = false,
      rows = N,
      width = C,
    ) =>
      rmsnormBackward(
        rec,
        a(dx),
        a(dy),
        a(x),
        a(weight),
        rstd,
        { N: rows, C: width },
        {
          ...ONE_PLUS_W,
          accumulate,
        },
      );

    // MLP: x' = x2 + norm_post_ffw(m); dResidual flows to x2 unchanged plus the branch's input gradient.
    normBack(d.dBranch, acts.dResidual, s.m, w.postFeedforwardNorm, s.rstdM);
    back(d.dH, d.dBranch, 'down_proj');
    gatedBackward(rec, a(d.dGate), a(d.dUp), a(d.dH), a(s.gate), a(s.up), N * F, 'gelu_tanh');
    back(acts.dNormed, d.dGate, 'gate_proj');
    back(acts.dNormed, d.dUp, 'up_proj', true);
    this.loraGradients(rec, l, acts, ctx, 0, { dBranch: d.dBranch, dGate: d.dGate, dUp: d.dUp });
    normBack(acts.dResidual, acts.dNormed, s.x2, w.preFeedforwardNorm, s.rstd2, true);

    // Attention: x2 = x + norm_post_att(o).
    normBack(d.dBranch, acts.dResidual, s.o, w.postAttentionNorm, s.rstdO);
    back(d.dAtt, d.dBranch, 'o_proj');
    // Attention's dq, dk are the normed q, k's (rotated back); the head norms' backward gives the projections'.
    this.attentionBackward(rec, l, { ...s, q: s.qn, k: s.kn }, { ...d, dq: d.dqn, dk: d.dkn }, acts);
    normBack(d.dq, d.dqn, s.q, w.qNorm, s.rstdQ, false, N * H, D);
    normBack(d.dk, d.dkn, s.k, w.kNorm, s.rstdK, false, N * Hkv, D);
    // Below layer 0 are the frozen embeddings: no input gradient is needed there.
    const dxn1 = l > 0 ? acts.dNormed : null;
    back(dxn1, d.dq, 'q_proj');
    back(dxn1, d.dk, 'k_proj', true);
    back(dxn1, d.dv, 'v_proj', true);
    this.loraGradients(rec, l, acts, ctx, 1, { dBranch: d.dBranch, dq: d.dq, dk: d.dk, dv: d.dv });
    this.loraGradients(rec, l, acts, ctx, 2, { xn1: s.xn1, att: s.att, xn2: s.xn2, h: s.h });
    if (l > 0) normBack(acts.dResidual, acts.dNormed, s.x, w.inputNorm, s.rstd1, true);
  }
}
