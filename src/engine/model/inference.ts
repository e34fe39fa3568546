// Inference with a KV cache for both families (prefill and decode), over the training models' own weights,
// linears and block forward (`blockForward` with a KvCacheSlot), with their LoRA adapters applied unmerged
// and without dropout. Memory is declared up front, once per (batch, capacity):
//
//   cache[l].k, cache[l].v   (B, capacity, Hkv, D)   act   keys/values of every position so far
//   scratch of one block     (B·Tc, …)               act   shared by all layers (no backward to feed)
//   logits                   (B, V) f32                    last position of each sequence
//   logitsAll                (B·Tc, V) f32                 every position (tests, scoring); allocated on demand
//
// where Tc = maxChunk is the most tokens per sequence one forward takes (longer prompts are prefilled in
// chunks). Every sequence of the batch sits at the same position (no ragged batches). One forward is one
// queue.submit whose only readback is the f32 logits; sampling happens on the host (see generate.ts).

import { BufferArena, CommandRecorder, type Gpu, type ScalarType, type TensorRef } from '../gpu/index.ts';
import { copyColumns } from '../kernels/copy2d.ts';
import { EMBEDDING_ERROR_WORDS, embeddingForward } from '../kernels/embedding.ts';
import { layernormForward } from '../kernels/layernorm.ts';
import { matmul } from '../kernels/matmul.ts';
import { rmsnormForward } from '../kernels/rmsnorm.ts';
import type { CausalLM } from './causal-lm.ts';
import { GPT2_LINEARS, Gpt2Model, type Gpt2BlockBuffers } from './gpt2.ts';
import type { KvCacheSlot } from './kv-cache.ts';
import type { LinearContext } from './linear.ts';
import { LLAMA_LINEARS, LlamaModel, type LlamaBlockBuffers } from './llama.ts';

export type InferenceModel = LlamaModel | Gpt2Model;

/** Narrows a loaded CausalLM (e.g. `loaded.withAdapters(adapters)`) to a family inference supports. */
export function asInferenceModel(model: CausalLM): InferenceModel {
  if (model instanceof LlamaModel || model instanceof Gpt2Model) return model;
  throw new TypeError('inference: the model is neither a LlamaModel nor a Gpt2Model');
}

export interface InferenceSessionOptions {
  /** B: sequences run together, all at the same position. Default 1. */
  batch?: number;
  /** Positions per sequence the KV cache holds: prompt plus generated tokens. */
  capacity: number;
  /** Most tokens per sequence one forward takes; longer prefills are split. Default min(capacity, 256). */
  maxChunk?: number;
}

/** Which logits a forward returns: the last position of each sequence (B, V), or every position (B, T, V). */
export type LogitsWanted = 'last' | 'all';

interface Scratch {
  /** Block buffers with x = residual[0] (even layers) and x = residual[1] (odd layers). */
  blocks: [LlamaBlockBuffers | Gpt2BlockBuffers, LlamaBlockBuffers | Gpt2BlockBuffers];
  residual: [GPUBuffer, GPUBuffer]; // (N, C) ping-pong: block l reads residual[l % 2], writes the other
  xn: GPUBuffer; // (N, C) normed rows
  mean: GPUBuffer; // (N) f32 (LayerNorm) — never read
  rstd: GPUBuffer; // (N) f32 — never read
}

export class InferenceSession {
  readonly batch: number;
  readonly capacity: number;
  readonly maxChunk: number;
  readonly arena: BufferArena;
  readonly dtype: ScalarType;
  /** Per layer: keys and values (B, capacity, Hkv, D). */
  readonly cache: { k: GPUBuffer; v: GPUBuffer }[];
  readonly #rec: CommandRecorder;
  readonly #tokens: GPUBuffer; // (B·Tc) u32
  readonly #embedErrors: GPUBuffer; // (3) u32; ids are checked on the host before upload
  readonly #scratch: Scratch;
  readonly #last: GPUBuffer; // (B, C) the last position's residual
  readonly #lastNormed: GPUBuffer; // (B, C)
  readonly #logits: GPUBuffer; // (B, V) f32
  #logitsAll: GPUBuffer | null = null; // (B·Tc, V) f32
  readonly #ctx: LinearContext = { dropoutStep: 0, xDrop: null, eval: true };
  #length = 0;
  #busy = false;

