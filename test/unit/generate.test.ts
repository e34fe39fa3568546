// Host-side sampling and the generation loop: greedy, temperature, top-k, top-p against their definitions,
// seeded reproducibility, UTF-8 streaming, and the stop conditions (EOS, length, capacity, abort) over a
// scripted stand-in for the GPU session.
import { describe, expect, it } from 'vitest';
import {
  argmax,
  generate,
  generateTokens,
  TextStream,
  TokenSampler,
  type SamplingOptions,
} from '../../src/engine/model/generate.ts';
import type { InferenceSession } from '../../src/engine/model/inference.ts';

const softmax = (logits: number[], T: number) => {
  const max = Math.max(...logits);
  const e = logits.map((l) => Math.exp((l - max) / T));
  const z = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / z);
};

function frequencies(options: SamplingOptions, logits: number[], draws: number): number[] {
  const sampler = new TokenSampler(options);
  const counts = new Array<number>(logits.length).fill(0);
  const input = Float32Array.from(logits);
  for (let i = 0; i < draws; i++) counts[sampler.sample(input)]++;
  return counts.map((c) => c / draws);
}

/** |f − p| within 5 binomial standard deviations for every token. */
function expectDistribution(freq: number[], p: number[], draws: number): void {
  freq.forEach((f, i) => {
    const sigma = Math.sqrt((p[i] * (1 - p[i])) / draws) + 1e-12;
    expect(Math.abs(f - p[i]), `token ${i}: frequency ${f}, probability ${p[i]}`).toBeLessThanOrEqual(
      5 * sigma + 1e-9,
    );
  });
}

function randomLogits(V: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: V }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 8 - 4;
  });
}

