// Token (and learned position) embedding gather. No backward: the embedding tables are frozen base weights
// (LoRA does not target them), so nothing needs a gradient below the first block's input.
// Out-of-range token ids never read out of bounds: their rows become zeros and the first one is reported in
// a small u32 error buffer that the host reads asynchronously with the step's other metrics.

import {
  grid1d,
  roundToF16,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type TensorRef,
} from '../gpu/index.ts';
import embeddingWgsl from '../../../shaders/embedding.wgsl?raw';

const WG = 256;

/** u32 words of the error buffer: [count, firstIndex, firstId]. Zero it (rec.clear) before the first launch. */
export const EMBEDDING_ERROR_WORDS = 3;
export const EMBEDDING_ERROR_BYTES = 4 * EMBEDDING_ERROR_WORDS;

export interface EmbeddingDims {
  /** Tokens (B·T). */
  N: number;
  /** Embedding width. */
  C: number;
  /** Rows of the token table (vocabulary size). */
  V: number;
}

/** GPT-2 learned positions: token n sits at position offset + n mod T. */
export interface PositionEmbedding {
  wpe: TensorRef;
  /** Tokens per sequence (tokens are laid out (B, T)). */
  T: number;
  /** Rows of wpe (n_positions, 1024 for GPT-2). */
  P: number;
  /** Position of t = 0 (the cache length when decoding). Default 0. */
  offset?: number;
}

/**
 * out (N, C) = wte[tokens] (+ wpe[offset + t]); tokens (N) u32. Ids ≥ V give zero rows and are recorded in
 * `errors` ([count, firstIndex, firstId], see decodeEmbeddingErrors). One dispatch.
 */
export function embeddingForward(
  rec: CommandRecorder,
  out: TensorRef,
  errors: BufferBinding,
  tokens: BufferBinding,
  wte: TensorRef,
  dims: EmbeddingDims,
  positions?: PositionEmbedding,
  /** Factor of every token row (Gemma: √C), rounded here to wte's storage type as HF rounds it. Default 1. */
  scale = 1,
): void {
  const { N, C, V } = dims;
  if (!Number.isFinite(scale)) throw new RangeError(`embeddingForward: scale must be finite, got ${scale}`);
  for (const [name, value] of Object.entries({ N, C, V })) {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(`embeddingForward: ${name} must be a whole number ≥ 0, got ${value}`);
    }
  }
  if (N * C > 0xffffffff || V * C > 0xffffffff) {
    throw new RangeError('embeddingForward: N·C and V·C must fit in u32 indices');
  }
  let T = 1;
  let offset = 0;
  if (positions) {
    ({ T, offset = 0 } = positions);
    if (!Number.isInteger(T) || T < 1 || N % T !== 0) {
      throw new RangeError(`embeddingForward: positions.T must be ≥ 1 and divide N = ${N}, got ${T}`);
    }
    if (!Number.isInteger(offset) || offset < 0 || offset + T > positions.P) {
      throw new RangeError(
        `embeddingForward: positions offset ${offset} + T ${T} exceeds the ${positions.P} rows of wpe`,
      );
    }
    if (positions.wpe.dtype !== wte.dtype) {
      throw new TypeError(`embeddingForward: wpe is ${positions.wpe.dtype} but wte is ${wte.dtype}`);
    }
  }
  const entryPoint = positions ? 'embedding_pos' : 'embedding';
  rec.dispatch(
    {
      name: entryPoint,
      source: embeddingWgsl,
      entryPoint,
      aliases: { out_t: out.dtype, w_t: wte.dtype },
      overrides: { WG },
    },
    {
      uniforms: uniforms()
        .u32(N)
        .u32(C)
        .u32(V)
        .u32(T)
        .u32(offset)
        .f32(wte.dtype === 'f16' ? roundToF16([scale])[0] : scale)
        .u32(0)
        .u32(0),
      buffers: positions
        ? [out.binding, errors, tokens, wte.binding, positions.wpe.binding]
        : [out.binding, errors, tokens, wte.binding],
      // At least one workgroup: workgroup 0 does the id check even when C = 0.
      workgroups: grid1d(Math.max(N * C, 1), WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    },
  );
}

export interface EmbeddingErrors {
  /** Out-of-range ids seen since the buffer was zeroed. */
  count: number;
  /** Position (index into tokens) of the first, in the first launch that had any. */
  firstIndex: number;
  firstId: number;
}

/** Decodes the error buffer; null when every id was in range. */
export function decodeEmbeddingErrors(words: ArrayBuffer | Uint32Array): EmbeddingErrors | null {
  const w = words instanceof Uint32Array ? words : new Uint32Array(words, 0, EMBEDDING_ERROR_WORDS);
  if (w[0] === 0) return null;
  return { count: w[0], firstIndex: w[1], firstId: w[2] };
}

/** A RangeError the host can throw or log for a non-null decodeEmbeddingErrors result. */
export function embeddingError(errors: EmbeddingErrors, V: number): RangeError {
  return new RangeError(
    `embedding: ${errors.count} token id(s) outside the vocabulary [0, ${V}); the first is id ` +
      `${errors.firstId} at position ${errors.firstIndex} (its row was zeroed). Check the tokenizer matches the model.`,
  );
}
