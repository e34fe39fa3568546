// Text generation over an InferenceSession: prefill the prompt, then one decode step (one submit, one f32
// logits readback of V floats) per new token. Sampling runs on the host from those logits — greedy,
// temperature, top-k, top-p (nucleus), in Hugging Face's order (temperature → top-k → top-p) — with a
// seeded RNG, so a seed reproduces a run exactly. At V = 49k a step reads back ~200 KB; sampling is O(V)
// passes plus a sort of the few candidates (see TokenSampler.sample).

import { Rng } from '../rng.ts';
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
  #w = new Float64Array(0);

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
    let max = -Infinity;
    for (let i = 0; i < V; i++) if (logits[i] > max) max = logits[i];
    if (max === -Infinity) return argmax(logits);
    // Unnormalised probabilities w = exp((l − max) / T), in (0, 1]; −∞ and NaN get 0.
    if (this.#w.length !== V) this.#w = new Float64Array(V);
    const w = this.#w;
    let total = 0;
    for (let i = 0; i < V; i++) {
      const l = logits[i];
      w[i] = l > -Infinity ? Math.exp((l - max) * invT) : 0;
      total += w[i];
    }
    const k = this.topK > 0 ? Math.min(this.topK, V) : V;
    if (k === V && this.topP >= 1) return this.#draw(w, V, total, 0);
    if (k === V) return this.#draw(w, V, total, nucleusCut(w, V, total, this.topP));

    // Top-k, then top-p over the renormalised k: a k-heap pass, then a sort of k ids only.
    const top = largest(w, V, k);
    let kept = top.length;
    let mass = 0;
    for (const i of top) mass += w[i];
    if (this.topP < 1) {
      // HF's nucleus: keep tokens while the mass before them is < topP (the crossing token is kept).
      let before = 0;
      for (let j = 0; j < kept; j++) {
        before += w[top[j]] / mass;
        if (before >= this.topP) {
          kept = j + 1;
          break;
        }
      }
      mass = 0;
      for (let j = 0; j < kept; j++) mass += w[top[j]];
    }
    let u = this.#rng.random() * mass;
    for (let j = 0; j < kept; j++) {
      u -= w[top[j]];
      if (u < 0) return top[j];
    }
    return top[kept - 1]; // rounding left a sliver of u
  }

  /** Draws i with probability ∝ w[i] among the tokens with w[i] ≥ cut (and w[i] > 0), in id order. */
  #draw(w: Float64Array, V: number, total: number, cut: number): number {
    if (cut > 0) {
      total = 0;
      for (let i = 0; i < V; i++) if (w[i] >= cut) total += w[i];
    }
    let u = this.#rng.random() * total;
    let last = 0;
    for (let i = 0; i < V; i++) {
      if (w[i] === 0 || w[i] < cut) continue;
      last = i;
      u -= w[i];
      if (u < 0) return i;
    }
    return last;
  }
}

/** The k largest of w (ties: lower id first), most likely first. One O(V) pass with a k-heap. */
function largest(w: Float64Array, V: number, k: number): number[] {
  // Min-heap on (w, −id): the root is the weakest kept token.
  const heap: number[] = [];
  const weaker = (a: number, b: number) => w[a] < w[b] || (w[a] === w[b] && a > b);
  const siftDown = (at: number) => {
    for (;;) {
      const l = 2 * at + 1;
      const r = l + 1;
      let m = at;
      if (l < heap.length && weaker(heap[l], heap[m])) m = l;
      if (r < heap.length && weaker(heap[r], heap[m])) m = r;
      if (m === at) return;
      [heap[at], heap[m]] = [heap[m], heap[at]];
      at = m;
    }
  };
  for (let i = 0; i < V; i++) {
    if (heap.length < k) {
      heap.push(i);
      for (let at = heap.length - 1; at > 0;) {
        const parent = (at - 1) >> 1;
        if (!weaker(heap[at], heap[parent])) break;
        [heap[at], heap[parent]] = [heap[parent], heap[at]];
        at = parent;
      }
    } else if (weaker(heap[0], i)) {
      heap[0] = i;
      siftDown(0);
    }
  }
  return heap.sort((a, b) => w[b] - w[a] || a - b);
}

/**
 * The weight of the token where the nucleus (HF top-p) ends: the kept tokens are those with w ≥ it (ties at
 * it are all kept). Lowers a cut 4× per O(V) pass until {w ≥ cut} holds mass topP — for a peaked LM
 * distribution one or two passes — then sorts only those weights (a native typed-array sort).
 */
function nucleusCut(w: Float64Array, V: number, total: number, topP: number): number {
  let cut = 0;
  let count = V;
  for (let c = 0.25, j = 0; j < 40; j++, c *= 0.25) {
    let n = 0;
    let mass = 0;
    for (let i = 0; i < V; i++) {
      if (w[i] >= c) {
        n++;
        mass += w[i];
      }
    }
    if (mass >= topP * total) {
      cut = c;
      count = n;
      break;
    }
  }
  const negated = new Float64Array(count);
  let n = 0;
  for (let i = 0; i < V; i++) if (w[i] >= cut) negated[n++] = -w[i];
  negated.sort(); // most likely first
  let before = 0;
  for (let j = 0; j < n; j++) {
    before += -negated[j] / total;
    if (before >= topP) return -negated[j];
  }
  return -negated[n - 1];
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
    if (!this.tokenizer) return null;
    // Nothing generated (EOS first): some tokenizers refuse to decode an empty list.
    return this.ids.length === 0 ? '' : this.tokenizer.decode(this.ids);
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