  constructor(
    readonly model: InferenceModel,
    options: InferenceSessionOptions,
  ) {
    const batch = options.batch ?? 1;
    const capacity = options.capacity;
    const maxChunk = options.maxChunk ?? Math.min(capacity, 256);
    for (const [name, value] of Object.entries({ batch, capacity, maxChunk })) {
      if (!Number.isInteger(value) || value < 1) {
        throw new RangeError(`InferenceSession: ${name} must be a whole number ≥ 1, got ${value}`);
      }
    }
    if (model instanceof Gpt2Model && capacity > model.dims.positions) {
      throw new RangeError(
        `InferenceSession: capacity ${capacity} exceeds GPT-2's ${model.dims.positions} positions (n_positions)`,
      );
    }
    this.batch = batch;
    this.capacity = capacity;
    this.maxChunk = Math.min(maxChunk, capacity);
    this.dtype = model.dtype;
    const gpu = model.gpu;
    this.arena = new BufferArena(gpu);
    this.#rec = new CommandRecorder(gpu, { label: 'inference' });
    const e = this.dtype === 'f16' ? 2 : 4;
    const N = batch * this.maxChunk;
    const alloc = (name: string, bytes: number) => this.arena.alloc(`infer.${name}`, bytes);
    const { hidden: C, vocab: V } = model.dims;
    const { kvHeads: Hkv, headDim: D } = model.attentionDims(1, 1);
    try {
      this.cache = Array.from({ length: model.dims.layers }, (_, l) => ({
        k: alloc(`l${l}.k.cache`, e * batch * capacity * Hkv * D),
        v: alloc(`l${l}.v.cache`, e * batch * capacity * Hkv * D),
      }));
      this.#tokens = alloc('tokens', 4 * N);
      this.#embedErrors = alloc('embed.errors', 4 * EMBEDDING_ERROR_WORDS);
      this.#scratch = this.#allocScratch(N, alloc);
      this.#last = alloc('last', e * batch * C);
      this.#lastNormed = alloc('last.normed', e * batch * C);
      this.#logits = alloc('logits', 4 * batch * V);
    } catch (error) {
      this.destroy();
      throw error;
    }
  }

  /** Tokens per sequence in the cache: the position of the next token. */
  get length(): number {
    return this.#length;
  }

  get vocab(): number {
    return this.model.dims.vocab;
  }

  /** Forgets the cache (a new prompt). Buffers are kept. */
  reset(): void {
    this.#length = 0;
  }

  /** Drops cached positions from `length` on (e.g. to reuse a shared prompt prefix). */
  truncate(length: number): void {
    if (!Number.isInteger(length) || length < 0 || length > this.#length) {
      throw new RangeError(
        `InferenceSession.truncate: length must be in [0, ${this.#length}], got ${length}`,
      );
    }
    this.#length = length;
  }

