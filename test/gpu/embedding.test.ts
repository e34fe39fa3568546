import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  decodeEmbeddingErrors,
  EMBEDDING_ERROR_WORDS,
  embeddingError,
  embeddingForward,
  type EmbeddingErrors,
} from '../../src/engine/kernels/embedding.ts';
import { expectClose } from '../reference/compare.ts';
import { embeddingRef } from '../reference/embedding.ts';
import { randomArray, rng } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);

function randomTokens(N: number, V: number, seed: number): number[] {
  const next = rng(seed);
  return Array.from({ length: N }, () => Math.floor(next() * V));
}

interface Run {
  tokens: number[];
  C: number;
  V: number;
  dtype: ScalarType;
  positions?: { T: number; P: number; offset?: number };
  /** Launch twice with these second tokens, same error buffer (errors accumulate). */
  again?: number[];
  /** Factor of the token rows (Gemma's √C). */
  scale?: number;
}

async function runGpu({ tokens, C, V, dtype, positions, again, scale }: Run, seed: number) {
  const N = tokens.length;
  let wte = randomArray(V * C, seed);
  let wpe = positions ? randomArray(positions.P * C, seed + 1) : new Float64Array(0);
  // What the table can hold, so that a gather is exact.
  const stored = (v: Float64Array) =>
    dtype === 'f16' ? roundToF16(v) : Float64Array.from(new Float32Array(v));
  [wte, wpe] = [stored(wte), stored(wpe)];
  const wteBuf = upload(gpu, wte, dtype);
  const wpeBuf = upload(gpu, wpe, dtype);
  const tokBuf = upload(gpu, tokens, 'u32');
  const tok2Buf = again ? upload(gpu, again, 'u32') : null;
  const outBuf = poisoned(gpu, N * C, dtype);
  const errBuf = poisoned(gpu, EMBEDDING_ERROR_WORDS, 'u32');
  const rec = new CommandRecorder(gpu);
  rec.clear(errBuf);
  const pos = positions && { wpe: { binding: wpeBuf, dtype }, ...positions };
  const dims = { N, C, V };
  embeddingForward(
    rec,
    { binding: outBuf, dtype },
    errBuf,
    tokBuf,
    { binding: wteBuf, dtype },
    dims,
    pos,
    scale,
  );
  if (tok2Buf)
    embeddingForward(rec, { binding: outBuf, dtype }, errBuf, tok2Buf, { binding: wteBuf, dtype }, dims, pos);
  await rec.submitAndWait();
  const out = await download(gpu, outBuf, N * C, dtype);
  const words = Uint32Array.from(await download(gpu, errBuf, EMBEDDING_ERROR_WORDS, 'u32'));
  for (const b of [wteBuf, wpeBuf, tokBuf, tok2Buf, outBuf, errBuf]) b?.destroy();
  rec.destroy();
  const want = embeddingRef(again ?? tokens, wte, C, V, positions && { wpe, ...positions });
  return { out, want, errors: decodeEmbeddingErrors(words) };
}

describe.each<ScalarType>(['f32', 'f16'])('embedding %s', (dtype) => {
  describe.skipIf(dtype === 'f16' && skipF16)('', () => {
    it.each([
      [1, 1, 1],
      [7, 13, 50],
      [300, 64, 1000],
      [33, 577, 11],
    ])('gathers N=%i C=%i V=%i exactly', async (N, C, V) => {
      const { out, want, errors } = await runGpu({ tokens: randomTokens(N, V, N + C), C, V, dtype }, 3);
      // A gather copies: exact in either storage type.
      expectClose(`embedding ${dtype}`, out, want, 0 + Number.EPSILON);
      expect(errors).toBeNull();
    });

    it("scales the rows by Gemma's √C rounded to the storage type, as HF's embed_scale.to(weight.dtype)", async () => {
      const C = 40;
      const scale = Math.sqrt(C);
      const run = await runGpu({ tokens: randomTokens(9, 30, 4), C, V: 30, dtype, scale }, 6);
      // torch multiplies in the weight's dtype: the exact product of two stored values, rounded once.
      const round = (v: ArrayLike<number>) =>
        dtype === 'f16' ? roundToF16(v) : Float64Array.from(new Float32Array(v));
      const s = round([scale])[0];
      expect(run.out).toEqual(round(run.want.map((v) => v * s)));
      if (dtype === 'f16') expect(s).not.toBe(Math.fround(scale)); // the f16 scale is not the f32 one
    });

    it('adds GPT-2 learned positions (with a decode offset)', async () => {
      const tokens = randomTokens(3 * 5, 40, 8);
      const run = await runGpu({ tokens, C: 21, V: 40, dtype, positions: { T: 5, P: 12, offset: 7 } }, 5);
      // The sum of two stored values is rounded once to the storage type.
      expectClose(`embedding+wpe ${dtype}`, run.out, run.want, dtype === 'f16' ? 1e-3 : 1e-7);
      expect(run.errors).toBeNull();
    });
  });
});

describe('embedding out-of-range ids', () => {
  it('zeroes bad rows, reports the first bad position and id, and never faults', async () => {
    const V = 50;
    const tokens = randomTokens(1000, V, 4);
    tokens[700] = 0xffffffff;
    tokens[703] = V;
    tokens[999] = V + 12345;
    const run = await runGpu({ tokens, C: 9, V, dtype: 'f32' }, 6);
    expectClose('embedding with bad ids', run.out, run.want, Number.EPSILON);
    for (const n of [700, 703, 999])
      expect(Array.from(run.out.subarray(n * 9, n * 9 + 9))).toEqual(Array(9).fill(0));
    expect(run.errors).toEqual<EmbeddingErrors>({ count: 3, firstIndex: 700, firstId: 0xffffffff });
    expect(embeddingError(run.errors!, V).message).toMatch(/id 4294967295 at position 700/);
  });

  it('counts over launches and keeps the first launch’s first error', async () => {
    const V = 10;
    const first = [1, 2, 11, 3];
    const second = [12, 13, 4, 5];
    const run = await runGpu({ tokens: first, again: second, C: 3, V, dtype: 'f32' }, 7);
    expect(run.errors).toEqual<EmbeddingErrors>({ count: 3, firstIndex: 2, firstId: 11 });
    expectClose('second launch output', run.out, run.want, Number.EPSILON);
  });

  it('rejects position tables that are too short', () => {
    const rec = new CommandRecorder(gpu);
    const b = poisoned(gpu, 4, 'f32');
    const t = { binding: b, dtype: 'f32' as const };
    const dims = { N: 4, C: 1, V: 4 };
    expect(() => embeddingForward(rec, t, b, b, t, dims, { wpe: t, T: 4, P: 4, offset: 1 })).toThrow(
      /exceeds/,
    );
    expect(() => embeddingForward(rec, t, b, b, t, dims, { wpe: t, T: 3, P: 4 })).toThrow(/divide N/);
    expect(() => embeddingForward(rec, t, b, b, t, { N: 4, C: -1, V: 4 })).toThrow(/C must be/);
    rec.destroy();
  });
});
