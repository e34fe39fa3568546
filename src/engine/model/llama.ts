// The Llama family (Llama, SmolLM2, TinyLlama, Mistral without sliding window, Qwen2 with q/k/v bias) on the
// GPU: one explicit forward and one explicit backward per block, llm.c style, over activations declared up
// front. Base weights are frozen: the backward computes input gradients through them and LoRA gradients only.
//
// Shapes: B batch, T sequence, N = B·T tokens, C hidden, H heads, Hkv kv heads, D head dim, F ffn, V vocab.
// Block l:  xn1 = rmsnorm(x)      q,k,v = xn1·W{q,k,v}ᵀ (+ bias), rope(q, k)     att = attention(q, k, v)
//           x2 = x + att·Woᵀ      xn2 = rmsnorm(x2)    h = silu(xn2·Wgᵀ) ∘ (xn2·Wuᵀ)    x' = x2 + h·Wdᵀ

import {
  BufferArena,
  type BufferBinding,
  type CommandRecorder,
  type Gpu,
  type ScalarType,
  type TensorRef,
} from '../gpu/index.ts';
import {
  attentionBackward,
  attentionDeltaBytes,
  attentionForward,
  type AttentionDims,
} from '../kernels/attention.ts';
import { crossEntropyBackward, crossEntropyForward, crossEntropyPlan } from '../kernels/crossentropy.ts';
import { EMBEDDING_ERROR_WORDS, embeddingForward } from '../kernels/embedding.ts';
import { rmsnormBackward, rmsnormForward } from '../kernels/rmsnorm.ts';
import { ropeBackward, ropeForward } from '../kernels/rope.ts';
import { swigluBackward, swigluForward } from '../kernels/activations.ts';
import type {
  ActivationOptions,
  BackwardOptions,
  CausalLM,
  LossOptions,
  TrainingActivations,
} from './causal-lm.ts';
import { layerActivations } from './causal-lm.ts';
import { biasAdd } from '../kernels/bias.ts';
import { actBytes, writeKvCache, type KvCacheSlot } from './kv-cache.ts';
import {
  linearBackward,
  linearForward,
  linearWorkspaceBytes,
  type Linear,
  type LinearContext,
  type LoraAdapter,
} from './linear.ts';

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

/** Frozen weights on the GPU, in the activation storage type. */
export interface LlamaLayerWeights {
  inputNorm: GPUBuffer; // (C)
  postAttentionNorm: GPUBuffer; // (C)
  linears: Record<LlamaLinearName, GPUBuffer>; // (out, in)
  qkvBias?: { q: GPUBuffer; k: GPUBuffer; v: GPUBuffer }; // (H·D), (Hkv·D), (Hkv·D)
  oBias?: GPUBuffer; // (C) Llama with attention_bias
}

export interface LlamaWeights {
  dtype: ScalarType;
  embed: GPUBuffer; // (V, C)
  finalNorm: GPUBuffer; // (C)
  lmHead: GPUBuffer; // (V, C); the embedding itself when tied
  layers: LlamaLayerWeights[];
}

/** The HF module path of a linear, as PEFT names adapters: 'model.layers.3.mlp.up_proj'. */
export function llamaModulePath(layer: number, name: LlamaLinearName): string {
  const group = ['q_proj', 'k_proj', 'v_proj', 'o_proj'].includes(name) ? 'self_attn' : 'mlp';
  return `model.layers.${layer}.${group}.${name}`;
}

export function linearShape(
  dims: LlamaDims,
  name: LlamaLinearName,
): { inFeatures: number; outFeatures: number } {
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
 * The buffers one block's forward reads and writes. Training keeps one set per layer (the backward reads
 * them); inference shares one set of scratch across layers and passes lse = null.
 */
export interface LlamaBlockBuffers {
  x: GPUBuffer; // (N, C) block input (residual stream)
  rstd1: GPUBuffer; // (N) f32
  xn1: GPUBuffer; // (N, C)
  q: GPUBuffer; // (N, H·D) after rope
  k: GPUBuffer; // (N, Hkv·D) after rope
  v: GPUBuffer; // (N, Hkv·D)
  att: GPUBuffer; // (N, H·D) attention output
  lse: GPUBuffer | null; // (B, H, T) f32; null at inference
  x2: GPUBuffer; // (N, C) residual after attention
  rstd2: GPUBuffer; // (N) f32
  xn2: GPUBuffer; // (N, C)
  gate: GPUBuffer; // (N, F)
  up: GPUBuffer; // (N, F)
  h: GPUBuffer; // (N, F) silu(gate)·up
  u: Partial<Record<LlamaLinearName, GPUBuffer>>; // (N, r) f32 per adapted linear: x·Aᵀ
}

