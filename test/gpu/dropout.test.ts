import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type ScalarType } from '../../src/engine/gpu/index.ts';
import { dropoutBackward, dropoutForward, type DropoutOptions } from '../../src/engine/kernels/dropout.ts';
import { expectClose } from '../reference/compare.ts';
import { dropoutMaskRef, dropoutRef } from '../reference/dropout.ts';
import { randomArray } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);

/** Inputs kept away from 0 so a zero output always means "dropped". */
function nonzero(n: number, seed: number, dtype: ScalarType): Float64Array {
  const v = randomArray(n, seed).map((u) => (u >= 0 ? 0.25 + u : -0.25 + u));
  return dtype === 'f16' ? roundToF16(v) : Float64Array.from(new Float32Array(v));
}

async function run(x: Float64Array, o: DropoutOptions, dtype: ScalarType, dy?: Float64Array) {
  const n = x.length;
  const xBuf = upload(gpu, x, dtype);
  const dyBuf = dy ? upload(gpu, dy, dtype) : null;
  const yBuf = poisoned(gpu, n, dtype);
  const dxBuf = poisoned(gpu, n, dtype);
  const rec = new CommandRecorder(gpu);
  dropoutForward(rec, { binding: yBuf, dtype }, { binding: xBuf, dtype }, n, o);
  if (dyBuf) dropoutBackward(rec, { binding: dxBuf, dtype }, { binding: dyBuf, dtype }, n, o);
  await rec.submitAndWait();
  const y = await download(gpu, yBuf, n, dtype);
  const dx = dyBuf ? await download(gpu, dxBuf, n, dtype) : null;
  for (const b of [xBuf, dyBuf, yBuf, dxBuf]) b?.destroy();
  rec.destroy();
  return { y, dx };
}

const kept = (y: Float64Array) => Uint8Array.from(y, (v) => (v !== 0 ? 1 : 0));

describe('dropout', () => {
  it.each([0.1, 0.5, 0.9])('drops a fraction p = %f of the elements (within 4σ)', async (p) => {
    const n = 100_003;
    const { y } = await run(nonzero(n, 1, 'f32'), { p, seed: 1234, step: 7 }, 'f32');
    const dropped = n - kept(y).reduce((s, k) => s + k, 0);
    const sigma = Math.sqrt(n * p * (1 - p));
    expect(Math.abs(dropped - n * p)).toBeLessThan(4 * sigma);
  });

  it('matches the reference hash bit for bit and scales by 1/(1 − p)', async () => {
    const n = 5003;
    const o = { p: 0.3, seed: 99, step: 12, stream: 5 };
    const x = nonzero(n, 2, 'f32');
    const { y } = await run(x, o, 'f32');
    const mask = dropoutMaskRef(n, o.p, o.seed, o.step, o.stream);
    expect(kept(y)).toEqual(mask);
    expectClose('dropout f32', y, dropoutRef(x, mask, o.p), 1e-6);
  });

  it('backward applies the forward mask to dy', async () => {
    const n = 3001;
    const o = { p: 0.25, seed: 5, step: 3 };
    const x = nonzero(n, 3, 'f32');
    const dy = nonzero(n, 4, 'f32');
    const { y, dx } = await run(x, o, 'f32', dy);
    expect(kept(dx!)).toEqual(kept(y));
    expectClose('dropout backward', dx!, dropoutRef(dy, kept(y), o.p), 1e-6);
    // The map is linear and diagonal, so ∂⟨y, g⟩/∂x = mask·g/(1 − p): the backward at g equals the forward at g.
    const forwardOfDy = await run(dy, o, 'f32');
    expect(Array.from(dx!)).toEqual(Array.from(forwardOfDy.y));
  });

  it('is reproducible for one (seed, step) and changes with step, seed and stream', async () => {
    const n = 20_000;
    const p = 0.5;
    const x = nonzero(n, 5, 'f32');
    const base = { p, seed: 42, step: 100 };
    const a = kept((await run(x, base, 'f32')).y);
    const again = kept((await run(x, base, 'f32')).y);
    expect(again).toEqual(a);
    for (const other of [
      { ...base, step: 101 },
      { ...base, seed: 43 },
      { ...base, stream: 1 },
    ]) {
      const b = kept((await run(x, other, 'f32')).y);
      // Independent masks agree on p² + (1 − p)² of the elements.
      const agree = a.reduce((s, k, i) => s + (k === b[i] ? 1 : 0), 0) / n;
      expect(Math.abs(agree - (p * p + (1 - p) * (1 - p)))).toBeLessThan(0.02);
    }
    // Neighbouring elements are uncorrelated.
    let both = 0;
    for (let i = 1; i < n; i++) both += a[i] & a[i - 1];
    expect(Math.abs(both / (n - 1) - (1 - p) ** 2)).toBeLessThan(0.02);
  });

  it('p = 0 is the identity', async () => {
    const x = nonzero(777, 6, 'f32');
    const { y, dx } = await run(x, { p: 0, seed: 1, step: 1 }, 'f32', x);
    expect(Array.from(y)).toEqual(Array.from(x));
    expect(Array.from(dx!)).toEqual(Array.from(x));
  });

  it.skipIf(skipF16)('f16 storage: same mask, values within f16 rounding', async () => {
    const n = 4099;
    const o = { p: 0.2, seed: 8, step: 9 };
    const x = nonzero(n, 7, 'f16');
    const { y } = await run(x, o, 'f16');
    const mask = dropoutMaskRef(n, o.p, o.seed, o.step);
    expect(kept(y)).toEqual(mask);
    expectClose('dropout f16', y, dropoutRef(x, mask, o.p), 1e-2);
  });

  it('rejects p outside [0, 1) and non-u32 seeds with RangeErrors', () => {
    const rec = new CommandRecorder(gpu);
    const t = { binding: poisoned(gpu, 4, 'f32'), dtype: 'f32' as const };
    expect(() => dropoutForward(rec, t, t, 4, { p: 1, seed: 0, step: 0 })).toThrow(/p must be/);
    expect(() => dropoutForward(rec, t, t, 4, { p: -0.1, seed: 0, step: 0 })).toThrow(/p must be/);
    expect(() => dropoutForward(rec, t, t, 4, { p: 0.1, seed: -1, step: 0 })).toThrow(/seed must be/);
    expect(() => dropoutBackward(rec, t, t, 4, { p: 0.1, seed: 0, step: 2 ** 32 })).toThrow(/step must be/);
    rec.destroy();
  });
});
