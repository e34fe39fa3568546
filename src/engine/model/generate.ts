// Text generation over an InferenceSession: prefill the prompt, then one decode step (one submit, one f32
// logits readback of V floats) per new token. Sampling runs on the host from those logits — greedy,
// temperature, top-k, top-p (nucleus), in Hugging Face's order (temperature → top-k → top-p) — with a
// seeded RNG, so a seed reproduces a run exactly. At V = 49k a step reads back ~200 KB and sorts V floats
// once (a native typed-array sort), which is small next to the forward.

import { Rng } from '../search/rng.ts';
import type { InferenceSession } from './inference.ts';

export interface SamplingOptions {
  /** Softmax temperature; 0 (the default) is greedy decoding (argmax). */
  temperature?: number;
  /** Keep only the k most likely tokens; 0 (default) keeps all. */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p; 1 (default) keeps all. */
  topP?: number;
  /** Seed of the sampling RNG (default 0). Same seed, same prompt, same model: same tokens. */
  seed?: number;
}

function checkSampling({ temperature = 0, topK = 0, topP = 1 }: SamplingOptions): void {
  if (!(temperature >= 0) || !Number.isFinite(temperature)) {
    throw new RangeError(`temperature must be a finite number ≥ 0, got ${temperature}`);
  }
  if (!Number.isInteger(topK) || topK < 0)
    throw new RangeError(`topK must be a whole number ≥ 0, got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new RangeError(`topP must be in (0, 1], got ${topP}`);
}

/** Index of the largest value (the first of equal maxima); NaN never wins. */
export function argmax(values: ArrayLike<number>): number {
  let best = 0;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    if (values[i] > max) {
      max = values[i];
      best = i;
    }
  }
  return best;
}

/** Draws token ids from logits with the given options; one RNG stream per sampler. */
export class TokenSampler {
  readonly temperature: number;
  readonly topK: number;
  readonly topP: number;
  readonly #rng: Rng;
  #sorted = new Float64Array(0);

  constructor(options: SamplingOptions = {}) {
    checkSampling(options);
    this.temperature = options.temperature ?? 0;
    this.topK = options.topK ?? 0;
    this.topP = options.topP ?? 1;
    this.#rng = new Rng(options.seed ?? 0, 'generate.sample');
  }

  get greedy(): boolean {
    return this.temperature === 0 || this.topK === 1;
  }

  /** A token id drawn from `logits` (V values; NaN counts as −∞). */
  sample(logits: ArrayLike<number>): number {
    const V = logits.length;
    if (V === 0) throw new RangeError('TokenSampler: empty logits');
    if (this.greedy) return argmax(logits);
    const invT = 1 / this.temperature;
    // Candidates are the tokens whose logit reaches a threshold: the k-th largest logit (top-k), then the
    // logit where the nucleus mass reaches topP. Ties at the threshold are all kept.
    if (this.#sorted.length !== V) this.#sorted = new Float64Array(V);
    const sorted = this.#sorted;
    for (let i = 0; i < V; i++) sorted[i] = Number.isNaN(logits[i]) ? Infinity : -logits[i];
    sorted.sort(); // ascending −logit: descending logit, NaN (as +∞) last
    const max = -sorted[0];
    const kept = this.topK > 0 ? Math.min(this.topK, V) : V;
    let threshold = -sorted[kept - 1];
    if (this.topP < 1) {
      let total = 0;
      for (let i = 0; i < kept; i++) total += Math.exp((-sorted[i] - max) * invT);
      let before = 0;
      for (let i = 0; i < kept; i++) {
        threshold = -sorted[i];
        before += Math.exp((-sorted[i] - max) * invT) / total;
        if (before >= this.topP) break;
      }
    }
    let total = 0;
    for (let i = 0; i < V; i++) if (logits[i] >= threshold) total += Math.exp((logits[i] - max) * invT);
    let u = this.#rng.random() * total;
    let last = -1;
    for (let i = 0; i < V; i++) {
      if (!(logits[i] >= threshold)) continue;
      last = i;
      u -= Math.exp((logits[i] - max) * invT);
      if (u < 0) return i;
    }
    return last; // rounding left a sliver of u: the last candidate
  }
}

/** Anything that turns ids into text (ModelTokenizer does). */
export interface TokenDecoder {
  decode(ids: readonly number[]): string;
}

export interface GenerateOptions extends SamplingOptions {
  /** Most new tokens (stops earlier at EOS, at the cache capacity, or on abort). */
  maxNewTokens: number;
  /** Any of these ids ends generation; it is not streamed nor added to `tokens`. */
  eosTokenIds?: readonly number[];
  signal?: AbortSignal;
  /** Turns the growing sequence into text for `onToken` and the result. */
  tokenizer?: TokenDecoder;
  /**
   * Called once per new token with the text it completes. Text is the decode of all generated ids so far
   * minus what was already streamed, so multi-byte characters split over tokens come out whole (a token
   * that ends inside a character streams '' and its bytes come with the next one).
   */
  onToken?: (id: number, text: string) => void;
}

export type StopReason = 'eos' | 'length' | 'capacity' | 'aborted';

export interface GenerateResult {
  /** New token ids, prompt and EOS excluded. */
  tokens: number[];
  /** Decode of `tokens` when a tokenizer was given. */
  text: string | null;
  stopReason: StopReason;
  /** The EOS id that stopped generation. */
  stopToken: number | null;
}

export interface GeneratedToken {
  id: number;
  /** The streamed piece (see GenerateOptions.onToken); '' without a tokenizer. */
  text: string;
}

/** Streams text pieces from a growing id sequence, holding back incomplete UTF-8 (U+FFFD at the end). */
export class TextStream {
  readonly ids: number[] = [];
  #emitted = 0;

  constructor(readonly tokenizer: TokenDecoder | undefined) {}

  push(id: number): string {
    this.ids.push(id);
    if (!this.tokenizer) return '';
    const text = this.tokenizer.decode(this.ids);
    if (text.endsWith('\uFFFD')) return '';
    const piece = text.slice(this.#emitted);
    this.#emitted = text.length;
    return piece;
  }

  get text(): string | null {
    return this.tokenizer ? this.tokenizer.decode(this.ids) : null;
  }
}

/**
 * Generates from `prompt` (token ids, one sequence: the session's batch must be 1), yielding each new
 * token; the generator's return value is the GenerateResult. The session is reset first.
 */
export async function* generateTokens(
  session: InferenceSession,
  prompt: readonly number[],
  options: GenerateOptions,
): AsyncGenerator<GeneratedToken, GenerateResult> {
  const { maxNewTokens, signal } = options;
  if (session.batch !== 1)
    throw new RangeError(`generate: the session's batch must be 1, got ${session.batch}`);
  if (prompt.length === 0) throw new RangeError('generate: the prompt needs at least one token');
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 0) {
    throw new RangeError(`generate: maxNewTokens must be a whole number ≥ 0, got ${maxNewTokens}`);
  }
  if (prompt.length > session.capacity) {
    throw new RangeError(
      `generate: the prompt has ${prompt.length} tokens; the cache holds ${session.capacity}`,
    );
  }
  const sampler = new TokenSampler(options);
  const eos = new Set(options.eosTokenIds ?? []);
  const stream = new TextStream(options.tokenizer);
  const finish = (stopReason: StopReason, stopToken: number | null = null): GenerateResult => ({
    tokens: stream.ids.slice(),
    text: stream.text,
    stopReason,
    stopToken,
  });

  session.reset();
  if (signal?.aborted) return finish('aborted');
  if (maxNewTokens === 0) return finish('length');
  let logits = await session.forward(prompt);
  for (;;) {
    if (signal?.aborted) return finish('aborted');
    const id = sampler.sample(logits);
    if (eos.has(id)) return finish('eos', id);
    const text = stream.push(id);
    options.onToken?.(id, text);
    yield { id, text };
    if (stream.ids.length >= maxNewTokens) return finish('length');
    if (session.length >= session.capacity) return finish('capacity');
    if (signal?.aborted) return finish('aborted');
    logits = await session.forward([id]);
  }
}

/** Runs generateTokens to the end and returns its result (tokens stream through `onToken`). */
export async function generate(
  session: InferenceSession,
  prompt: readonly number[],
  options: GenerateOptions,
): Promise<GenerateResult> {
  const run = generateTokens(session, prompt, options);
  for (;;) {
    const step = await run.next();
    if (step.done) return step.value;
  }
}
