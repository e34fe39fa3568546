import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type ScalarType } from '../../src/engine/gpu/index.ts';
import { ropeBackward, ropeForward, ropeInvFreq, type RopeDims } from '../../src/engine/kernels/rope.ts';
import { expectClose } from '../reference/compare.ts';
import { finiteDiffGrad, finiteDiffGradAsync } from '../reference/norms.ts';
import { randomArray } from '../reference/random.ts';
import { invFreqRef, ropeRef } from '../reference/rope.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);

interface Case {
  dims: RopeDims;
  theta: number;
  offset?: number;
  /** Token stride of the input (a q slice of a fused qkv row); default dense. */
  stride?: number;
}

const cases: [string, Case][] = [
  ['1×1×1×2', { dims: { B: 1, T: 1, H: 1, D: 2 }, theta: 10000 }],
  ['2×5×3×6', { dims: { B: 2, T: 5, H: 3, D: 6 }, theta: 10000 }],
  ['SmolLM2 heads 1×33×9×64', { dims: { B: 1, T: 33, H: 9, D: 64 }, theta: 10000 }],
  ['Qwen2.5 θ=1e6 2×7×2×128', { dims: { B: 2, T: 7, H: 2, D: 128 }, theta: 1e6 }],
  ['D=256 1×3×1×256', { dims: { B: 1, T: 3, H: 1, D: 256 }, theta: 10000 }],
  ['decode T=1 at position 1000', { dims: { B: 3, T: 1, H: 3, D: 64 }, theta: 10000, offset: 1000 }],
  ['long context positions 30000+', { dims: { B: 1, T: 9, H: 2, D: 64 }, theta: 10000, offset: 30000 }],
  [
    'strided q slice of a fused qkv row',
    { dims: { B: 2, T: 3, H: 3, D: 8 }, theta: 10000, stride: 3 * 8 + 2 * 8 },
  ],
];

async function runGpu(
  { dims, theta, offset = 0, stride }: Case,
  x: Float64Array,
  dtype: ScalarType,
  mode: 'forward' | 'backward',
  inPlace: boolean,
): Promise<{ out: Float64Array; raw: Float64Array }> {
  const { B, T, H, D } = dims;
  const inStride = stride ?? H * D;
  const xBuf = upload(gpu, x, dtype);
  const outBuf = inPlace ? xBuf : poisoned(gpu, B * T * H * D, dtype);
  const rec = new CommandRecorder(gpu);
  const launch = mode === 'forward' ? ropeForward : ropeBackward;
  launch(rec, { binding: outBuf, dtype }, { binding: xBuf, dtype }, dims, {
    theta,
    positionOffset: offset,
    inStride,
  });
  await rec.submitAndWait();
  const raw = await download(gpu, outBuf, inPlace ? x.length : B * T * H * D, dtype);
  // In place keeps the input's stride: gather the rotated heads back into a dense (B, T, H, D).
  const out = inPlace ? new Float64Array(B * T * H * D) : raw;
  if (inPlace) {
    for (let n = 0; n < B * T; n++) out.set(raw.subarray(n * inStride, n * inStride + H * D), n * H * D);
  }
  xBuf.destroy();
  if (!inPlace) outBuf.destroy();
  rec.destroy();
  return { out, raw };
}

function input({ dims, stride }: Case, seed: number, dtype: ScalarType): Float64Array {
  const { B, T, H, D } = dims;
  const x = randomArray(B * T * (stride ?? H * D), seed);
  return dtype === 'f16' ? roundToF16(x) : x;
}

