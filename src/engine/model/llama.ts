// The Llama family (Llama 2/3.x, SmolLM2/3, TinyLlama, Mistral, Qwen2 with q/k/v bias, Qwen3 with per-head q/k
// norms; sliding windows per layer) on the GPU: one explicit forward and one explicit backward per block, llm.c
// style, over the activations its table declares (llama-shape.ts). Base weights are frozen: the backward computes
// input gradients through them and LoRA gradients only. The embedding, the blocks' loop, the final norm and the
// loss are transformer.ts's.
//
// Shapes: B batch, T sequence, N = B·T tokens, C hidden, H heads, Hkv kv heads, D head dim, F ffn, V vocab.
// Block l:  xn1 = rmsnorm(x)      q,k,v = xn1·W{q,k,v}ᵀ (+ bias)   [Qwen3: q,k = headnorm(q), headnorm(k)]
//           att = attention(rope(q), rope(k), v)                   [SmolLM3: no rope in its NoPE layers]
//           x2 = x + att·Woᵀ      xn2 = rmsnorm(x2)    h = silu(xn2·Wgᵀ) ∘ (xn2·Wuᵀ)    x' = x2 + h·Wdᵀ

import type { CommandRecorder, Gpu, ScalarType } from '../gpu/index.ts';
import type { AttentionRope } from '../kernels/attention.ts';
import { swigluBackward, swigluForward } from '../kernels/activations.ts';
import { embeddingForward } from '../kernels/embedding.ts';
import { rmsnormBackward, rmsnormForward } from '../kernels/rmsnorm.ts';
import { ropeInvFreq, type RopeScaling } from '../kernels/rope.ts';
import type { KvCacheSlot } from './kv-cache.ts';
import { linearForward, linearUp, loraDown, type LinearContext, type LoraAdapter } from './linear.ts';
import {
  llamaShape,
  qkNormBuffers,
  type LlamaBlockBuffers,
  type LlamaDims,
  type LlamaGrads,
  type LlamaLinearName,
  type LlamaNorm,
} from './llama-shape.ts';
import { TransformerModel, type FamilyActivations } from './transformer.ts';

export * from './llama-shape.ts';

/** Frozen weights on the GPU, in the activation storage type. */
export interface LlamaLayerWeights {
  inputNorm: GPUBuffer; // (C)
  postAttentionNorm: GPUBuffer; // (C)
  linears: Record<LlamaLinearName, GPUBuffer>; // (out, in)
  qkvBias?: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer }; // (H·D), (Hkv·D), (Hkv·D)
  oBias?: GPUBuffer; // (C) Llama with attention_bias
  qkNorm?: { q: GPUBuffer; k: GPUBuffer }; // (D), (D) Qwen3's q_norm, k_norm
}

export interface LlamaWeights {
  dtype: ScalarType;
  embed: GPUBuffer; // (V, C)
  finalNorm: GPUBuffer; // (C)
  lmHead: GPUBuffer; // (V, C); the embedding itself when tied
  layers: LlamaLayerWeights[];
}

/** inv_freq (D/2) f32 per (device, head dim, θ, scaling), made once: models built for every trainer share it. */
const frequencies = new WeakMap<Gpu, Map<string, GPUBuffer>>();
export function ropeFrequencies(
  gpu: Gpu,
  headDim: number,
  theta: number,
  scaling: RopeScaling | null,
): GPUBuffer {
  const perGpu = frequencies.get(gpu) ?? new Map<string, GPUBuffer>();
  frequencies.set(gpu, perGpu);
  const key = `${headDim}:${theta}:${JSON.stringify(scaling)}`;
  let buffer = perGpu.get(key);
  if (!buffer) {
    const values = ropeInvFreq(headDim, theta, scaling);
    buffer = gpu.device.createBuffer({
      label: `rope.inv_freq(${key})`,
      size: values.byteLength,
      usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
    });
    gpu.device.queue.writeBuffer(buffer, 0, values as Float32Array<ArrayBuffer>);
    perGpu.set(key, buffer);
  }
  return buffer;
}

export type LlamaActivations = FamilyActivations<LlamaLinearName, LlamaBlockBuffers, LlamaNorm, LlamaGrads>;

export class LlamaModel extends TransformerModel<LlamaLinearName, LlamaBlockBuffers, LlamaNorm, LlamaGrads> {
  readonly name = 'Llama';
  readonly linearLayout = 'out-in';

