// GPT-2 on the GPU: learned positions, pre-LayerNorm blocks, fused c_attn, gelu_new MLP, head tied to wte.
// Conv1D weights are stored (in, out), so the linears use the 'in-out' layout. One explicit forward and one
// explicit backward per block (llm.c's train_gpt2.c is the model), LoRA gradients only.
//
// Shapes: N = B·T tokens, C hidden, H heads (D = C / H), F = 4C usually, V vocab, P positions.
// Block l:  xn1 = ln_1(x)   qkv = xn1·W_attn + b   q | k | v = qkv   att = attention(q, k, v)
//           x2 = x + att·W_proj + b   xn2 = ln_2(x2)   fc = xn2·W_fc + b   x' = x2 + gelu(fc)·W_mproj + b

import type {
  BufferArena,
  BufferBinding,
  CommandRecorder,
  Gpu,
  ScalarType,
  TensorRef,
} from '../gpu/index.ts';
import { geluBackward, geluForward } from '../kernels/activations.ts';
import {
  attentionBackward,
  attentionDeltaBytes,
  attentionForward,
  type AttentionDims,
} from '../kernels/attention.ts';
import { biasAdd } from '../kernels/bias.ts';
import { copyColumns } from '../kernels/copy2d.ts';
import { crossEntropyBackward, crossEntropyForward, crossEntropyPlan } from '../kernels/crossentropy.ts';
import { EMBEDDING_ERROR_WORDS, embeddingForward } from '../kernels/embedding.ts';
import { layernormBackward, layernormForward } from '../kernels/layernorm.ts';
import type {
  ActivationOptions,
  BackwardOptions,
  CausalLM,
  LossOptions,
  TrainingActivations,
} from './causal-lm.ts';
import { layerActivations } from './causal-lm.ts';
import { actBytes, writeKvCache, type KvCacheSlot } from './kv-cache.ts';
import {
  linearBackward,
  linearForward,
  linearWorkspaceBytes,
  type Linear,
  type LinearContext,
  type LoraAdapter,
} from './linear.ts';

export interface Gpt2Dims {
  layers: number;
  hidden: number;
  heads: number;
  ffn: number;
  vocab: number;
  positions: number;
  layerNormEps: number;
}

export const GPT2_LINEARS = ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'] as const;
export type Gpt2LinearName = (typeof GPT2_LINEARS)[number];

export function gpt2ModulePath(layer: number, name: Gpt2LinearName): string {
  return `transformer.h.${layer}.${name}`;
}