describe('TokenSampler', () => {
  it('argmax takes the first of equal maxima and never NaN', () => {
    expect(argmax([1, 3, 3, 2])).toBe(1);
    expect(argmax([NaN, -1, -2])).toBe(1);
  });

  it('temperature 0, top-k = 1 and a tiny top-p are all greedy', () => {
    for (let seed = 0; seed < 20; seed++) {
      const logits = randomLogits(1000, seed + 1);
      const best = argmax(logits);
      expect(new TokenSampler({ temperature: 0 }).sample(logits)).toBe(best);
      expect(new TokenSampler({ temperature: 1.5, topK: 1, seed }).sample(logits)).toBe(best);
      expect(new TokenSampler({ temperature: 1.5, topP: 1e-9, seed }).sample(logits)).toBe(best);
    }
  });

  it('the same seed draws the same tokens; another seed draws others', () => {
    const logits = randomLogits(500, 3);
    const run = (seed: number) => {
      const sampler = new TokenSampler({ temperature: 1, topK: 50, topP: 0.9, seed });
      return Array.from({ length: 64 }, () => sampler.sample(logits));
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
  });

  it('temperature T samples softmax(logits / T)', () => {
    const logits = [2, 1, 0, -1, 0.5];
    const draws = 40000;
    for (const T of [0.5, 1, 2]) {
      expectDistribution(frequencies({ temperature: T, seed: 1 }, logits, draws), softmax(logits, T), draws);
    }
  });

  it('top-k keeps the k largest and renormalises them', () => {
    const logits = [0, 3, 1, 2, -1];
    const draws = 30000;
    const freq = frequencies({ temperature: 1, topK: 2, seed: 2 }, logits, draws);
    const p = softmax([3, 2], 1);
    expectDistribution(freq, [0, p[0], 0, p[1], 0], draws);
  });

  it('top-p keeps the smallest head reaching p (the crossing token included), as HF does', () => {
    const probs = [0.5, 0.3, 0.15, 0.05];
    const logits = probs.map(Math.log);
    const draws = 30000;
    // p = 0.7: 0.5 < 0.7, so token 1 is kept and crosses it; tokens 2, 3 are dropped.
    expectDistribution(
      frequencies({ temperature: 1, topP: 0.7, seed: 3 }, logits, draws),
      [0.625, 0.375, 0, 0],
      draws,
    );
    // p = 0.5: token 0 alone reaches it.
    expectDistribution(
      frequencies({ temperature: 1, topP: 0.5, seed: 3 }, logits, draws),
      [1, 0, 0, 0],
      draws,
    );
    // top-k first, then top-p over the renormalised survivors: k = 3 gives [0.526, 0.316, 0.158]; p = 0.8 keeps 2.
    expectDistribution(
      frequencies({ temperature: 1, topK: 3, topP: 0.8, seed: 4 }, logits, draws),
      [0.625, 0.375, 0, 0],
      draws,
    );
  });

  it('rejects bad options, naming them', () => {
    expect(() => new TokenSampler({ temperature: -1 })).toThrow(/temperature/);
    expect(() => new TokenSampler({ topK: 1.5 })).toThrow(/topK/);
    expect(() => new TokenSampler({ topP: 0 })).toThrow(/topP/);
  });
});

/** Ids are bytes; decoding shows incomplete UTF-8 as U+FFFD, as byte-level BPE tokenizers do. */
const byteTokenizer = { decode: (ids: readonly number[]) => new TextDecoder().decode(Uint8Array.from(ids)) };

describe('TextStream', () => {
  it('holds back a character split over tokens until it is complete', () => {
    const stream = new TextStream(byteTokenizer);
    const bytes = [...new TextEncoder().encode('a€b')]; // € is E2 82 AC
    const pieces = bytes.map((b) => stream.push(b));
    expect(pieces).toEqual(['a', '', '', '€', 'b']);
    expect(pieces.join('')).toBe(stream.text);
  });
});

/** A scripted session: the logits after a sequence of length n put all mass on script[n]. */
function fakeSession(script: number[], V: number, capacity = 100) {
  let length = 0;
  const calls: number[][] = [];
  const session = {
    batch: 1,
    capacity,
    get length() {
      return length;
    },
    reset: () => (length = 0),
    forward: async (tokens: ArrayLike<number>) => {
      calls.push(Array.from(tokens));
      length += tokens.length;
      const logits = new Float32Array(V).fill(-10);
      logits[script[length] ?? 0] = 10;
      return logits;
    },
  };
  return { session: session as unknown as InferenceSession, calls };
}

describe('generate', () => {
  it('prefills once, then decodes one token per step and stops at EOS (not streamed)', async () => {
    const { session, calls } = fakeSession([0, 0, 0, 5, 6, 7, 9, 8], 10);
    const streamed: number[] = [];
    const result = await generate(session, [1, 2, 3], {
      maxNewTokens: 10,
      eosTokenIds: [9],
      onToken: (id) => streamed.push(id),
    });
    expect(result).toEqual({ tokens: [5, 6, 7], text: null, stopReason: 'eos', stopToken: 9 });
    expect(streamed).toEqual([5, 6, 7]);
    expect(calls).toEqual([[1, 2, 3], [5], [6], [7]]);
  });

  it('stops at maxNewTokens and at the cache capacity', async () => {
    const script = [0, 1, 2, 3, 4, 5, 6, 7, 8];
    const byLength = await generate(fakeSession(script, 10).session, [1], { maxNewTokens: 3 });
    expect(byLength.tokens).toEqual([1, 2, 3]);
    expect(byLength.stopReason).toBe('length');
    const byCapacity = await generate(fakeSession(script, 10, 4).session, [1, 2], { maxNewTokens: 10 });
    expect(byCapacity.tokens).toEqual([2, 3, 4]);
    expect(byCapacity.stopReason).toBe('capacity');
  });

  it('an AbortSignal stops it between steps', async () => {
    const controller = new AbortController();
    const run = generateTokens(fakeSession([0, 1, 2, 3, 4, 5], 10).session, [1], {
      maxNewTokens: 10,
      signal: controller.signal,
    });
    expect((await run.next()).value).toEqual({ id: 1, text: '' });
    controller.abort();
    const end = await run.next();
    expect(end.done).toBe(true);
    expect(end.value).toMatchObject({ tokens: [1], stopReason: 'aborted' });
  });

  it('streams text pieces that add up to the decode of the generated ids', async () => {
    const bytes = [...new TextEncoder().encode('hé€!')];
    const { session } = fakeSession([0, ...bytes], 256);
    const pieces: string[] = [];
    const result = await generate(session, [0], {
      maxNewTokens: bytes.length,
      tokenizer: byteTokenizer,
      onToken: (_id, text) => pieces.push(text),
    });
    expect(result.text).toBe('hé€!');
    expect(pieces.join('')).toBe('hé€!');
  });
});