describe('rope reference', () => {
  it('inv_freq follows HF float32: θ^(−2i/D)', () => {
    const inv = invFreqRef(64, 10000);
    expect(inv[0]).toBe(1);
    expect(inv[1]).toBe(Math.fround(1 / Math.fround(10000 ** Math.fround(2 / 64))));
    expect(Math.abs(inv[31] - 10000 ** (-62 / 64)) / inv[31]).toBeLessThan(1e-6);
    expect(Array.from(ropeInvFreq(128, 1e6))).toEqual(Array.from(invFreqRef(128, 1e6)));
  });

  it('backward is the transpose of the forward (central differences)', () => {
    const dims = { B: 2, T: 3, H: 2, D: 6 };
    const x = randomArray(72, 1);
    const dy = randomArray(72, 2);
    const numeric = finiteDiffGrad((v) => ropeRef(v, dims, 10000, 5), x, dy);
    expectClose('rope ref backward vs finite differences', ropeRef(dy, dims, 10000, 5, -1), numeric, 1e-6);
  });

  it('pairs (i, i + D/2) rotate by pos · inv_freq (a hand-checked value)', () => {
    // D = 2: one pair, inv_freq = 1, so position 1 rotates (1, 0) by one radian.
    const out = ropeRef([1, 0, 1, 0], { B: 1, T: 2, H: 1, D: 2 }, 10000);
    expect(Array.from(out)).toEqual([1, 0, Math.cos(1), Math.sin(Math.fround(1))]);
  });
});

describe.each<[ScalarType, number]>([
  ['f32', 1e-5],
  ['f16', 1e-2],
])('rope %s', (dtype, tolerance) => {
  describe.skipIf(dtype === 'f16' && skipF16)('', () => {
    it.each(cases)('forward %s, out of place and in place', async (_name, testCase) => {
      const x = input(testCase, 10, dtype);
      const want = ropeRef(x, testCase.dims, testCase.theta, testCase.offset, 1, testCase.stride);
      const outOfPlace = await runGpu(testCase, x, dtype, 'forward', false);
      expectClose(`rope ${dtype} forward`, outOfPlace.out, want, tolerance);
      const inPlace = await runGpu(testCase, x, dtype, 'forward', true);
      expectClose(`rope ${dtype} forward in place`, inPlace.out, want, tolerance);
      if (testCase.stride) {
        // The rest of the fused row (k and v) is left alone.
        const { H, D } = testCase.dims;
        for (let i = 0; i < x.length; i++) {
          if (i % testCase.stride >= H * D) expect(inPlace.raw[i]).toBe(Math.fround(x[i]));
        }
      }
    });

    it.each(cases)('backward %s', async (_name, testCase) => {
      const dy = input(testCase, 20, dtype);
      const want = ropeRef(dy, testCase.dims, testCase.theta, testCase.offset, -1, testCase.stride);
      const got = await runGpu(testCase, dy, dtype, 'backward', false);
      expectClose(`rope ${dtype} backward`, got.out, want, tolerance);
    });
  });
});

describe('rope checks', () => {
  it('GPU backward agrees with finite differences of the GPU forward', async () => {
    const testCase: Case = { dims: { B: 1, T: 4, H: 2, D: 8 }, theta: 10000, offset: 3 };
    const x = input(testCase, 30, 'f32');
    const dy = randomArray(x.length, 31);
    const indices = [0, 7, 13, 40, 63];
    const numeric = await finiteDiffGradAsync(
      async (v) => (await runGpu(testCase, v, 'f32', 'forward', false)).out,
      x,
      dy,
      1e-2,
      indices,
    );
    const dx = (await runGpu(testCase, Float64Array.from(dy), 'f32', 'backward', false)).out;
    expectClose(
      'rope GPU dx vs GPU finite differences',
      indices.map((i) => dx[i]),
      numeric,
      1e-3,
    );
  });

  it('rejects odd or oversized head dims and bad offsets with RangeErrors', () => {
    const rec = new CommandRecorder(gpu);
    const t = { binding: poisoned(gpu, 4, 'f32'), dtype: 'f32' as const };
    const o = { binding: poisoned(gpu, 4, 'f32'), dtype: 'f32' as const };
    expect(() => ropeForward(rec, o, t, { B: 1, T: 1, H: 1, D: 3 }, { theta: 1e4 })).toThrow(
      /D must be even/,
    );
    expect(() => ropeForward(rec, o, t, { B: 1, T: 1, H: 1, D: 512 }, { theta: 1e4 })).toThrow(/D must be/);
    expect(() =>
      ropeForward(rec, o, t, { B: 1, T: 1, H: 1, D: 2 }, { theta: 1e4, positionOffset: -1 }),
    ).toThrow(/positionOffset/);
    expect(() => ropeForward(rec, o, t, { B: 1, T: 1, H: 1, D: 2 }, { theta: 0 })).toThrow(/theta/);
    rec.destroy();
  });
});
