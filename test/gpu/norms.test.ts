import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type ScalarType } from '../../src/engine/gpu/index.ts';
import { rmsnormBackward, rmsnormForward } from '../../src/engine/kernels/rmsnorm.ts';
import { layernormBackward, layernormForward } from '../../src/engine/kernels/layernorm.ts';
import { expectClose } from '../reference/compare.ts';
import {
  finiteDiffGrad,
  finiteDiffGradAsync,
  layernormBackwardRef,
  layernormRef,
  rmsnormBackwardRef,
  rmsnormRef,
} from '../reference/norms.ts';
import { randomArray } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);

type Kind = 'rmsnorm' | 'layernorm';
const EPS = 1e-5;

// Awkward rows: size 1, shorter than the workgroup, not a multiple of it, and the model widths.
const shapes: [number, number][] = [
  [1, 1],
  [3, 7],
  [5, 257],
  [2, 576],
  [3, 960],
  [2, 2049],
];

// C = 1 is left to its own test: there rmsnorm's dx = r·w·dy·(1 − x²r²) is a cancellation to ~eps/x², so
// a normwise comparison against the (tiny) exact value measures the f32 rounding of the terms, not a bug.
const backwardShapes = shapes.filter(([, C]) => C > 1);

interface Inputs {
  x: Float64Array;
  w: Float64Array;
  b: Float64Array;
  dy: Float64Array;
  dx0: Float64Array;
}

function inputs(N: number, C: number, seed: number, dtype: ScalarType): Inputs {
  // A per-row offset makes LayerNorm's mean matter; weights near 1 as in trained models.
  const x = randomArray(N * C, seed, 2).map((v, i) => v + 0.5 * ((i / C) % 3));
  const w = randomArray(C, seed + 1, 0.5).map((v) => v + 1);
  const b = randomArray(C, seed + 2, 0.3);
  const dy = randomArray(N * C, seed + 3);
  const dx0 = randomArray(N * C, seed + 4);
  const r = (a: Float64Array) => (dtype === 'f16' ? roundToF16(a) : a);
  return { x: r(x), w: r(w), b: r(b), dy: r(dy), dx0: r(dx0) };
}

async function forwardGpu(kind: Kind, N: number, C: number, inp: Inputs, dtype: ScalarType) {
  const xBuf = upload(gpu, inp.x, dtype);
  const wBuf = upload(gpu, inp.w, dtype);
  const bBuf = upload(gpu, inp.b, dtype);
  const yBuf = poisoned(gpu, N * C, dtype);
  const meanBuf = poisoned(gpu, N, 'f32');
  const rstdBuf = poisoned(gpu, N, 'f32');
  const rec = new CommandRecorder(gpu);
  const t = (binding: GPUBuffer) => ({ binding, dtype });
  if (kind === 'rmsnorm') rmsnormForward(rec, t(yBuf), rstdBuf, t(xBuf), t(wBuf), { N, C }, EPS);
  else layernormForward(rec, t(yBuf), meanBuf, rstdBuf, t(xBuf), t(wBuf), t(bBuf), { N, C }, EPS);
  await rec.submitAndWait();
  const y = await download(gpu, yBuf, N * C, dtype);
  const mean = await download(gpu, meanBuf, N, 'f32');
  const rstd = await download(gpu, rstdBuf, N, 'f32');
  for (const buffer of [xBuf, wBuf, bBuf, yBuf, meanBuf, rstdBuf]) buffer.destroy();
  rec.destroy();
  return { y, mean, rstd };
}

/** Runs the forward (for the saved statistics) and then the backward in one submit. */
async function backwardGpu(
  kind: Kind,
  N: number,
  C: number,
  inp: Inputs,
  dtype: ScalarType,
  accumulate = false,
) {
  const xBuf = upload(gpu, inp.x, dtype);
  const wBuf = upload(gpu, inp.w, dtype);
  const bBuf = upload(gpu, inp.b, dtype);
  const dyBuf = upload(gpu, inp.dy, dtype);
  const yBuf = poisoned(gpu, N * C, dtype);
  const dxBuf = accumulate ? upload(gpu, inp.dx0, dtype) : poisoned(gpu, N * C, dtype);
  const meanBuf = poisoned(gpu, N, 'f32');
  const rstdBuf = poisoned(gpu, N, 'f32');
  const rec = new CommandRecorder(gpu);
  const t = (binding: GPUBuffer) => ({ binding, dtype });
  if (kind === 'rmsnorm') {
    rmsnormForward(rec, t(yBuf), rstdBuf, t(xBuf), t(wBuf), { N, C }, EPS);
    rmsnormBackward(rec, t(dxBuf), t(dyBuf), t(xBuf), t(wBuf), rstdBuf, { N, C }, { accumulate });
  } else {
    layernormForward(rec, t(yBuf), meanBuf, rstdBuf, t(xBuf), t(wBuf), t(bBuf), { N, C }, EPS);
    layernormBackward(rec, t(dxBuf), t(dyBuf), t(xBuf), t(wBuf), meanBuf, rstdBuf, { N, C }, { accumulate });
  }
  await rec.submitAndWait();
  const dx = await download(gpu, dxBuf, N * C, dtype);
  for (const buffer of [xBuf, wBuf, bBuf, dyBuf, yBuf, dxBuf, meanBuf, rstdBuf]) buffer.destroy();
  rec.destroy();
  return dx;
}