export function gpt2LinearShape(
  dims: Gpt2Dims,
  name: Gpt2LinearName,
): { inFeatures: number; outFeatures: number } {
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

/**
 * The buffers one block's forward reads and writes. Training keeps one set per layer (the backward reads
 * them); inference shares one set of scratch across layers and passes lse = null.
 */
export interface Gpt2BlockBuffers {
  x: GPUBuffer; // (N, C)
  mean1: GPUBuffer; // (N) f32
  rstd1: GPUBuffer; // (N) f32
  xn1: GPUBuffer; // (N, C)
  qkv: GPUBuffer; // (N, 3C)
  q: GPUBuffer; // (N, C)
  k: GPUBuffer; // (N, C)
  v: GPUBuffer; // (N, C)
  att: GPUBuffer; // (N, C)
  lse: GPUBuffer | null; // (B, H, T) f32; null at inference
  x2: GPUBuffer; // (N, C)
  mean2: GPUBuffer;
  rstd2: GPUBuffer;
  xn2: GPUBuffer; // (N, C)
  fc: GPUBuffer; // (N, F) pre-activation
  g: GPUBuffer; // (N, F) gelu(fc)
  u: Partial<Record<Gpt2LinearName, GPUBuffer>>; // (N, r) f32 per adapted linear
}

interface LayerActivations extends Gpt2BlockBuffers {
  lse: GPUBuffer; // (B, H, T) f32
}

export class Gpt2Activations implements TrainingActivations {
  /**
   * Per layer. Without recompute every field is the layer's own; with it only `x` is, and the rest is one
   * workspace shared by every layer (the forward passes through it, the backward rebuilds it layer by layer).
   */
  readonly layers: LayerActivations[];
  readonly recompute: boolean;
  readonly tokens: GPUBuffer;
  readonly targets: GPUBuffer;
  readonly embedErrors: GPUBuffer;
  readonly xFinal: GPUBuffer; // (N, C)
  readonly meanFinal: GPUBuffer;
  readonly rstdFinal: GPUBuffer;
  readonly xnFinal: GPUBuffer; // (N, C)
  readonly loss: GPUBuffer;
  readonly losses: GPUBuffer;
  readonly ceLse: GPUBuffer;
  // Backward scratch.
  readonly dResidual: GPUBuffer; // (N, C)
  readonly dNormed: GPUBuffer; // (N, C)
  readonly dQkv: GPUBuffer; // (N, 3C)
  readonly dAtt: GPUBuffer; // (N, C)
  readonly dq: GPUBuffer;
  readonly dk: GPUBuffer;
  readonly dv: GPUBuffer;
  readonly dFc: GPUBuffer; // (N, F)
  readonly dG: GPUBuffer; // (N, F)
  readonly delta: GPUBuffer;
  readonly loraV: GPUBuffer;
  readonly xDrop: GPUBuffer | null;
  readonly workspace: GPUBuffer;
  readonly ceScratch: GPUBuffer;

  constructor(
    readonly arena: BufferArena,
    readonly model: Gpt2Model,
    readonly batch: number,
    readonly seq: number,
    options: ActivationOptions = {},
  ) {
    const { dims, dtype } = model;
    if (seq > dims.positions) {
      throw new RangeError(
        `GPT-2: sequence length ${seq} exceeds the model's ${dims.positions} positions (n_positions)`,
      );
    }
    const N = batch * seq;
    const { hidden: C, heads: H, ffn: F } = dims;
    const e = dtype === 'f16' ? 2 : 4;
    const alloc = (name: string, bytes: number) => arena.alloc(name, bytes);
    const rankAt = (l: number, name: Gpt2LinearName) => model.adapters.get(gpt2ModulePath(l, name))?.r ?? 0;
    // Everything a block writes (all but its input x); u only for linears with an adapter of rank `rank`.
    const internals = (prefix: string, rank: (name: Gpt2LinearName) => number) => {
      const u: LayerActivations['u'] = {};
      for (const name of GPT2_LINEARS) {
        const r = rank(name);
        if (r > 0) u[name] = alloc(`${prefix}${name}.u`, 4 * N * r);
      }
      return {
        mean1: alloc(`${prefix}mean1`, 4 * N),
        rstd1: alloc(`${prefix}rstd1`, 4 * N),
        xn1: alloc(`${prefix}xn1`, e * N * C),
        qkv: alloc(`${prefix}qkv`, e * N * 3 * C),
        q: alloc(`${prefix}q`, e * N * C),
        k: alloc(`${prefix}k`, e * N * C),
        v: alloc(`${prefix}v`, e * N * C),
        att: alloc(`${prefix}att`, e * N * C),
        lse: alloc(`${prefix}lse`, 4 * batch * H * seq),
        x2: alloc(`${prefix}x2`, e * N * C),
        mean2: alloc(`${prefix}mean2`, 4 * N),
        rstd2: alloc(`${prefix}rstd2`, 4 * N),
        xn2: alloc(`${prefix}xn2`, e * N * C),
        fc: alloc(`${prefix}fc`, e * N * F),
        g: alloc(`${prefix}g`, e * N * F),
        u,
      };
    };
    this.recompute = options.recompute ?? false;
    this.layers = layerActivations(dims.layers, this.recompute, e * N * C, alloc, rankAt, internals);
    this.tokens = alloc('tokens', 4 * N);
    this.targets = alloc('targets', 4 * N);
    this.embedErrors = alloc('embed.errors', 4 * EMBEDDING_ERROR_WORDS);
    this.xFinal = alloc('x.final', e * N * C);
    this.meanFinal = alloc('mean.final', 4 * N);
    this.rstdFinal = alloc('rstd.final', 4 * N);
    this.xnFinal = alloc('xn.final', e * N * C);
    this.loss = alloc('loss', 4);
    this.losses = alloc('losses', 4 * N);
    this.ceLse = alloc('ce.lse', 4 * N);
    this.dResidual = alloc('d.residual', e * N * C);
    this.dNormed = alloc('d.normed', e * N * C);
    this.dQkv = alloc('d.qkv', e * N * 3 * C);
    this.dAtt = alloc('d.att', e * N * C);
    this.dq = alloc('d.q', e * N * C);
    this.dk = alloc('d.k', e * N * C);
    this.dv = alloc('d.v', e * N * C);
    this.dFc = alloc('d.fc', e * N * F);
    this.dG = alloc('d.g', e * N * F);
    this.delta = alloc('attention.delta', attentionDeltaBytes(model.attentionDims(batch, seq)));
    const rMax = Math.max(1, ...[...model.adapters.values()].map((a) => a.r));
    this.loraV = alloc('lora.v', 4 * N * rMax);
    const anyDropout = [...model.adapters.values()].some((a) => (a.dropout?.p ?? 0) > 0);
    this.xDrop = anyDropout ? alloc('lora.xdrop', e * N * Math.max(C, F)) : null;
    this.workspace = alloc('splitk.workspace', Math.max(4, linearWorkspaceBytes(model.allLinears(), N)));
    this.ceScratch = alloc(
      'ce.scratch',
      crossEntropyPlan(model.gpu, { N, C, V: dims.vocab }, dtype).scratchBytes,
    );
  }

  linearContext(dropoutStep: number, evaluating = false): LinearContext {
    return { dropoutStep, xDrop: this.xDrop, eval: evaluating };
  }
}

export class Gpt2Model implements CausalLM<Gpt2Activations> {
  readonly dtype: ScalarType;

  constructor(
    readonly gpu: Gpu,
    readonly dims: Gpt2Dims,
    readonly weights: Gpt2Weights,
    /** Adapters keyed by HF module path, e.g. 'transformer.h.0.attn.c_attn'. */
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
  ): Gpt2Activations {
    return new Gpt2Activations(arena, this, batch, seq, options);
  }

  attentionDims(batch: number, seq: number): AttentionDims {
    const { heads, hidden } = this.dims;
    return { batch, seq, heads, kvHeads: heads, headDim: hidden / heads };
  }

  linear(layer: number, name: Gpt2LinearName): Linear {
    return {
      w: this.#ref(this.weights.layers[layer].linears[name].w),
      layout: 'in-out',
      ...gpt2LinearShape(this.dims, name),
      lora: this.adapters.get(gpt2ModulePath(layer, name)),
    };
  }

  allLinears(): Linear[] {
    return this.weights.layers.flatMap((_, l) => GPT2_LINEARS.map((name) => this.linear(l, name)));
  }

  forward(rec: CommandRecorder, acts: Gpt2Activations, loss: LossOptions): void {
    const { dims } = this;
    const ctx = acts.linearContext(loss.dropoutStep ?? 0, loss.eval);
    const { batch: B, seq: T } = acts;
    const N = B * T;
    const { hidden: C, layerNormEps: eps } = dims;
    const a = (buffer: GPUBuffer) => this.#ref(buffer);

    rec.clear(acts.embedErrors);
    embeddingForward(
      rec,
      a(acts.layers[0].x),
      acts.embedErrors,
      acts.tokens,
      a(this.weights.wte),
      { N, C, V: dims.vocab },
      { wpe: a(this.weights.wpe), T, P: dims.positions },
    );
    for (let l = 0; l < dims.layers; l++) {
      const next = l + 1 < dims.layers ? acts.layers[l + 1].x : acts.xFinal;
      this.blockForward(rec, l, acts.layers[l], next, B, T, ctx);
    }
    const lnF = this.weights.lnF;
    layernormForward(
      rec,
      a(acts.xnFinal),
      acts.meanFinal,
      acts.rstdFinal,
      a(acts.xFinal),
      a(lnF.w),
      a(lnF.b),
      { N, C },
      eps,
    );
    crossEntropyForward(
      rec,
      { loss: acts.loss, losses: acts.losses, lse: acts.ceLse },
      a(acts.xnFinal),
      a(this.weights.wte),
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
    const a = (buffer: GPUBuffer) => this.#ref(buffer);
    const bias = (name: Gpt2LinearName) => a(w.linears[name].b);
    const residualBytes = actBytes(this.dtype, N * C);

    layernormForward(rec, a(s.xn1), s.mean1, s.rstd1, a(s.x), a(w.ln1.w), a(w.ln1.b), { N, C }, eps);
    linearForward(rec, a(s.qkv), s.u['attn.c_attn'] ?? null, a(s.xn1), this.linear(l, 'attn.c_attn'), N, ctx);
    biasAdd(rec, a(s.qkv), bias('attn.c_attn'), { N, C: 3 * C });
    for (const [i, part] of [s.q, s.k, s.v].entries()) {
      copyColumns(
        rec,
        { tensor: a(part), stride: C, column: 0 },
        { tensor: a(s.qkv), stride: 3 * C, column: i * C },
        N,
        C,
      );
    }
    if (cache) {
      writeKvCache(rec, cache, a(s.k), a(s.v), B, T, C);
      attentionForward(rec, a(s.att), null, a(s.q), a(cache.k), a(cache.v), this.attentionDims(B, T), {
        kvLength: cache.offset + T,
        kvCapacity: cache.capacity,
      });
    } else {
      attentionForward(rec, a(s.att), s.lse, a(s.q), a(s.k), a(s.v), this.attentionDims(B, T));
    }
    rec.copy(s.x, 0, s.x2, 0, residualBytes);
    linearForward(
      rec,
      a(s.x2),
      s.u['attn.c_proj'] ?? null,
      a(s.att),
      this.linear(l, 'attn.c_proj'),
      N,
      ctx,
      true,
    );
    biasAdd(rec, a(s.x2), bias('attn.c_proj'), { N, C });

    layernormForward(rec, a(s.xn2), s.mean2, s.rstd2, a(s.x2), a(w.ln2.w), a(w.ln2.b), { N, C }, eps);
    linearForward(rec, a(s.fc), s.u['mlp.c_fc'] ?? null, a(s.xn2), this.linear(l, 'mlp.c_fc'), N, ctx);
    biasAdd(rec, a(s.fc), bias('mlp.c_fc'), { N, C: F });
    geluForward(rec, a(s.g), a(s.fc), N * F);
    if (!next) {
      // The backward needs mlp.c_proj's u = dropout(g)·Aᵀ, not x'.
      const proj = this.linear(l, 'mlp.c_proj');
      linearForward(rec, null, s.u['mlp.c_proj'] ?? null, a(s.g), proj, N, ctx);
      return;
    }
    rec.copy(s.x2, 0, next, 0, residualBytes);
    linearForward(
      rec,
      a(next),
      s.u['mlp.c_proj'] ?? null,
      a(s.g),
      this.linear(l, 'mlp.c_proj'),
      N,
      ctx,
      true,
    );
    biasAdd(rec, a(next), bias('mlp.c_proj'), { N, C });
  }

  backward(rec: CommandRecorder, acts: Gpt2Activations, loss: BackwardOptions): void {
    const { dims } = this;
    const ctx = acts.linearContext(loss.dropoutStep ?? 0);
    const { batch: B, seq: T } = acts;
    const N = B * T;
    const { hidden: C, ffn: F } = dims;
    const a = (buffer: GPUBuffer) => this.#ref(buffer);
    const scratch = { v: acts.loraV, workspace: acts.workspace };
    const dRes = a(acts.dResidual);
    const dNormed = a(acts.dNormed);

    rec.clear(acts.dNormed);
    crossEntropyBackward(
      rec,
      dNormed,
      acts.ceLse,
      a(acts.xnFinal),
      a(this.weights.wte),
      acts.targets,
      { N, C, V: dims.vocab },
      {
        invNormaliser: loss.invNormaliser,
        lossScale: loss.lossScale,
        scratch: acts.ceScratch,
      },
    );
    const lnF = this.weights.lnF;
    layernormBackward(rec, dRes, dNormed, a(acts.xFinal), a(lnF.w), acts.meanFinal, acts.rstdFinal, { N, C });

    for (let l = dims.layers - 1; l >= 0; l--) {
      const s = acts.layers[l];
      const w = this.weights.layers[l];
      // Recompute: rebuild block l in the shared workspace from its saved input, with the forward's ctx (so the
      // same dropout masks). The last block is still there from the forward.
      if (acts.recompute && l < dims.layers - 1) this.blockForward(rec, l, s, null, B, T, ctx);
      // MLP branch (biases are frozen: their gradient is not needed).
      linearBackward(
        rec,
        a(acts.dG),
        dRes,
        a(s.g),
        s.u['mlp.c_proj'] ?? null,
        this.linear(l, 'mlp.c_proj'),
        N,
        scratch,
        ctx,
      );
      geluBackward(rec, a(acts.dFc), a(acts.dG), a(s.fc), N * F);
      linearBackward(
        rec,
        dNormed,
        a(acts.dFc),
        a(s.xn2),
        s.u['mlp.c_fc'] ?? null,
        this.linear(l, 'mlp.c_fc'),
        N,
        scratch,
        ctx,
      );
      layernormBackward(
        rec,
        dRes,
        dNormed,
        a(s.x2),
        a(w.ln2.w),
        s.mean2,
        s.rstd2,
        { N, C },
        { accumulate: true },
      );

      // Attention branch.
      linearBackward(
        rec,
        a(acts.dAtt),
        dRes,
        a(s.att),
        s.u['attn.c_proj'] ?? null,
        this.linear(l, 'attn.c_proj'),
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
      for (const [i, part] of [acts.dq, acts.dk, acts.dv].entries()) {
        copyColumns(
          rec,
          { tensor: a(acts.dQkv), stride: 3 * C, column: i * C },
          { tensor: a(part), stride: C, column: 0 },
          N,
          C,
        );
      }
      // Below layer 0 are the frozen embeddings: no input gradient needed there.
      const dxn1 = l > 0 ? dNormed : null;
      linearBackward(
        rec,
        dxn1,
        a(acts.dQkv),
        a(s.xn1),
        s.u['attn.c_attn'] ?? null,
        this.linear(l, 'attn.c_attn'),
        N,
        scratch,
        ctx,
      );
      if (l > 0)
        layernormBackward(
          rec,
          dRes,
          dNormed,
          a(s.x),
          a(w.ln1.w),
          s.mean1,
          s.rstd1,
          { N, C },
          { accumulate: true },
        );
    }
  }

  #ref(buffer: GPUBuffer | BufferBinding): TensorRef {
    return { binding: buffer, dtype: this.dtype };
  }
}
