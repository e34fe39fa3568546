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
import { EMBEDDING_ERROR_WORDS } from '../kernels/embedding.ts';
import { matmul } from '../kernels/matmul.ts';
import type { CausalLM } from './causal-lm.ts';
import { allocateTable, entryBytes, type BlockBuffers } from './family.ts';
import type { KvCacheSlot } from './kv-cache.ts';
import { EVAL_CONTEXT, type LinearContext } from './linear.ts';
import { TransformerModel, type AnyTransformer } from './transformer.ts';

export type InferenceModel = AnyTransformer;

/** Narrows a loaded CausalLM (e.g. `loaded.withAdapters(adapters)`) to a model inference can run. */
export function asInferenceModel(model: CausalLM): InferenceModel {
  if (model instanceof TransformerModel) return model as InferenceModel;
  throw new TypeError('inference: the model is not a TransformerModel (no family implements it)');
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
  /** One block's buffers with x = residual[0] (even layers) and x = residual[1] (odd layers). */
  blocks: [BlockBuffers, BlockBuffers];
  residual: [GPUBuffer, GPUBuffer]; // (N, C) ping-pong: block l reads residual[l % 2], writes the other
  xn: GPUBuffer; // (N, C) normed rows
  norm: object; // the final norm's statistics for N rows — never read
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
  readonly #ctx: LinearContext = EVAL_CONTEXT;
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
    if (model.positions !== null && capacity > model.positions) {
      throw new RangeError(
        `InferenceSession: capacity ${capacity} exceeds ${model.name}'s ${model.positions} positions (n_positions)`,
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
    const { hidden: C, vocab: V, layers: L } = model.shape;
    const { kvHeads: Hkv, headDim: D } = model.attentionDims(1, 1);
    try {
      this.cache = Array.from({ length: L }, (_, l) => ({
        k: alloc(`l${l}.k.cache`, e * batch * capacity * Hkv * D),
        v: alloc(`l${l}.v.cache`, e * batch * capacity * Hkv * D),
      }));
      this.#tokens = alloc('tokens', 4 * N);
      this.#embedErrors = alloc('embed.errors', 4 * EMBEDDING_ERROR_WORDS);
      this.#scratch = this.#allocScratch(batch, this.maxChunk, alloc);
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
    return this.model.vocab;
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
    const { hidden: C, vocab: V, layers: L } = model.shape;
    const a = (buffer: GPUBuffer): TensorRef => ({ binding: buffer, dtype: this.dtype });
    const s = this.#scratch;
    gpu.device.queue.writeBuffer(this.#tokens, 0, chunk);

    model.embed(rec, s.residual[0], this.#embedErrors, this.#tokens, B, T, offset);
    for (let l = 0; l < L; l++) {
      const cache: KvCacheSlot = { ...this.cache[l], capacity: this.capacity, offset };
      model.blockForward(rec, l, s.blocks[l % 2], s.residual[(l + 1) % 2], B, T, this.#ctx, cache);
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
    model.finalNorm(rec, xn, s.norm, x, rows);
    const head = a(model.head);
    matmul(rec, { binding: logits, dtype: 'f32' }, a(xn), head, { M: rows, N: V, K: C }, { transB: true });
    return { buffer: logits, bytes: 4 * rows * V };
  }

  /** One block of scratch from the family's own table (no lse: nothing to backpropagate). */
  #allocScratch(B: number, T: number, alloc: (name: string, bytes: number) => GPUBuffer): Scratch {
    const { model, dtype } = this;
    const table = model.table(B, T);
    const { lse: _lse, ...internals } = table.block;
    const residual: [GPUBuffer, GPUBuffer] = [
      alloc('x.0', entryBytes(table.input, dtype)),
      alloc('x.1', entryBytes(table.input, dtype)),
    ];
    // One (N, Σr) f32 u serves every layer: each forward consumes its u right away.
    const u = table.u ? alloc('lora.u', entryBytes(table.u, dtype)) : null;
    const columns = Object.entries(table.uColumns) as [string, number][];
    const shared = {
      ...allocateTable(internals, '', dtype, alloc),
      lse: null,
      u: u
        ? Object.fromEntries(
            columns.map(([name, column]) => [name, { buffer: u, column, width: table.uWidth }]),
          )
        : {},
    };
    // Even layers read residual[0], odd ones residual[1]: the two blocks differ only in x.
    const blocks: Scratch['blocks'] = [
      { ...shared, x: residual[0] },
      { ...shared, x: residual[1] },
    ];
    const xn = alloc('xn', entryBytes(table.step.xnFinal, dtype));
    return { blocks, residual, xn, norm: allocateTable(table.norm, 'norm.', dtype, alloc) };
  }
}
