// The body every family shares on the GPU, as llm.c's gpt2_forward / gpt2_backward around its blocks: token
// embedding, the blocks, the final norm and the chunked cross-entropy head, and the backward through them in
// reverse, over activations allocated once from the family's table (family.ts). A family subclass supplies what
// differs — its embedding, one block forward and backward, its final norm and head weight, its linears — and
// gets training, activation recomputation and KV-cache inference (inference.ts) from them.

import type { BufferArena, CommandRecorder, Gpu, Scalar, ScalarType, TensorRef } from '../gpu/index.ts';
import {
  attentionBackward,
  attentionForward,
  type AttentionDims,
  type AttentionLayout,
  type AttentionRope,
} from '../kernels/attention.ts';
import {
  crossEntropyBackward,
  crossEntropyForward,
  crossEntropyTrainForward,
} from '../kernels/crossentropy.ts';
import type {
  ActivationOptions,
  BackwardOptions,
  CausalLM,
  LossOptions,
  TrainingActivations,
} from './causal-lm.ts';
import {
  allocateTable,
  entryBytes,
  trainingTable,
  type BlockBuffers,
  type FamilyShape,
  type StepBuffers,
  type TrainingTable,
} from './family.ts';
import { planGradients, recordGradients, type GradientDispatch } from './gradients.ts';
import { writeKvCache, type KvCacheSlot } from './kv-cache.ts';
import {
  EVAL_CONTEXT,
  linearBackward,
  type Linear,
  type LinearContext,
  type LoraAdapter,
  type RankColumns,
} from './linear.ts';

/** What attention reads and writes in a block: q (N, H·D), k, v (N, Hkv·D), att (N, H·D), lse (B, H, T). */
interface AttentionBuffers {
  q: GPUBuffer;
  k: GPUBuffer;
  v: GPUBuffer;
  att: GPUBuffer;
  lse: GPUBuffer | null;
}

/** A training block: its lse is always there (the attention backward reads it). */
export type TrainingBlock<Block> = Block & { lse: GPUBuffer };

/** Everything a training step on (B, T) reads and writes, allocated from the family's table. */
export type FamilyActivations<
  L extends string,
  Block extends BlockBuffers<L>,
  Norm,
  Grads,
> = TrainingActivations &
  StepBuffers & {
    /**
     * Per layer. Without recompute every field is the layer's own; with it only `x` is, and the rest is one
     * workspace shared by every layer (the forward passes through it, the backward rebuilds it layer by layer).
     */
    readonly layers: TrainingBlock<Block>[];
    readonly norm: Norm; // final norm statistics
    readonly grads: Grads; // backward scratch, shared by all layers
    /**
     * The linears' context for one micro-batch: writes the LoRA dropout base (dropoutStep − offset) into `rng`
     * and keys the masks by base + offset. Micro-batches recorded into one submit must share the base.
     */
    linearContext(dropoutStep: number, evaluating?: boolean, offset?: number): LinearContext;
    /**
     * Set by a training forward (LossOptions.lossScale): dNormed holds the head's gradient for this loss scale
     * and normaliser, and the backward that follows starts from it. Cleared by that backward.
     */
    headGrad: { lossScale: Scalar; invNormaliser: Scalar } | null;
    /** Where each adapted linear's r columns sit in a layer's u (and in loraV), and their total width Σr. */
    readonly uColumns: Partial<Record<L, number>>;
    readonly uWidth: number;
    /** The adapters' gradient dispatches: [layer][gradient group] (model/gradients.ts). */
    readonly gradients: GradientDispatch[][][];
  };

export abstract class TransformerModel<
  L extends string,
  Block extends BlockBuffers<L>,
  Norm,
  Grads,
