import { describe, expect, it } from 'vitest';
import { CommandRecorder, f16BitsToF32, roundToF16, type ScalarType } from '../../src/engine/gpu/index.ts';
import { axpby, scaleCast } from '../../src/engine/kernels/elementwise.ts';
import { reduce, REDUCE_PARTIALS } from '../../src/engine/kernels/reduce.ts';
import { expectClose } from '../reference/compare.ts';
import { maxAbsRef, sumRef } from '../reference/linalg.ts';
import { randomArray } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
const sizes = [1, 3, 257, 70_001];

function dtypes(): ScalarType[] {
  return skipF16 ? ['f32'] : ['f32', 'f16'];
}

describe('axpby', () => {
  for (const dtype of dtypes()) {
    it.each(sizes)(`${dtype}: out = 0.5·a − 2·b, n = %i`, async (n) => {
      const round = (x: Float64Array) => (dtype === 'f16' ? roundToF16(x) : x);
      const a = round(randomArray(n, n));
      const b = round(randomArray(n, n + 1));
      const out = poisoned(gpu, n, dtype);
      const rec = new CommandRecorder(gpu);
      axpby(
        rec,
        { binding: out, dtype },
        { binding: upload(gpu, a, dtype), dtype },
        { binding: upload(gpu, b, dtype), dtype },
        n,
        0.5,
        -2,
      );
      await rec.submitAndWait();
      const expected = a.map((v, i) => 0.5 * v - 2 * b[i]);
      expectClose(
        `axpby ${dtype}`,
        await download(gpu, out, n, dtype),
        expected,
        dtype === 'f16' ? 1e-2 : 1e-6,
      );
    });
  }
});

describe('reduce', () => {
  for (const dtype of dtypes()) {
    it.each(sizes)(`${dtype}: sum and max|x| of n = %i`, async (n) => {
      const x = randomArray(n, 7 * n, 3);
      const xs = dtype === 'f16' ? roundToF16(x) : x;
      const input = { binding: upload(gpu, xs, dtype), dtype };
      const partials = poisoned(gpu, REDUCE_PARTIALS, 'f32');
      const [sumOut, maxOut] = [poisoned(gpu, 1, 'f32'), poisoned(gpu, 1, 'f32')];
      const rec = new CommandRecorder(gpu);
      reduce(rec, 'sum', sumOut, input, n, partials);
      reduce(rec, 'maxabs', maxOut, input, n, partials);
      await rec.submitAndWait();
      const [sum] = await download(gpu, sumOut, 1, 'f32');
      const [maxAbs] = await download(gpu, maxOut, 1, 'f32');
      // A sum's error is relative to Σ|x|, not to the (possibly cancelling) result.
      const absSum = sumRef(xs.map(Math.abs));
      expect(Math.abs(sum - sumRef(xs)) / absSum).toBeLessThan(1e-6);
      expect(maxAbs).toBe(Math.fround(maxAbsRef(xs)));
    });
  }

  it('max|x| reports NaN and inf as +inf', async () => {
    const values = new Float32Array(1000).fill(1);
    values[500] = NaN;
    const out = poisoned(gpu, 1, 'f32');
    const rec = new CommandRecorder(gpu);
    reduce(
      rec,
      'maxabs',
      out,
      { binding: upload(gpu, values, 'f32'), dtype: 'f32' },
      1000,
      poisoned(gpu, REDUCE_PARTIALS, 'f32'),
    );
    await rec.submitAndWait();
    expect((await download(gpu, out, 1, 'f32'))[0]).toBe(Infinity);
  });
});

describe('scaleCast', () => {
  it('f32 → f32 scales exactly', async () => {
    const x = randomArray(1001, 3);
    const out = poisoned(gpu, 1001, 'f32');
    const overflow = upload(gpu, [0], 'u32');
    const rec = new CommandRecorder(gpu);
    scaleCast(
      rec,
      { binding: out, dtype: 'f32' },
      { binding: upload(gpu, x, 'f32'), dtype: 'f32' },
      1001,
      overflow,
      0.25,
    );
    await rec.submitAndWait();
    expectClose(
      'scale',
      await download(gpu, out, 1001, 'f32'),
      x.map((v) => 0.25 * v),
      1e-7,
    );
    expect((await download(gpu, overflow, 1, 'u32'))[0]).toBe(0);
  });

  it.skipIf(skipF16)('f32 → f16 rounds to nearest, saturates and counts overflow, inf and NaN', async () => {
    // f16 subnormals may be flushed to zero (WGSL allows it; lavapipe does), so only normal values here.
    const x = [0, 1 / 3, -1.5e-4, 65504, 65519, 70000, -1e9, Infinity, -Infinity, NaN, 7e-5];
    const out = poisoned(gpu, x.length, 'f16');
    const overflow = upload(gpu, [0], 'u32');
    const rec = new CommandRecorder(gpu);
    scaleCast(
      rec,
      { binding: out, dtype: 'f16' },
      { binding: upload(gpu, x, 'f32'), dtype: 'f32' },
      x.length,
      overflow,
    );
    await rec.submitAndWait();
    const got = await download(gpu, out, x.length, 'f16');
    const expected = [
      0,
      f16BitsToF32(0x3555),
      roundToF16([-1.5e-4])[0],
      65504,
      65504,
      65504,
      -65504,
      65504,
      -65504,
      0,
      roundToF16([7e-5])[0],
    ];
    expect(Array.from(got)).toEqual(expected);
    // 65519 rounds to 65504 in f16 but exceeds it in f32, so it counts: 65519, 70000, -1e9, ±inf, NaN.
    expect((await download(gpu, overflow, 1, 'u32'))[0]).toBe(6);
  });

  it.skipIf(skipF16)('f16 → f32 is exact', async () => {
    const x = roundToF16(randomArray(333, 9, 100));
    const out = poisoned(gpu, 333, 'f32');
    const rec = new CommandRecorder(gpu);
    scaleCast(
      rec,
      { binding: out, dtype: 'f32' },
      { binding: upload(gpu, x, 'f16'), dtype: 'f16' },
      333,
      upload(gpu, [0], 'u32'),
    );
    await rec.submitAndWait();
    expect(Array.from(await download(gpu, out, 333, 'f32'))).toEqual(Array.from(x));
  });
});
