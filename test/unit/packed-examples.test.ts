// Examples packed for the trip from the dataset Worker to the page come back the same, and a split as indices
// names the same examples.
import { describe, expect, it } from 'vitest';
import type { Example } from '../../src/engine/train/data.ts';
import { Rng } from '../../src/engine/rng.ts';
import { indicesOf, packExamples, unpackExamples } from '../../src/workers/packed-examples.ts';

function randomExamples(n: number, seed: number): Example[] {
  const rng = new Rng(seed, 'examples');
  return Array.from({ length: n }, (_, i) => {
    const length = Math.floor(rng.random() * 9); // 0 .. 8 tokens: empty ones too
    const ex: Example = {
      ids: Int32Array.from({ length }, () => Math.floor(rng.random() * 50_000)),
      labels: Int32Array.from({ length }, () =>
        rng.random() < 0.5 ? -100 : Math.floor(rng.random() * 50_000),
      ),
      promptLength: Math.floor(rng.random() * length),
      line: i + 1,
    };
    if (rng.random() < 0.5) ex.classIndex = Math.floor(rng.random() * 3);
    return ex;
  });
}

describe('packed examples', () => {
  it('unpack to the same examples, whole or in chunks', () => {
    const examples = randomExamples(257, 3);
    const packed = packExamples(examples);
    expect(unpackExamples(packed)).toEqual(examples);
    const chunked: Example[] = [];
    for (let from = 0; from < examples.length; from += 100)
      unpackExamples(packed, chunked, from, Math.min(from + 100, examples.length));
    expect(chunked).toEqual(examples);
    expect(unpackExamples(packExamples([]))).toEqual([]);
  });

  it('send a split as the indices of its examples', () => {
    const examples = randomExamples(20, 5);
    const subset = [examples[7], examples[0], examples[19]];
    expect([...indicesOf(examples, subset)]).toEqual([7, 0, 19]);
    expect(() => indicesOf(examples, randomExamples(1, 9))).toThrow(/not in the dataset/);
  });
});