> implements CausalLM<FamilyActivations<L, Block, Norm, Grads>> {
  constructor(
    readonly gpu: Gpu,
    readonly dtype: ScalarType,
    readonly shape: FamilyShape<L, Block, Norm, Grads>,
    /** Adapters keyed by HF module path (`shape.modulePath`), e.g. 'model.layers.0.self_attn.q_proj'. */
    readonly adapters: ReadonlyMap<string, LoraAdapter>,
  ) {}

  /** The family's name in messages ('Llama', 'GPT-2'). */
  abstract readonly name: string;
  /** The LM head's weight (V, C): the tied embedding or lm_head. */
  abstract readonly head: GPUBuffer;

  /** x (N, C) = the embedding of `tokens` (N = B·T) at positions offset…offset+T−1 of each sequence. */
  abstract embed(
    rec: CommandRecorder,
    x: GPUBuffer,
    errors: GPUBuffer,
    tokens: GPUBuffer,
    B: number,
    T: number,
    offset: number,
  ): void;

  /**
   * Records block `l` on (B, T) tokens: reads `s.x`, writes the block output into `next`. Training passes its
   * saved activations; inference passes shared scratch and `cache`, which receives the T new keys/values at
   * positions cache.offset… and feeds attention over all cache.offset + T of them (no lse saved).
   * next = null is the backward's recomputation: everything the block's backward reads, not its output.
   */
  abstract blockForward(
    rec: CommandRecorder,
    l: number,
    s: Block,
    next: GPUBuffer | null,
    B: number,
    T: number,
    ctx: LinearContext,
    cache?: KvCacheSlot,
  ): void;

  /**
   * Records block `l`'s backward: reads acts.dResidual (the gradient of the block output), leaves in it the
   * gradient of the block input (except below layer 0, where nothing needs it) and accumulates the adapters'
   * dA, dB.
   */
  abstract blockBackward(
    rec: CommandRecorder,
    l: number,
    acts: FamilyActivations<L, Block, Norm, Grads>,
    ctx: LinearContext,
  ): void;

  /** xn (rows, C) = norm(x), saving its statistics. */
  abstract finalNorm(rec: CommandRecorder, xn: GPUBuffer, stats: Norm, x: GPUBuffer, rows: number): void;

  /** dx (rows, C) = the final norm's input gradient from dxn. */
  abstract finalNormBackward(
    rec: CommandRecorder,
    dx: GPUBuffer,
    dxn: GPUBuffer,
    x: GPUBuffer,
    stats: Norm,
    rows: number,
  ): void;

  /** The frozen weight of linear `name` in block `layer`, stored as `linearLayout` says. */
  abstract linearWeight(layer: number, name: L): GPUBuffer;
  /** (out, in) as torch.nn.Linear stores weights, or (in, out) for GPT-2's Conv1D. */
  abstract readonly linearLayout: Linear['layout'];

  /** Linear `name` of block `layer`, with its adapter. */
  linear(layer: number, name: L): Linear {
    return {
      w: this.ref(this.linearWeight(layer, name)),
      layout: this.linearLayout,
      ...this.shape.linearShape(name),
      lora: this.adapter(layer, name),
    };
  }

  get vocab(): number {
    return this.shape.vocab;
  }

  allLinears(): Linear[] {
    const layers = Array.from({ length: this.shape.layers }, (_, l) => l);
    return layers.flatMap((l) => this.shape.linears.map((name) => this.linear(l, name)));
  }

  attentionDims(batch: number, seq: number): AttentionDims {
    return this.shape.attentionDims(batch, seq);
  }

  /** The adapter of linear `name` in block `layer`, if it has one. */
  adapter(layer: number, name: L): LoraAdapter | undefined {
    return this.adapters.get(this.shape.modulePath(layer, name));
  }

  /** The activation table of a training step on (batch, seq) with this model's adapters. */
  table(batch: number, seq: number, gradChunkTokens?: number): TrainingTable<L, Block, Norm, Grads> {
    const layers = Array.from({ length: this.shape.layers }, (_, l) => l);
    const { positions } = this;
    if (positions !== null && seq > positions) {
      throw new RangeError(
        `${this.name}: sequence length ${seq} exceeds the model's ${positions} positions (n_positions)`,
      );
    }
    return trainingTable(this.shape, {
      batch,
      seq,
      dtype: this.dtype,
      rank: (name) => Math.max(0, ...layers.map((l) => this.adapter(l, name)?.r ?? 0)),
      limits: this.gpu.limits,
      gradChunkTokens,
    });
  }

  /** Positions a learned position table holds, or null (RoPE). */
  get positions(): number | null {
    return this.shape.maxPositions;
  }

  createActivations(
    arena: BufferArena,
    batch: number,
    seq: number,
    options: ActivationOptions = {},
  ): FamilyActivations<L, Block, Norm, Grads> {
    const table = this.table(batch, seq, options.gradChunkTokens);
    const recompute = options.recompute ?? false;
    const { dtype } = this;
    const alloc = (name: string, bytes: number) => arena.alloc(name, bytes);
    // A block's internals, and its (N, Σr) u when `layer` has an adapter (any layer, for the shared workspace):
    // each adapted linear's columns of it.
    const internals = (prefix: string, layer: number | null) => {
      const u: Partial<Record<L, RankColumns>> = {};
      const names = this.shape.linears.filter(
        (name) => table.uColumns[name] !== undefined && (layer === null || this.adapter(layer, name)),
      );
      if (table.u && names.length > 0) {
        const buffer = alloc(`${prefix}u`, entryBytes(table.u, dtype));
        for (const name of names) u[name] = { buffer, column: table.uColumns[name]!, width: table.uWidth };
      }
      return { ...allocateTable(table.block, prefix, dtype, alloc), u };
    };
    const shared = recompute ? internals('block.', null) : null;
    const layers = Array.from({ length: this.shape.layers }, (_, l) => ({
      x: alloc(`l${l}.x`, entryBytes(table.input, dtype)),
      ...(shared ?? internals(`l${l}.`, l)),
    })) as TrainingBlock<Block>[]; // the table's keys are Block's fields (EntryTable<BlockInternals<Block>>)
    const step = allocateTable(table.step, '', dtype, alloc);
    const queue = this.gpu.device.queue;
    const gradients = planGradients({
      groups: this.shape.gradientGroups,
      layers: this.shape.layers,
      tokens: batch * seq,
      adapter: (l, name) => this.adapter(l, name),
      linearShape: (name) => this.shape.linearShape(name),
      uColumns: table.uColumns,
      uWidth: table.uWidth,
      tables: step.gradTables,
      tableOffsets: table.gradTableOffsets,
      workspace: step.gradWorkspace,
      chunkTokens: options.gradChunkTokens,
      queue,
      arena,
    });
    return {
      ...step,
      norm: allocateTable(table.norm, 'norm.', dtype, alloc) as Norm,
      grads: allocateTable(table.grads, 'd.', dtype, alloc) as Grads,
      layers,
      recompute,
      batch,
      seq,
      arena,
      headGrad: null,
      uColumns: table.uColumns,
      uWidth: table.uWidth,
      gradients,
      linearContext(dropoutStep, evaluating = false, offset = 0) {
        if (evaluating) return EVAL_CONTEXT;
        this.writeDropoutBase(dropoutStep - offset);
        return { rng: step.rng, stepOffset: offset };
      },
      writeDropoutBase(base) {
        if (!Number.isInteger(base) || base < 0 || base > 0xffffffff) {
          throw new RangeError(`dropout step base ${base}: must be a whole number from 0 to 2³² − 1`);
        }
        queue.writeBuffer(step.rng, 0, Uint32Array.of(base));
      },
    };
  }

  /** Records the forward pass and the loss over `acts.targets`. Token ids and targets must be uploaded. */
  forward(rec: CommandRecorder, acts: FamilyActivations<L, Block, Norm, Grads>, loss: LossOptions): void {
    const ctx = acts.linearContext(loss.dropoutStep ?? 0, loss.eval, loss.dropoutOffset);
    const { batch: B, seq: T } = acts;
    const N = B * T;
    const L = this.shape.layers;
    rec.clear(acts.embedErrors);
    this.embed(rec, acts.layers[0].x, acts.embedErrors, acts.tokens, B, T, 0);
    for (let l = 0; l < L; l++) {
      const next = l + 1 < L ? acts.layers[l + 1].x : acts.xFinal;
      this.blockForward(rec, l, acts.layers[l], next, B, T, ctx);
    }
    this.finalNorm(rec, acts.xnFinal, acts.norm, acts.xFinal, N);
    const out = { loss: acts.loss, losses: acts.losses, lse: acts.ceLse };
    const [h, w] = [this.ref(acts.xnFinal), this.ref(this.head)];
    const dims = { N, C: this.shape.hidden, V: this.vocab };
    const { invNormaliser, accumulate, lossScale } = loss;
    const options = { invNormaliser, accumulate, scratch: acts.ceScratch };
    if (lossScale === undefined || loss.eval) {
      crossEntropyForward(rec, out, h, w, acts.targets, dims, options);
      acts.headGrad = null;
      return;
    }
    // Training: the head's gradient in the same sweep over the vocabulary (each chunk's logits once).
    const dh = this.ref(acts.dNormed);
    crossEntropyTrainForward(rec, { ...out, dh }, h, w, acts.targets, dims, {
      ...options,
      lossScale,
      gradScratch: acts.ceGrad,
    });
    acts.headGrad = { lossScale, invNormaliser };
  }

  /**
   * Records the backward pass of the last `forward` on `acts`, accumulating into every adapter's dA/dB.
   * `lossScale` multiplies the loss gradient (dynamic loss scaling; the optimizer divides it out).
   */
  backward(
    rec: CommandRecorder,
    acts: FamilyActivations<L, Block, Norm, Grads>,
    loss: BackwardOptions,
  ): void {
    const ctx = acts.linearContext(loss.dropoutStep ?? 0, false, loss.dropoutOffset);
    const { batch: B, seq: T } = acts;
    const N = B * T;
    const L = this.shape.layers;
    // Head: d xnFinal, from the training forward's fused pass when it ran with this loss scale, else here (the
    // logits computed again), then through the final norm into the residual stream.
    const ready = acts.headGrad;
    acts.headGrad = null;
    if (ready?.lossScale !== loss.lossScale || ready.invNormaliser !== loss.invNormaliser) {
      rec.clear(acts.dNormed);
      crossEntropyBackward(
        rec,
        this.ref(acts.dNormed),
        acts.ceLse,
        this.ref(acts.xnFinal),
        this.ref(this.head),
        acts.targets,
        { N, C: this.shape.hidden, V: this.vocab },
        { invNormaliser: loss.invNormaliser, lossScale: loss.lossScale, scratch: acts.ceScratch },
      );
    }
    this.finalNormBackward(rec, acts.dResidual, acts.dNormed, acts.xFinal, acts.norm, N);
    for (let l = L - 1; l >= 0; l--) {
      // Recompute: rebuild block l in the shared workspace from its saved input, with the forward's ctx (so the
      // same dropout masks). The last block is still there from the forward.
      if (acts.recompute && l < L - 1) this.blockForward(rec, l, acts.layers[l], null, B, T, ctx);
      this.blockBackward(rec, l, acts, ctx);
    }
  }

  /**
   * Backward of block `l`'s linears: back(dx, dy, name) writes dx (adds with `accumulate`; null skips it) from dy
   * through the frozen weight and the adapter's path, leaving v in the layer's v for `loraGradients`.
   */
  protected linearsBackward(
    rec: CommandRecorder,
    l: number,
    acts: FamilyActivations<L, Block, Norm, Grads>,
    ctx: LinearContext,
  ) {
    const { uColumns, uWidth } = acts;
    const tokens = acts.batch * acts.seq;
    const a = (buffer: GPUBuffer) => this.ref(buffer);
    return (dx: GPUBuffer | null, dy: GPUBuffer, name: L, accumulate = false): void => {
      const column = uColumns[name];
      const v = column === undefined ? null : { buffer: acts.loraV, column, width: uWidth };
      linearBackward(rec, dx && a(dx), a(dy), this.linear(l, name), tokens, v, ctx, accumulate);
    };
  }

  /**
   * Adds block `l`'s adapter gradients of gradient group `group` (FamilyShape.gradientGroups): one dispatch for all
   * of them. `tensors` binds the names the group's members read (their dy, or their x).
   */
  protected loraGradients(
    rec: CommandRecorder,
    l: number,
    acts: FamilyActivations<L, Block, Norm, Grads>,
    ctx: LinearContext,
    group: number,
    tensors: Readonly<Record<string, GPUBuffer>>,
  ): void {
    const refs = Object.fromEntries(Object.entries(tensors).map(([name, b]) => [name, this.ref(b)]));
    const u = Object.values<RankColumns | undefined>(acts.layers[l].u).find((x) => x !== undefined);
    recordGradients(rec, acts.gradients[l][group], refs, { u, v: acts.loraV }, ctx);
  }

  /**
   * att = attention(q, k, v) of block `l` over the block's own keys (training), or over the cache after writing
   * k, v to it; through the block's sliding window, if it has one.
   */
  protected attention(
    rec: CommandRecorder,
    l: number,
    s: AttentionBuffers,
    B: number,
    T: number,
    cache?: KvCacheSlot,
    layout?: AttentionLayout,
  ): void {
    const a = (buffer: GPUBuffer) => this.ref(buffer);
    const dims = this.attentionDims(B, T);
    const rope = this.ropeOf(l);
    const window = this.attentionWindow(l);
    const scale = this.attentionScale;
    if (!cache) {
      attentionForward(rec, a(s.att), s.lse, a(s.q), a(s.k), a(s.v), dims, { rope, layout, window, scale });
      return;
    }
    // The cache keeps k as the projection wrote it; with RoPE, attention rotates each key by its position.
    writeKvCache(rec, cache, a(s.k), a(s.v), B, T, dims.kvHeads * dims.headDim);
    attentionForward(rec, a(s.att), null, a(s.q), a(cache.k), a(cache.v), dims, {
      kvLength: cache.offset + T,
      kvCapacity: cache.capacity,
      rope,
      window,
      scale,
    });
  }

  /** Attention's score scale, or undefined for 1/√D (Gemma 3: query_pre_attn_scalar^−½). */
  protected get attentionScale(): number | undefined {
    return undefined;
  }

  /** Keys each query of block `l` sees (a sliding window), or undefined for global causal attention. */
  attentionWindow(_l: number): number | undefined {
    return undefined;
  }

  /**
   * Block `l`'s rotary position embedding, applied inside attention (q and k as loaded), or none (learned
   * positions, or a layer without RoPE).
   */
  protected ropeOf(_l: number): AttentionRope | undefined {
    return undefined;
  }

  /** dq, dk, dv (N, ·) from d.dAtt: the backward of block `l`'s `attention` over the block's own keys. */
  protected attentionBackward(
    rec: CommandRecorder,
    l: number,
    s: AttentionBuffers & { lse: GPUBuffer },
    d: { dq: GPUBuffer; dk: GPUBuffer; dv: GPUBuffer; dAtt: GPUBuffer },
    acts: { batch: number; seq: number; delta: GPUBuffer },
    layout?: AttentionLayout,
  ): void {
    const a = (buffer: GPUBuffer) => this.ref(buffer);
    const [dq, dk, dv, dAtt] = [a(d.dq), a(d.dk), a(d.dv), a(d.dAtt)];
    const dims = this.attentionDims(acts.batch, acts.seq);
    const [q, k, v] = [a(s.q), a(s.k), a(s.v)];
    attentionBackward(rec, dq, dk, dv, acts.delta, dAtt, a(s.att), s.lse, q, k, v, dims, {
      rope: this.ropeOf(l),
      layout,
      window: this.attentionWindow(l),
      scale: this.attentionScale,
    });
  }

  /** A buffer as a tensor in the activation storage type. */
  protected ref(buffer: GPUBuffer): TensorRef {
    return { binding: buffer, dtype: this.dtype };
  }
}

/** Any family, as code that works on every family sees it: what inference runs a model by. */
export type AnyTransformer = Pick<
  TransformerModel<string, BlockBuffers, object, object>,
  | 'gpu'
  | 'dtype'
  | 'name'
  | 'shape'
  | 'adapters'
  | 'vocab'
  | 'positions'
  | 'head'
  | 'attentionDims'
  | 'table'
  | 'embed'
  | 'blockForward'
  | 'finalNorm'
>;
