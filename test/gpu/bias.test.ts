import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type ScalarType } from '../../src/engine/gpu/index.ts';
import { biasAdd, residualAdd } from '../../src/engine/kernels/bias.ts';
import { expectClose } from '../reference/compare.ts';
import { randomArray } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);

const stored = (v: Float64Array, dtype: ScalarType) =>
  dtype === 'f16' ? roundToF16(v) : Float64Array.from(new Float32Array(v));

describe.each<[ScalarType, number]>([
  ['f32', 1e-7],
  ['f16', 1e-3],
])('bias and residual %s', (dtype, tolerance) => {
  describe.skipIf(dtype === 'f16' && skipF16)('', () => {
    it.each([
      [1, 1, 1],
      [7, 33, 33],
      [5, 576, 576],
      [4, 64, 64 + 2 * 32], // q slice of a fused Qwen2 qkv row: C = q width, stride = q + k + v
    ])('biasAdd N=%i C=%i rowStride=%i adds b to every row and leaves the rest', async (N, C, stride) => {
      const y = stored(randomArray(N * stride, N + C), dtype);
      const b = stored(randomArray(C, 2), dtype);
      const yBuf = upload(gpu, y, dtype);
      const bBuf = upload(gpu, b, dtype);
      const rec = new CommandRecorder(gpu);
      biasAdd(rec, { binding: yBuf, dtype }, { binding: bBuf, dtype }, { N, C }, stride);
      await rec.submitAndWait();
      const got = await download(gpu, yBuf, N * stride, dtype);
      const want = y.map((v, i) => (i % stride < C ? v + b[i % stride] : v));
      // One rounding of an exact sum.
      expectClose(`biasAdd ${dtype}`, got, want, tolerance);
      for (let i = 0; i < y.length; i++) if (i % stride >= C) expect(got[i]).toBe(y[i]);
      yBuf.destroy();
      bBuf.destroy();
      rec.destroy();
    });

    it('residualAdd sums the stream and the branch', async () => {
      const n = 1001;
      const [a, b] = [3, 4].map((s) => stored(randomArray(n, s), dtype));
      const [aBuf, bBuf] = [a, b].map((v) => upload(gpu, v, dtype));
      const outBuf = poisoned(gpu, n, dtype);
      const rec = new CommandRecorder(gpu);
      residualAdd(rec, { binding: outBuf, dtype }, { binding: aBuf, dtype }, { binding: bBuf, dtype }, n);
      await rec.submitAndWait();
      const got = await download(gpu, outBuf, n, dtype);
      expectClose(
        `residualAdd ${dtype}`,
        got,
        a.map((v, i) => v + b[i]),
        tolerance,
      );
      for (const buffer of [aBuf, bBuf, outBuf]) buffer.destroy();
      rec.destroy();
    });
  });
});

describe('bias argument checks', () => {
  it('rejects a row stride shorter than the row', () => {
    const rec = new CommandRecorder(gpu);
    const t = { binding: poisoned(gpu, 8, 'f32'), dtype: 'f32' as const };
    expect(() => biasAdd(rec, t, t, { N: 2, C: 4 }, 3)).toThrow(/rowStride/);
    expect(() => residualAdd(rec, t, t, t, 1.5)).toThrow(RangeError);
    rec.destroy();
  });
});