/** Every tensor the forward saves for the backward, allocated once per (B, T). */
interface LayerActivations extends LlamaBlockBuffers {
  lse: GPUBuffer; // (B, H, T) f32
}

export class LlamaActivations implements TrainingActivations {
  /**
   * Per layer. Without recompute every field is the layer's own; with it only `x` is, and the rest is one
   * workspace shared by every layer (the forward passes through it, the backward rebuilds it layer by layer).
   */
  readonly layers: LayerActivations[];
  readonly recompute: boolean;
  readonly tokens: GPUBuffer; // (N) u32 input ids
  readonly targets: GPUBuffer; // (N) i32 next-token ids, −100 = ignored
  readonly embedErrors: GPUBuffer; // (3) u32
  readonly xFinal: GPUBuffer; // (N, C) residual after the last block
  readonly rstdFinal: GPUBuffer; // (N) f32
  readonly xnFinal: GPUBuffer; // (N, C) input of the head
  readonly loss: GPUBuffer; // (1) f32 mean loss (accumulated over micro-batches)
  readonly losses: GPUBuffer; // (N) f32 per-token loss
  readonly ceLse: GPUBuffer; // (N) f32
  // Backward scratch, shared by all layers.
  readonly dResidual: GPUBuffer; // (N, C)
  readonly dNormed: GPUBuffer; // (N, C)
  readonly dAtt: GPUBuffer; // (N, H·D)
  readonly dq: GPUBuffer; // (N, H·D)
  readonly dk: GPUBuffer; // (N, Hkv·D)
  readonly dv: GPUBuffer; // (N, Hkv·D)
  readonly dGate: GPUBuffer; // (N, F)
  readonly dUp: GPUBuffer; // (N, F)
  readonly dH: GPUBuffer; // (N, F)
  readonly delta: GPUBuffer; // (B, H, T) f32
  readonly loraV: GPUBuffer; // (N, r_max) f32
  readonly workspace: GPUBuffer; // split-K workspace
  readonly ceScratch: GPUBuffer;
  readonly xDrop: GPUBuffer | null; // (N, max in) LoRA dropout scratch, when any adapter has dropout

  constructor(
    readonly arena: BufferArena,
    readonly model: LlamaModel,
    readonly batch: number,
    readonly seq: number,
    options: ActivationOptions = {},
  ) {
    const { dims, dtype } = model;
    const N = batch * seq;
    const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F } = dims;
    const e = dtype === 'f16' ? 2 : 4;
    const alloc = (name: string, bytes: number) => arena.alloc(name, bytes);
    const rMax = Math.max(1, ...[...model.adapters.values()].map((a) => a.r));
    const rankAt = (l: number, name: LlamaLinearName) => model.adapters.get(llamaModulePath(l, name))?.r ?? 0;
    // Everything a block writes (all but its input x); u only for linears with an adapter of rank `rank`.
    const internals = (prefix: string, rank: (name: LlamaLinearName) => number) => {
      const u: LayerActivations['u'] = {};
      for (const name of LLAMA_LINEARS) {
        const r = rank(name);
        if (r > 0) u[name] = alloc(`${prefix}${name}.u`, 4 * N * r);
      }
      return {
        rstd1: alloc(`${prefix}rstd1`, 4 * N),
        xn1: alloc(`${prefix}xn1`, e * N * C),
        q: alloc(`${prefix}q`, e * N * H * D),
        k: alloc(`${prefix}k`, e * N * Hkv * D),
        v: alloc(`${prefix}v`, e * N * Hkv * D),
        att: alloc(`${prefix}att`, e * N * H * D),
        lse: alloc(`${prefix}lse`, 4 * batch * H * seq),
        x2: alloc(`${prefix}x2`, e * N * C),
        rstd2: alloc(`${prefix}rstd2`, 4 * N),
        xn2: alloc(`${prefix}xn2`, e * N * C),
        gate: alloc(`${prefix}gate`, e * N * F),
        up: alloc(`${prefix}up`, e * N * F),
        h: alloc(`${prefix}h`, e * N * F),
        u,
      };
    };
    this.recompute = options.recompute ?? false;
    this.layers = layerActivations(dims.layers, this.recompute, e * N * C, alloc, rankAt, internals);
    this.tokens = alloc('tokens', 4 * N);
    this.targets = alloc('targets', 4 * N);
    this.embedErrors = alloc('embed.errors', 4 * EMBEDDING_ERROR_WORDS);
    this.xFinal = alloc('x.final', e * N * C);
    this.rstdFinal = alloc('rstd.final', 4 * N);
    this.xnFinal = alloc('xn.final', e * N * C);
    this.loss = alloc('loss', 4);
    this.losses = alloc('losses', 4 * N);
    this.ceLse = alloc('ce.lse', 4 * N);
    this.dResidual = alloc('d.residual', e * N * C);
    this.dNormed = alloc('d.normed', e * N * C);
    this.dAtt = alloc('d.att', e * N * H * D);
    this.dq = alloc('d.q', e * N * H * D);
    this.dk = alloc('d.k', e * N * Hkv * D);
    this.dv = alloc('d.v', e * N * Hkv * D);
    this.dGate = alloc('d.gate', e * N * F);
    this.dUp = alloc('d.up', e * N * F);
    this.dH = alloc('d.h', e * N * F);
    this.delta = alloc('attention.delta', attentionDeltaBytes(model.attentionDims(batch, seq)));
    this.loraV = alloc('lora.v', 4 * N * rMax);
    this.workspace = alloc('splitk.workspace', Math.max(4, linearWorkspaceBytes(model.allLinears(), N)));
    const anyDropout = [...model.adapters.values()].some((a) => (a.dropout?.p ?? 0) > 0);
    this.xDrop = anyDropout ? alloc('lora.xdrop', e * N * Math.max(C, F, H * D)) : null;
    this.ceScratch = alloc(
      'ce.scratch',
      crossEntropyPlan(model.gpu, { N, C, V: dims.vocab }, dtype).scratchBytes,
    );
  }

  linearContext(dropoutStep: number, evaluating = false): LinearContext {
    return { dropoutStep, xDrop: this.xDrop, eval: evaluating };
  }

  get tokenCount(): number {
    return this.batch * this.seq;
  }
}