  /**
   * Runs T = tokens.length / B new tokens per sequence at position `length` (tokens (B, T) row-major), writes
   * their keys/values into the cache and resolves with f32 logits: (B, V) of the last position, or (B, T, V)
   * with 'all' (then T ≤ maxChunk). Longer inputs are split into chunks of maxChunk, one submit each; only
   * the last chunk's logits are read back.
   */
  async forward(tokens: ArrayLike<number>, wanted: LogitsWanted = 'last'): Promise<Float32Array> {
    const B = this.batch;
    if (tokens.length === 0 || tokens.length % B !== 0) {
      throw new RangeError(
        `InferenceSession: expected B·T token ids (B = ${B}, T ≥ 1), got ${tokens.length}`,
      );
    }
    const T = tokens.length / B;
    if (this.#length + T > this.capacity) {
      throw new RangeError(
        `InferenceSession: ${T} new tokens at position ${this.#length} exceed the cache capacity ${this.capacity}`,
      );
    }
    if (wanted === 'all' && T > this.maxChunk) {
      throw new RangeError(
        `InferenceSession: logits of all ${T} positions need T ≤ maxChunk (${this.maxChunk})`,
      );
    }
    const V = this.vocab;
    for (let i = 0; i < tokens.length; i++) {
      const id = tokens[i];
      if (!Number.isInteger(id) || id < 0 || id >= V) {
        throw new RangeError(
          `InferenceSession: token id ${id} at index ${i} is outside the vocabulary [0, ${V})`,
        );
      }
    }
    if (this.#busy) throw new Error('InferenceSession: a forward is already running');
    this.#busy = true;
    try {
      let result: Float32Array | null = null;
      for (let start = 0; start < T; start += this.maxChunk) {
        const Tc = Math.min(this.maxChunk, T - start);
        const chunk = new Uint32Array(B * Tc);
        for (let b = 0; b < B; b++) {
          for (let t = 0; t < Tc; t++) chunk[b * Tc + t] = tokens[b * T + start + t];
        }
        const final = start + Tc === T;
        const logits = this.#record(this.#rec, chunk, Tc, final ? wanted : null, this.#length);
        const pending = logits ? this.#rec.readback(logits.buffer, 0, logits.bytes) : null;
        this.#rec.submit();
        this.#length += Tc;
        if (pending) result = new Float32Array(await pending.read());
      }
      return result!;
    } finally {
      this.#busy = false;
    }
  }

  destroy(): void {
    this.#rec.destroy();
    this.arena.destroy();
  }

  /**
   * Records, into the caller's `rec` and without submitting, a forward of `tokens` (B, T) at position `offset`
   * (default: the current length); uploads the ids now. Does not advance `length`. For benchmarks and callers
   * that batch their own submits. Returns the logits buffer ((B, V) or (B, T, V) f32) and its used bytes.
   */
  recordForward(
    rec: CommandRecorder,
    tokens: Uint32Array<ArrayBuffer>,
    wanted: LogitsWanted = 'last',
    offset = this.#length,
  ): { buffer: GPUBuffer; bytes: number } {
    const T = tokens.length / this.batch;
    if (!Number.isInteger(T) || T < 1 || T > this.maxChunk || offset + T > this.capacity) {
      throw new RangeError(
        `InferenceSession.recordForward: ${tokens.length} ids at position ${offset} do not fit ` +
          `(B = ${this.batch}, maxChunk ${this.maxChunk}, capacity ${this.capacity})`,
      );
    }
    return this.#record(rec, tokens, T, wanted, offset)!;
  }

  /** Uploads the chunk and records the blocks, the final norm and the head; advances nothing. */
  #record(
    rec: CommandRecorder,
    chunk: Uint32Array<ArrayBuffer>,
    T: number,
    wanted: LogitsWanted | null,
    offset: number,
  ): { buffer: GPUBuffer; bytes: number } | null {
    const { model } = this;
    const gpu: Gpu = model.gpu;
    const B = this.batch;
    const N = B * T;
    const { hidden: C, vocab: V, layers: L } = model.dims;
    const a = (buffer: GPUBuffer): TensorRef => ({ binding: buffer, dtype: this.dtype });
    const s = this.#scratch;
    gpu.device.queue.writeBuffer(this.#tokens, 0, chunk);

    const x0 = a(s.residual[0]);
    if (model instanceof Gpt2Model) {
      embeddingForward(
        rec,
        x0,
        this.#embedErrors,
        this.#tokens,
        a(model.weights.wte),
        { N, C, V },
        {
          wpe: a(model.weights.wpe),
          T,
          P: model.dims.positions,
          offset,
        },
      );
    } else {
      embeddingForward(rec, x0, this.#embedErrors, this.#tokens, a(model.weights.embed), { N, C, V });
    }
    for (let l = 0; l < L; l++) {
      const cache: KvCacheSlot = { ...this.cache[l], capacity: this.capacity, offset };
      const next = s.residual[(l + 1) % 2];
      if (model instanceof Gpt2Model) {
        model.blockForward(rec, l, s.blocks[l % 2] as Gpt2BlockBuffers, next, B, T, this.#ctx, cache);
      } else {
        model.blockForward(rec, l, s.blocks[l % 2] as LlamaBlockBuffers, next, B, T, this.#ctx, cache);
      }
    }
    if (!wanted) return null;

    const xFinal = s.residual[L % 2];
    let rows = N;
    let x = xFinal;
    let xn = s.xn;
    let logits: GPUBuffer;
    if (wanted === 'last') {
      rows = B;
      logits = this.#logits;
      xn = this.#lastNormed;
      if (T > 1) {
        // The last position of each sequence: B rows of C, T·C apart.
        copyColumns(
          rec,
          { tensor: a(this.#last), stride: C, column: 0 },
          { tensor: a(xFinal), stride: T * C, column: (T - 1) * C },
          B,
          C,
        );
        x = this.#last;
      }
    } else {
      this.#logitsAll ??= this.arena.alloc('infer.logits.all', 4 * B * this.maxChunk * V);
      logits = this.#logitsAll;
    }
    if (model instanceof Gpt2Model) {
      const { w, b } = model.weights.lnF;
      layernormForward(rec, a(xn), s.mean, s.rstd, a(x), a(w), a(b), { N: rows, C }, model.dims.layerNormEps);
    } else {
      rmsnormForward(
        rec,
        a(xn),
        s.rstd,
        a(x),
        a(model.weights.finalNorm),
        { N: rows, C },
        model.dims.rmsNormEps,
      );
    }
    const head = model instanceof Gpt2Model ? model.weights.wte : model.weights.lmHead;
    matmul(rec, { binding: logits, dtype: 'f32' }, a(xn), a(head), { M: rows, N: V, K: C }, { transB: true });
    return { buffer: logits, bytes: 4 * rows * V };
  }

  #allocScratch(N: number, alloc: (name: string, bytes: number) => GPUBuffer): Scratch {
    const { model } = this;
    const e = this.dtype === 'f16' ? 2 : 4;
    const { hidden: C, ffn: F } = model.dims;
    const residual: [GPUBuffer, GPUBuffer] = [alloc('x.0', e * N * C), alloc('x.1', e * N * C)];
    const xn = alloc('xn', e * N * C);
    const mean = alloc('mean', 4 * N);
    const rstd = alloc('rstd', 4 * N);
    const x2 = alloc('x2', e * N * C);
    // One u (N, r_max) f32 serves every adapted linear: each forward consumes its u right away.
    const rMax = Math.max(0, ...[...model.adapters.values()].map((adapter) => adapter.r));
    const u = rMax > 0 ? alloc('lora.u', 4 * N * rMax) : null;
    const shared: Omit<LlamaBlockBuffers, 'x'> | Omit<Gpt2BlockBuffers, 'x'> =
      model instanceof Gpt2Model
        ? {
            mean1: mean,
            rstd1: rstd,
            xn1: xn,
            qkv: alloc('qkv', e * N * 3 * C),
            q: alloc('q', e * N * C),
            k: alloc('k', e * N * C),
            v: alloc('v', e * N * C),
            att: alloc('att', e * N * C),
            lse: null,
            x2,
            mean2: mean,
            rstd2: rstd,
            xn2: xn,
            fc: alloc('fc', e * N * F),
            g: alloc('g', e * N * F),
            u: u ? Object.fromEntries(GPT2_LINEARS.map((name) => [name, u])) : {},
          }
        : {
            rstd1: rstd,
            xn1: xn,
            q: alloc('q', e * N * model.dims.heads * model.dims.headDim),
            k: alloc('k', e * N * model.dims.kvHeads * model.dims.headDim),
            v: alloc('v', e * N * model.dims.kvHeads * model.dims.headDim),
            att: alloc('att', e * N * model.dims.heads * model.dims.headDim),
            lse: null,
            x2,
            rstd2: rstd,
            xn2: xn,
            gate: alloc('gate', e * N * F),
            up: alloc('up', e * N * F),
            h: alloc('h', e * N * F),
            u: u ? Object.fromEntries(LLAMA_LINEARS.map((name) => [name, u])) : {},
          };
    // Even layers read residual[0], odd ones residual[1]: the two blocks differ only in x.
    const blocks = [
      { ...shared, x: residual[0] },
      { ...shared, x: residual[1] },
    ] as Scratch['blocks'];
    return { blocks, residual, xn, mean, rstd };
  }
}