const refForward = (kind: Kind, inp: Inputs, N: number, C: number) =>
  kind === 'rmsnorm'
    ? { mean: null, ...rmsnormRef(inp.x, inp.w, N, C, EPS) }
    : layernormRef(inp.x, inp.w, inp.b, N, C, EPS);
const refBackward = (kind: Kind, inp: Inputs, N: number, C: number) =>
  kind === 'rmsnorm'
    ? rmsnormBackwardRef(inp.dy, inp.x, inp.w, N, C, EPS)
    : layernormBackwardRef(inp.dy, inp.x, inp.w, N, C, EPS);

describe.each<Kind>(['rmsnorm', 'layernorm'])('%s', (kind) => {
  it('f64 reference backward matches central differences of the f64 forward', () => {
    for (const [N, C] of [
      [1, 1],
      [3, 7],
      [2, 33],
    ]) {
      const inp = inputs(N, C, 5, 'f32');
      const numeric = finiteDiffGrad((x) => refForward(kind, { ...inp, x }, N, C).y, inp.x, inp.dy);
      expectClose(`${kind} ref dx vs finite differences`, refBackward(kind, inp, N, C), numeric, 1e-6);
    }
  });

  it.each(shapes)('f32 forward N=%i C=%i matches the f64 reference (rel < 1e-5)', async (N, C) => {
    const inp = inputs(N, C, 100 + C, 'f32');
    const got = await forwardGpu(kind, N, C, inp, 'f32');
    const want = refForward(kind, inp, N, C);
    expectClose(`${kind} y`, got.y, want.y, 1e-5);
    expectClose(`${kind} rstd`, got.rstd, want.rstd, 1e-5);
    if (want.mean) expectClose(`${kind} mean`, got.mean, want.mean, 1e-5);
  });

  it.each(backwardShapes)('f32 backward N=%i C=%i matches the f64 reference (rel < 1e-5)', async (N, C) => {
    const inp = inputs(N, C, 200 + C, 'f32');
    const got = await backwardGpu(kind, N, C, inp, 'f32');
    expectClose(`${kind} dx`, got, refBackward(kind, inp, N, C), 1e-5);
  });

  it('f32 backward at C = 1 is exact up to the rounding of its terms', async () => {
    const N = 5;
    const inp = inputs(N, 1, 17, 'f32');
    const got = await backwardGpu(kind, N, 1, inp, 'f32');
    const want = refBackward(kind, inp, N, 1);
    const { rstd } = refForward(kind, inp, N, 1);
    for (let n = 0; n < N; n++) {
      const termScale = rstd[n] * Math.abs(inp.w[0] * inp.dy[n]);
      expect(Math.abs(got[n] - want[n])).toBeLessThan(1e-5 * termScale);
    }
  });

  it('f32 backward with accumulate adds into dx', async () => {
    const [N, C] = [4, 300];
    const inp = inputs(N, C, 7, 'f32');
    const got = await backwardGpu(kind, N, C, inp, 'f32', true);
    const want = refBackward(kind, inp, N, C).map((v, i) => v + inp.dx0[i]);
    expectClose(`${kind} dx += `, got, want, 1e-5);
  });

  it('GPU backward agrees with finite differences of the GPU forward', async () => {
    const [N, C] = [2, 37];
    const inp = inputs(N, C, 9, 'f32');
    const indices = [0, 5, 36, 40, 73];
    const numeric = await finiteDiffGradAsync(
      async (x) => (await forwardGpu(kind, N, C, { ...inp, x }, 'f32')).y,
      inp.x,
      inp.dy,
      1e-2,
      indices,
    );
    const dx = await backwardGpu(kind, N, C, inp, 'f32');
    expectClose(
      `${kind} GPU dx vs GPU finite differences`,
      indices.map((i) => dx[i]),
      numeric,
      1e-2,
    );
  });

  it('rejects bad sizes with a RangeError naming the argument', () => {
    const rec = new CommandRecorder(gpu);
    const t = { binding: poisoned(gpu, 4, 'f32'), dtype: 'f32' as const };
    const call = (C: number, eps: number) =>
      kind === 'rmsnorm'
        ? rmsnormForward(rec, t, t.binding, t, t, { N: 1, C }, eps)
        : layernormForward(rec, t, t.binding, t.binding, t, t, t, { N: 1, C }, eps);
    expect(() => call(0, 1e-5)).toThrow(/C must be/);
    expect(() => call(4, -1)).toThrow(/eps must be/);
    rec.destroy();
  });
});

describe.skipIf(skipF16).each<Kind>(['rmsnorm', 'layernorm'])('%s f16', (kind) => {
  it.each(shapes)('f16 forward N=%i C=%i (rel < 1e-2)', async (N, C) => {
    const inp = inputs(N, C, 300 + C, 'f16');
    const got = await forwardGpu(kind, N, C, inp, 'f16');
    const want = refForward(kind, inp, N, C);
    expectClose(`${kind} f16 y`, got.y, want.y, 1e-2);
    // The statistics are f32 computed from f16-exact inputs.
    expectClose(`${kind} f16 rstd`, got.rstd, want.rstd, 1e-5);
  });

  it.each(backwardShapes)('f16 backward N=%i C=%i (rel < 1e-2)', async (N, C) => {
    const inp = inputs(N, C, 400 + C, 'f16');
    const got = await backwardGpu(kind, N, C, inp, 'f16');
    expectClose(`${kind} f16 dx`, got, refBackward(kind, inp, N, C), 1e-2);
  });
});
