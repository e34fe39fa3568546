import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  gatedBackward,
  gatedForward,
  geluBackward,
  geluForward,
  swigluBackward,
  swigluForward,
} from '../../src/engine/kernels/activations.ts';
import {
  gegluBackwardRef,
  gegluRef,
  geluBackwardRef,
  geluRef,
  swigluBackwardRef,
  swigluRef,
} from '../reference/activations.ts';
import { expectClose } from '../reference/compare.ts';
import { finiteDiffGrad, finiteDiffGradAsync } from '../reference/norms.ts';
import { randomArray } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);

const sizes = [1, 7, 255, 1000, 4099];

function values(n: number, seed: number, scale: number, dtype: ScalarType): Float64Array {
  const v = randomArray(n, seed, scale);
  return dtype === 'f16' ? roundToF16(v) : v;
}

const t = (binding: GPUBuffer, dtype: ScalarType) => ({ binding, dtype });

async function swigluGpu(gate: Float64Array, up: Float64Array, dy: Float64Array, dtype: ScalarType) {
  const n = gate.length;
  const [gBuf, uBuf, dyBuf] = [gate, up, dy].map((v) => upload(gpu, v, dtype));
  const [outBuf, dgBuf, duBuf] = [0, 1, 2].map(() => poisoned(gpu, n, dtype));
  const rec = new CommandRecorder(gpu);
  swigluForward(rec, t(outBuf, dtype), t(gBuf, dtype), t(uBuf, dtype), n);
  swigluBackward(rec, t(dgBuf, dtype), t(duBuf, dtype), t(dyBuf, dtype), t(gBuf, dtype), t(uBuf, dtype), n);
  await rec.submitAndWait();
  const [out, dgate, dup] = await Promise.all([outBuf, dgBuf, duBuf].map((b) => download(gpu, b, n, dtype)));
  for (const b of [gBuf, uBuf, dyBuf, outBuf, dgBuf, duBuf]) b.destroy();
  rec.destroy();
  return { out, dgate, dup };
}

async function gegluGpu(gate: Float64Array, up: Float64Array, dy: Float64Array, dtype: ScalarType) {
  const n = gate.length;
  const [gBuf, uBuf, dyBuf] = [gate, up, dy].map((v) => upload(gpu, v, dtype));
  const [outBuf, dgBuf, duBuf] = [0, 1, 2].map(() => poisoned(gpu, n, dtype));
  const rec = new CommandRecorder(gpu);
  const [g, u] = [t(gBuf, dtype), t(uBuf, dtype)];
  gatedForward(rec, t(outBuf, dtype), g, u, n, 'gelu_tanh');
  gatedBackward(rec, t(dgBuf, dtype), t(duBuf, dtype), t(dyBuf, dtype), g, u, n, 'gelu_tanh');
  await rec.submitAndWait();
  const [out, dgate, dup] = await Promise.all([outBuf, dgBuf, duBuf].map((b) => download(gpu, b, n, dtype)));
  for (const b of [gBuf, uBuf, dyBuf, outBuf, dgBuf, duBuf]) b.destroy();
  rec.destroy();
  return { out, dgate, dup };
}

async function geluGpu(x: Float64Array, dy: Float64Array, dtype: ScalarType) {
  const n = x.length;
  const [xBuf, dyBuf] = [x, dy].map((v) => upload(gpu, v, dtype));
  const [outBuf, dxBuf] = [0, 1].map(() => poisoned(gpu, n, dtype));
  const rec = new CommandRecorder(gpu);
  geluForward(rec, t(outBuf, dtype), t(xBuf, dtype), n);
  geluBackward(rec, t(dxBuf, dtype), t(dyBuf, dtype), t(xBuf, dtype), n);
  await rec.submitAndWait();
  const [out, dx] = await Promise.all([outBuf, dxBuf].map((b) => download(gpu, b, n, dtype)));
  for (const b of [xBuf, dyBuf, outBuf, dxBuf]) b.destroy();
  rec.destroy();
  return { out, dx };
}

describe('activation references', () => {
  it('backward references match central differences', () => {
    const n = 40;
    const [gate, up, x, dy] = [1, 2, 3, 4].map((s) => randomArray(n, s, 5));
    const { dgate, dup } = swigluBackwardRef(dy, gate, up);
    expectClose(
      'swiglu dgate',
      dgate,
      finiteDiffGrad((g) => swigluRef(g, up), gate, dy),
      1e-6,
    );
    expectClose(
      'swiglu dup',
      dup,
      finiteDiffGrad((u) => swigluRef(gate, u), up, dy),
      1e-6,
    );
    expectClose('gelu dx', geluBackwardRef(dy, x), finiteDiffGrad(geluRef, x, dy), 1e-6);
    const geglu = gegluBackwardRef(dy, gate, up);
    const fdGate = finiteDiffGrad((g) => gegluRef(g, up), gate, dy);
    expectClose('geglu dgate', geglu.dgate, fdGate, 1e-6);
    expectClose(
      'geglu dup',
      geglu.dup,
      finiteDiffGrad((u) => gegluRef(gate, u), up, dy),
      1e-6,
    );
  });

  it('gelu_new at hand-checked points', () => {
    // 0.5·1·(1 + tanh(√(2/π)·1.044715)) = 0.8411919906082768 (PyTorch gelu(approximate='tanh')(1.0)).
    expect(geluRef([1])[0]).toBeCloseTo(0.8411919906082768, 12);
    expect(geluRef([0])[0]).toBe(0);
  });
});