export class LlamaModel implements CausalLM<LlamaActivations> {
  readonly dtype: ScalarType;

  constructor(
    readonly gpu: Gpu,
    readonly dims: LlamaDims,
    readonly weights: LlamaWeights,
    /** Adapters keyed by HF module path, e.g. 'model.layers.0.self_attn.q_proj' (see `llamaModulePath`). */
    readonly adapters: ReadonlyMap<string, LoraAdapter> = new Map(),
  ) {
    this.dtype = weights.dtype;
  }

  get vocab(): number {
    return this.dims.vocab;
  }

  createActivations(
    arena: BufferArena,
    batch: number,
    seq: number,
    options: ActivationOptions = {},
  ): LlamaActivations {
    return new LlamaActivations(arena, this, batch, seq, options);
  }

  attentionDims(batch: number, seq: number): AttentionDims {
    const { heads, kvHeads, headDim } = this.dims;
    return { batch, seq, heads, kvHeads, headDim };
  }

  linear(layer: number, name: LlamaLinearName): Linear {
    return {
      w: this.#ref(this.weights.layers[layer].linears[name]),
      layout: 'out-in',
      ...linearShape(this.dims, name),
      lora: this.adapters.get(llamaModulePath(layer, name)),
    };
  }

  allLinears(): Linear[] {
    return this.weights.layers.flatMap((_, l) => LLAMA_LINEARS.map((name) => this.linear(l, name)));
  }

  /** Records the forward pass and the loss over `acts.targets`. Token ids and targets must be uploaded. */
  forward(rec: CommandRecorder, acts: LlamaActivations, loss: LossOptions): void {
    const { dims } = this;
    const ctx = acts.linearContext(loss.dropoutStep ?? 0, loss.eval);
    const { batch: B, seq: T } = acts;
    const N = B * T;
    const C = dims.hidden;
    const a = (buffer: GPUBuffer) => this.#ref(buffer);

    rec.clear(acts.embedErrors);
    embeddingForward(rec, a(acts.layers[0].x), acts.embedErrors, acts.tokens, a(this.weights.embed), {
      N,
      C,
      V: dims.vocab,
    });
    for (let l = 0; l < dims.layers; l++) {
      const next = l + 1 < dims.layers ? acts.layers[l + 1].x : acts.xFinal;
      this.blockForward(rec, l, acts.layers[l], next, B, T, ctx);
    }
    rmsnormForward(
      rec,
      a(acts.xnFinal),
      acts.rstdFinal,
      a(acts.xFinal),
      a(this.weights.finalNorm),
      { N, C },
      dims.rmsNormEps,
    );
    crossEntropyForward(
      rec,
      { loss: acts.loss, losses: acts.losses, lse: acts.ceLse },
      a(acts.xnFinal),
      a(this.weights.lmHead),
      acts.targets,
      { N, C, V: dims.vocab },
      { invNormaliser: loss.invNormaliser, accumulate: loss.accumulate, scratch: acts.ceScratch },
    );
  }