  constructor(
    gpu: Gpu,
    readonly dims: LlamaDims,
    readonly weights: LlamaWeights,
    /** Adapters keyed by HF module path, e.g. 'model.layers.0.self_attn.q_proj' (see `llamaModulePath`). */
    adapters: ReadonlyMap<string, LoraAdapter> = new Map(),
  ) {
    super(gpu, weights.dtype, llamaShape(dims), adapters);
  }

  get head(): GPUBuffer {
    return this.weights.lmHead;
  }

  /** The model's one inv_freq table, looked up once (attention asks for it every layer of every step). */
  #rope: AttentionRope | null = null;

  protected override ropeOf(l: number): AttentionRope | undefined {
    const { headDim, ropeTheta, ropeScaling = null, noRopeLayers } = this.dims;
    if (noRopeLayers?.includes(l)) return undefined;
    this.#rope ??= { invFreq: ropeFrequencies(this.gpu, headDim, ropeTheta, ropeScaling) };
    return this.#rope;
  }

  /** What attention reads of block `l`: q and k as projected, or Qwen3's normed ones. */
  #attentionInputs<S extends LlamaBlockBuffers>(s: S) {
    const normed = qkNormBuffers(s);
    return { ...s, q: normed?.qn ?? s.q, k: normed?.kn ?? s.k };
  }

  override attentionWindow(l: number): number | undefined {
    return this.dims.windows?.[l] ?? undefined;
  }

  linearWeight(layer: number, name: LlamaLinearName): GPUBuffer {
    return this.weights.layers[layer].linears[name];
  }

  embed(
    rec: CommandRecorder,
    x: GPUBuffer,
    errors: GPUBuffer,
    tokens: GPUBuffer,
    B: number,
    T: number,
  ): void {
    const { hidden: C, vocab: V } = this.dims;
    embeddingForward(rec, this.ref(x), errors, tokens, this.ref(this.weights.embed), { N: B * T, C, V });
  }

  finalNorm(rec: CommandRecorder, xn: GPUBuffer, stats: LlamaNorm, x: GPUBuffer, rows: number): void {
    const { hidden: C, rmsNormEps } = this.dims;
    const w = this.ref(this.weights.finalNorm);
    rmsnormForward(rec, this.ref(xn), stats.rstd, this.ref(x), w, { N: rows, C }, rmsNormEps);
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
    rmsnormBackward(rec, this.ref(dx), this.ref(dxn), this.ref(x), w, stats.rstd, {
      N: rows,
      C: this.dims.hidden,
    });
  }

  blockForward(
    rec: CommandRecorder,
    l: number,
    s: LlamaBlockBuffers,
    next: GPUBuffer | null,
    B: number,
    T: number,
    ctx: LinearContext,
    cache?: KvCacheSlot,
  ): void {
    const { dims } = this;
    const N = B * T;
    const { hidden: C, ffn: F } = dims;
    const w = this.weights.layers[l];
    const a = (buffer: GPUBuffer) => this.ref(buffer);

    const lin = (name: LlamaLinearName) => this.linear(l, name);
    const u = (name: LlamaLinearName) => s.u[name] ?? null;
    rmsnormForward(rec, a(s.xn1), s.rstd1, a(s.x), a(w.inputNorm), { N, C }, dims.rmsNormEps);
    // q, k, v read the same xn1: their adapters' down-projections in one product, then each base product.
    const qkv = ['q_proj', 'k_proj', 'v_proj'] as const;
    loraDown(rec, qkv.map(u), a(s.xn1), qkv.map(lin), N, ctx);
    const qkvBias = w.qkvBias;
    linearUp(rec, a(s.q), u('q_proj'), a(s.xn1), lin('q_proj'), N, { bias: qkvBias && a(qkvBias.q) });
    linearUp(rec, a(s.k), u('k_proj'), a(s.xn1), lin('k_proj'), N, { bias: qkvBias && a(qkvBias.k) });
    linearUp(rec, a(s.v), u('v_proj'), a(s.xn1), lin('v_proj'), N, { bias: qkvBias && a(qkvBias.v) });
    const normed = qkNormBuffers(s);
    if (normed && w.qkNorm) {
      // Qwen3: every head's D values of q and k are one RMSNorm row, weights (D) shared by the heads.
      const { heads: H, kvHeads: Hkv, headDim: D, rmsNormEps: eps } = dims;
      rmsnormForward(rec, a(normed.qn), normed.rstdQ, a(s.q), a(w.qkNorm.q), { N: N * H, C: D }, eps);
      rmsnormForward(rec, a(normed.kn), normed.rstdK, a(s.k), a(w.qkNorm.k), { N: N * Hkv, C: D }, eps);
    }
    // RoPE rotates q and k inside attention as it loads them (q, k and the cache hold them unrotated).
    this.attention(rec, l, this.#attentionInputs(s), B, T, cache);
    // x2 = x + att·Woᵀ (+ b): the residual joins in the projection's epilogue.
    linearForward(rec, a(s.x2), u('o_proj'), a(s.att), lin('o_proj'), N, ctx, {
      bias: w.oBias && a(w.oBias),
      residual: a(s.x),
    });

    rmsnormForward(rec, a(s.xn2), s.rstd2, a(s.x2), a(w.postAttentionNorm), { N, C }, dims.rmsNormEps);
    const gateUp = ['gate_proj', 'up_proj'] as const;
    loraDown(rec, gateUp.map(u), a(s.xn2), gateUp.map(lin), N, ctx);
    linearUp(rec, a(s.gate), u('gate_proj'), a(s.xn2), lin('gate_proj'), N);
    linearUp(rec, a(s.up), u('up_proj'), a(s.xn2), lin('up_proj'), N);
    swigluForward(rec, a(s.h), a(s.gate), a(s.up), N * F);
    // x' = x2 + h·Wdᵀ; next = null (recompute): the backward needs down_proj's u = dropout(h)·Aᵀ, not x'.
    linearForward(rec, next && a(next), u('down_proj'), a(s.h), lin('down_proj'), N, ctx, {
      residual: a(s.x2),
    });
  }

  blockBackward(rec: CommandRecorder, l: number, acts: LlamaActivations, ctx: LinearContext): void {
    const { dims } = this;
    const { batch: B, seq: T, grads: d } = acts;
    const N = B * T;
    const { hidden: C, ffn: F } = dims;
    const a = (buffer: GPUBuffer) => this.ref(buffer);
    const dRes = a(acts.dResidual);
    const dNormed = a(acts.dNormed);
    const s = acts.layers[l];
    const w = this.weights.layers[l];
    const back = this.linearsBackward(rec, l, acts, ctx);

    // MLP: x' = x2 + h·Wdᵀ, so dRes flows to x2 unchanged plus the branch's input gradient.
    back(d.dH, acts.dResidual, 'down_proj');
    swigluBackward(rec, a(d.dGate), a(d.dUp), a(d.dH), a(s.gate), a(s.up), N * F);
    back(acts.dNormed, d.dGate, 'gate_proj');
    back(acts.dNormed, d.dUp, 'up_proj', true);
    // The MLP adapters' dB read dResidual before the norm's backward adds into it.
    this.loraGradients(rec, l, acts, ctx, 0, { dResidual: acts.dResidual, dGate: d.dGate, dUp: d.dUp });
    const norm2 = { accumulate: true };
    rmsnormBackward(rec, dRes, dNormed, a(s.x2), a(w.postAttentionNorm), s.rstd2, { N, C }, norm2);

    // Attention: x2 = x + att·Woᵀ.
    back(d.dAtt, acts.dResidual, 'o_proj');
    const normed = qkNormBuffers(s);
    if (normed && d.dqn && d.dkn && w.qkNorm) {
      // Qwen3: attention's dq, dk are the normed q, k's; the norms' backward turns them into the projections'.
      this.attentionBackward(rec, l, this.#attentionInputs(s), { ...d, dq: d.dqn, dk: d.dkn }, acts);
      const { heads: H, kvHeads: Hkv, headDim: D } = dims;
      rmsnormBackward(rec, a(d.dq), a(d.dqn), a(s.q), a(w.qkNorm.q), normed.rstdQ, { N: N * H, C: D });
      rmsnormBackward(rec, a(d.dk), a(d.dkn), a(s.k), a(w.qkNorm.k), normed.rstdK, { N: N * Hkv, C: D });
    } else {
      this.attentionBackward(rec, l, s, d, acts);
    }
    // dq and dk come back through RoPE's rotation already (attention's backward rotates them back).
    // Below layer 0 are the frozen embeddings: no input gradient is needed there.
    const dxn1 = l > 0 ? acts.dNormed : null;
    back(dxn1, d.dq, 'q_proj');
    back(dxn1, d.dk, 'k_proj', true);
    back(dxn1, d.dv, 'v_proj', true);
    this.loraGradients(rec, l, acts, ctx, 1, { dResidual: acts.dResidual, dq: d.dq, dk: d.dk, dv: d.dv });
    this.loraGradients(rec, l, acts, ctx, 2, { xn1: s.xn1, att: s.att, xn2: s.xn2, h: s.h });
    if (l > 0) {
      rmsnormBackward(rec, dRes, dNormed, a(s.x), a(w.inputNorm), s.rstd1, { N, C }, { accumulate: true });
    }
  }
}