describe.each<[ScalarType, number]>([
  ['f32', 1e-5],
  ['f16', 1e-2],
])('activations %s', (dtype, tolerance) => {
  describe.skipIf(dtype === 'f16' && skipF16)('', () => {
    it.each(sizes)('swiglu forward and backward, n = %i', async (n) => {
      const [gate, up, dy] = [10, 11, 12].map((s) => values(n, s + n, 6, dtype));
      const got = await swigluGpu(gate, up, dy, dtype);
      const want = swigluBackwardRef(dy, gate, up);
      expectClose(`swiglu ${dtype} out`, got.out, swigluRef(gate, up), tolerance);
      expectClose(`swiglu ${dtype} dgate`, got.dgate, want.dgate, tolerance);
      expectClose(`swiglu ${dtype} dup`, got.dup, want.dup, tolerance);
    });

    it.each(sizes)('geglu (Gemma) forward and backward, n = %i', async (n) => {
      const [gate, up, dy] = [30, 31, 32].map((s) => values(n, s + n, 6, dtype));
      const got = await gegluGpu(gate, up, dy, dtype);
      const want = gegluBackwardRef(dy, gate, up);
      expectClose(`geglu ${dtype} out`, got.out, gegluRef(gate, up), tolerance);
      expectClose(`geglu ${dtype} dgate`, got.dgate, want.dgate, tolerance);
      expectClose(`geglu ${dtype} dup`, got.dup, want.dup, tolerance);
    });

    it.each(sizes)('gelu forward and backward, n = %i', async (n) => {
      const [x, dy] = [20, 21].map((s) => values(n, s + n, 6, dtype));
      const got = await geluGpu(x, dy, dtype);
      expectClose(`gelu ${dtype} out`, got.out, geluRef(x), tolerance);
      expectClose(`gelu ${dtype} dx`, got.dx, geluBackwardRef(dy, x), tolerance);
    });
  });
});

describe('activation edge cases', () => {
  it('large |x| stays finite and saturates correctly', async () => {
    const x = Float64Array.from([-1e4, -100, -30, 30, 100, 1e4]);
    const ones = new Float64Array(x.length).fill(1);
    const gelu = await geluGpu(x, ones, 'f32');
    expectClose('gelu saturation', gelu.out, geluRef(x), 1e-6);
    expectClose('gelu saturation dx', gelu.dx, geluBackwardRef(ones, x), 1e-6);
    const sw = await swigluGpu(x, ones, ones, 'f32');
    expectClose('silu saturation', sw.out, swigluRef(x, ones), 1e-6);
    const want = swigluBackwardRef(ones, x, ones);
    expectClose('silu saturation dgate', sw.dgate, want.dgate, 1e-6);
    expectClose('silu saturation dup', sw.dup, want.dup, 1e-6);
  });

  it('GPU backward agrees with finite differences of the GPU forward', async () => {
    const n = 16;
    const [gate, up, x, dy] = [40, 41, 42, 43].map((s) => randomArray(n, s, 3));
    const indices = [0, 3, 9, 15];
    const h = 1e-2;
    const gpuGate = await finiteDiffGradAsync(
      async (g) => (await swigluGpu(g, up, dy, 'f32')).out,
      gate,
      dy,
      h,
      indices,
    );
    const gpuX = await finiteDiffGradAsync(async (v) => (await geluGpu(v, dy, 'f32')).out, x, dy, h, indices);
    const sw = await swigluGpu(gate, up, dy, 'f32');
    const ge = await geluGpu(x, dy, 'f32');
    expectClose(
      'swiglu GPU dgate vs GPU finite differences',
      indices.map((i) => sw.dgate[i]),
      gpuGate,
      1e-3,
    );
    expectClose(
      'gelu GPU dx vs GPU finite differences',
      indices.map((i) => ge.dx[i]),
      gpuX,
      1e-3,
    );
  });

  it('rejects a bad n and mixed gate/up types', () => {
    const rec = new CommandRecorder(gpu);
    const b = poisoned(gpu, 4, 'f32');
    expect(() => geluForward(rec, t(b, 'f32'), t(b, 'f32'), -1)).toThrow(RangeError);
    expect(() => swigluForward(rec, t(b, 'f32'), t(b, 'f32'), t(b, 'f16'), 4)).toThrow(/gate and up/);
    rec.destroy();
  });
});