  /**
   * Records block `l` on (B, T) tokens: reads `s.x`, writes the block output into `next`. Training passes its
   * saved activations; inference passes shared scratch and `cache`, which receives the T new keys/values at
   * positions cache.offset… and feeds attention over all cache.offset + T of them (no lse saved).
   * next = null is the backward's recomputation: everything the block's backward reads, not its output.
   */
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
    const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F } = dims;
    const w = this.weights.layers[l];
    const a = (buffer: GPUBuffer) => this.#ref(buffer);
    const rope = { theta: dims.ropeTheta, positionOffset: cache?.offset ?? 0 };
    const residualBytes = actBytes(this.dtype, N * C);

    rmsnormForward(rec, a(s.xn1), s.rstd1, a(s.x), a(w.inputNorm), { N, C }, dims.rmsNormEps);
    linearForward(rec, a(s.q), s.u.q_proj ?? null, a(s.xn1), this.linear(l, 'q_proj'), N, ctx);
    linearForward(rec, a(s.k), s.u.k_proj ?? null, a(s.xn1), this.linear(l, 'k_proj'), N, ctx);
    linearForward(rec, a(s.v), s.u.v_proj ?? null, a(s.xn1), this.linear(l, 'v_proj'), N, ctx);
    if (w.qkvBias) {
      biasAdd(rec, a(s.q), a(w.qkvBias.q), { N, C: H * D });
      biasAdd(rec, a(s.k), a(w.qkvBias.k), { N, C: Hkv * D });
      biasAdd(rec, a(s.v), a(w.qkvBias.v), { N, C: Hkv * D });
    }
    ropeForward(rec, a(s.q), a(s.q), { B, T, H, D }, rope);
    ropeForward(rec, a(s.k), a(s.k), { B, T, H: Hkv, D }, rope);
    if (cache) {
      writeKvCache(rec, cache, a(s.k), a(s.v), B, T, Hkv * D);
      attentionForward(rec, a(s.att), null, a(s.q), a(cache.k), a(cache.v), this.attentionDims(B, T), {
        kvLength: cache.offset + T,
        kvCapacity: cache.capacity,
      });
    } else {
      attentionForward(rec, a(s.att), s.lse, a(s.q), a(s.k), a(s.v), this.attentionDims(B, T));
    }
    // x2 = x + att·Woᵀ: copy the residual, then let the projection accumulate into it.
    rec.copy(s.x, 0, s.x2, 0, residualBytes);
    linearForward(rec, a(s.x2), s.u.o_proj ?? null, a(s.att), this.linear(l, 'o_proj'), N, ctx, true);
    if (w.oBias) biasAdd(rec, a(s.x2), a(w.oBias), { N, C });

    rmsnormForward(rec, a(s.xn2), s.rstd2, a(s.x2), a(w.postAttentionNorm), { N, C }, dims.rmsNormEps);
    linearForward(rec, a(s.gate), s.u.gate_proj ?? null, a(s.xn2), this.linear(l, 'gate_proj'), N, ctx);
    linearForward(rec, a(s.up), s.u.up_proj ?? null, a(s.xn2), this.linear(l, 'up_proj'), N, ctx);
    swigluForward(rec, a(s.h), a(s.gate), a(s.up), N * F);
    if (!next) {
      // The backward needs down_proj's u = dropout(h)·Aᵀ, not x'.
      linearForward(rec, null, s.u.down_proj ?? null, a(s.h), this.linear(l, 'down_proj'), N, ctx);
      return;
    }
    rec.copy(s.x2, 0, next, 0, residualBytes);
    linearForward(rec, a(next), s.u.down_proj ?? null, a(s.h), this.linear(l, 'down_proj'), N, ctx, true);
  }

  /**
   * Records the backward pass of the last `forward` on `acts`, accumulating into every adapter's dA/dB.
   * `lossScale` multiplies the loss gradient (dynamic loss scaling; the optimizer divides it out).
   */
  backward(rec: CommandRecorder, acts: LlamaActivations, loss: BackwardOptions): void {
    const ctx = acts.linearContext(loss.dropoutStep ?? 0);
    const { dims } = this;
    const { batch: B, seq: T } = acts;
    const N = B * T;
    const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F } = dims;
    const a = (buffer: GPUBuffer) => this.#ref(buffer);
    const rope = { theta: dims.ropeTheta };
    const scratch = { v: acts.loraV, workspace: acts.workspace };
    const dRes = a(acts.dResidual);
    const dNormed = a(acts.dNormed);

    // Head: d xnFinal (written from zero), then through the final norm into the residual stream.
    rec.clear(acts.dNormed);
    crossEntropyBackward(
      rec,
      dNormed,
      acts.ceLse,
      a(acts.xnFinal),
      a(this.weights.lmHead),
      acts.targets,
      { N, C, V: dims.vocab },
      {
        invNormaliser: loss.invNormaliser,
        lossScale: loss.lossScale,
        scratch: acts.ceScratch,
      },
    );
    rmsnormBackward(rec, dRes, dNormed, a(acts.xFinal), a(this.weights.finalNorm), acts.rstdFinal, { N, C });

    for (let l = dims.layers - 1; l >= 0; l--) {
      const s = acts.layers[l];
      const w = this.weights.layers[l];
      // Recompute: rebuild block l in the shared workspace from its saved input, with the forward's ctx (so the
      // same dropout masks). The last block is still there from the forward.
      if (acts.recompute && l < dims.layers - 1) this.blockForward(rec, l, s, null, B, T, ctx);
      // MLP: x' = x2 + h·Wdᵀ, so dRes flows to x2 unchanged plus the branch's input gradient.
      linearBackward(
        rec,
        a(acts.dH),
        dRes,
        a(s.h),
        s.u.down_proj ?? null,
        this.linear(l, 'down_proj'),
        N,
        scratch,
        ctx,
      );
      swigluBackward(rec, a(acts.dGate), a(acts.dUp), a(acts.dH), a(s.gate), a(s.up), N * F);
      linearBackward(
        rec,
        dNormed,
        a(acts.dGate),
        a(s.xn2),
        s.u.gate_proj ?? null,
        this.linear(l, 'gate_proj'),
        N,
        scratch,
        ctx,
      );
      linearBackward(
        rec,
        dNormed,
        a(acts.dUp),
        a(s.xn2),
        s.u.up_proj ?? null,
        this.linear(l, 'up_proj'),
        N,
        scratch,
        ctx,
        true,
      );
      rmsnormBackward(
        rec,
        dRes,
        dNormed,
        a(s.x2),
        a(w.postAttentionNorm),
        s.rstd2,
        { N, C },
        { accumulate: true },
      );

      // Attention: x2 = x + att·Woᵀ.
      linearBackward(
        rec,
        a(acts.dAtt),
        dRes,
        a(s.att),
        s.u.o_proj ?? null,
        this.linear(l, 'o_proj'),
        N,
        scratch,
        ctx,
      );
      attentionBackward(
        rec,
        a(acts.dq),
        a(acts.dk),
        a(acts.dv),
        acts.delta,
        a(acts.dAtt),
        a(s.att),
        s.lse,
        a(s.q),
        a(s.k),
        a(s.v),
        this.attentionDims(B, T),
      );
      ropeBackward(rec, a(acts.dq), a(acts.dq), { B, T, H, D }, rope);
      ropeBackward(rec, a(acts.dk), a(acts.dk), { B, T, H: Hkv, D }, rope);
      // Below layer 0 are the frozen embeddings: no input gradient is needed there.
      const dxn1 = l > 0 ? dNormed : null;
      linearBackward(
        rec,
        dxn1,
        a(acts.dq),
        a(s.xn1),
        s.u.q_proj ?? null,
        this.linear(l, 'q_proj'),
        N,
        scratch,
        ctx,
      );
      linearBackward(
        rec,
        dxn1,
        a(acts.dk),
        a(s.xn1),
        s.u.k_proj ?? null,
        this.linear(l, 'k_proj'),
        N,
        scratch,
        ctx,
        true,
      );
      linearBackward(
        rec,
        dxn1,
        a(acts.dv),
        a(s.xn1),
        s.u.v_proj ?? null,
        this.linear(l, 'v_proj'),
        N,
        scratch,
        ctx,
        true,
      );
      if (l > 0) {
        rmsnormBackward(rec, dRes, dNormed, a(s.x), a(w.inputNorm), s.rstd1, { N, C }, { accumulate: true });
      }
    }
  }

  #ref(buffer: GPUBuffer | BufferBinding): TensorRef {
    return { binding: buffer, dtype: this.dtype };
  }
}
