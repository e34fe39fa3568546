// The skinny matmul (shaders/matmul-skinny.wgsl: N ≤ 64, K split across a workgroup's lanes) against an f64
// reference at awkward shapes, both B layouts, f16 and f32; its LoRA dropout on A bit-compatible with the tiled
// kernel's; what it refuses; and when the launcher picks it.
import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type Gpu, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  defaultVariant,
  matmul,
  matmulShapeClass,
  type MatmulOptions,
  type MatmulVariant,
} from '../../src/engine/kernels/matmul.ts';
import { expectClose } from '../reference/compare.ts';
import { dropoutMaskRef } from '../reference/dropout.ts';
import { randomArray } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);

interface SkinnyCase {
  M: number;
  N: number;
  K: number;
  batch?: number;
  /** B stored (N, K) K-contiguous, as the adapter's A in x·Aᵀ; else (K, N), as its B in dy·B. */
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** Strides and offsets in elements (defaults dense); aBatchStride 0 broadcasts A (x shared by adapters). */
  aBatchStride?: number;
  bBatchStride?: number;
  cBatchStride?: number;
  aOffset?: number;
  bOffset?: number;
  cOffset?: number;
  lda?: number;
  ldb?: number;
  ldc?: number;
  /** LoRA dropout on A: element (m, k) of batch b keeps iff the hash of stream + b at m·K + k says so. */
  dropout?: { p: number; seed: number; stream: number; step: number };
}

interface Types {
  a: ScalarType;
  b: ScalarType;
  c: ScalarType;
}

const F32: Types = { a: 'f32', b: 'f32', c: 'f32' };
/** The dropout step is rng[0] + stepOffset: a base word and a micro-batch's index. */
const STEP_OFFSET = 2;

/** Buffers, options and the f64 expectation of one case (inputs rounded to their storage types). */
function prepare(f: SkinnyCase, types: Types, seed: number, b?: Float64Array) {
  const { M, N, K, batch = 1, transB = false, alpha = 1, beta = 0 } = f;
  const lda = f.lda ?? K;
  const ldb = f.ldb ?? (transB ? K : N);
  const ldc = f.ldc ?? N;
  const aBs = f.aBatchStride ?? M * lda;
  const bBs = f.bBatchStride ?? (transB ? N : K) * ldb;
  const cBs = f.cBatchStride ?? M * ldc;
  const [aOff, bOff, cOff] = [f.aOffset ?? 0, f.bOffset ?? 0, f.cOffset ?? 0];
  const round = (x: Float64Array, t: ScalarType) => (t === 'f16' ? roundToF16(x) : x);
  const a = round(randomArray(aOff + (batch - 1) * aBs + M * lda, seed), types.a);
  b ??= round(randomArray(bOff + (batch - 1) * bBs + (transB ? N : K) * ldb, seed + 1), types.b);
  const c0 = round(randomArray(cOff + (batch - 1) * cBs + M * ldc, seed + 2), types.c);
  const keep = (bi: number) =>
    f.dropout
      ? dropoutMaskRef(M * K, f.dropout.p, f.dropout.seed, f.dropout.step, f.dropout.stream + bi)
      : null;
  const expected = Float64Array.from(c0);
  const covered = new Uint8Array(c0.length);
  for (let bi = 0; bi < batch; bi++) {
    const mask = keep(bi);
    const scale = f.dropout ? 1 / (1 - f.dropout.p) : 1;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const av = a[aOff + bi * aBs + m * lda + k] * (mask ? mask[m * K + k] * scale : 1);
          sum += av * b[bOff + bi * bBs + (transB ? n * ldb + k : k * ldb + n)];
        }
        const at = cOff + bi * cBs + m * ldc + n;
        expected[at] = alpha * sum + (beta !== 0 ? beta * c0[at] : 0);
        covered[at] = 1;
      }
    }
  }
  const buffers: GPUBuffer[] = [];
  const keepBuffer = (buffer: GPUBuffer) => (buffers.push(buffer), buffer);
  const rng = f.dropout && keepBuffer(upload(gpu, [f.dropout.step - STEP_OFFSET], 'u32'));
  const options: MatmulOptions = {
    transB,
    alpha,
    beta,
    lda: f.lda,
    ldb: f.ldb,
    ldc: f.ldc,
    aOffset: f.aOffset,
    bOffset: f.bOffset,
    cOffset: f.cOffset,
    aBatchStride: f.aBatchStride,
    bBatchStride: f.bBatchStride,
    cBatchStride: f.cBatchStride,
    maskA: f.dropout && {
      ...f.dropout,
      streamStride: 1,
      rowLength: K,
      rng: rng!,
      stepOffset: STEP_OFFSET,
    },
  };
  return { a, b, c0, expected, covered, options, buffers };
}

/** Runs one case with `variant`; C starts as c0 when beta ≠ 0, else poisoned (so every output must be written). */
async function run(f: SkinnyCase, types: Types, variant: MatmulVariant, seed = 1, b?: Float64Array) {
  const { M, N, K, batch = 1, beta = 0 } = f;
  const { a, b: bValues, c0, expected, covered, options, buffers } = prepare(f, types, seed, b);
  const cBuf = beta !== 0 ? upload(gpu, c0, types.c) : poisoned(gpu, c0.length, types.c);
  const rec = new CommandRecorder(gpu);
  const names: string[] = [];
  const dispatch = rec.dispatch.bind(rec);
  rec.dispatch = (program, args) => (names.push(program.name), dispatch(program, args));
  matmul(
    rec,
    { binding: cBuf, dtype: types.c },
    { binding: keep(upload(gpu, a, types.a)), dtype: types.a },
    { binding: keep(upload(gpu, bValues, types.b)), dtype: types.b },
    { M, N, K, batch },
    { ...options, variant },
  );
  await rec.submitAndWait();
  const actual = await download(gpu, cBuf, c0.length, types.c);
  rec.destroy();
  for (const buffer of [...buffers, cBuf]) buffer.destroy();
  // Elements of C outside the product must be left alone: with beta ≠ 0 they are compared as c0; with beta = 0
  // C was poisoned, so they must still be NaN (then left out of the comparison).
  if (beta === 0) {
    for (let i = 0; i < actual.length; i++) {
      if (covered[i]) continue;
      expect(actual[i], `C[${i}] lies outside the product`).toBeNaN();
      actual[i] = expected[i] = 0;
    }
  }
  return { actual, expected, names };

  function keep(buffer: GPUBuffer): GPUBuffer {
    buffers.push(buffer);
    return buffer;
  }
}

const Ns = [1, 5, 16, 17, 48, 64];
const Ks = [4, 12, 580, 1540];

describe('skinny matmul against the f64 reference', () => {
  for (const transB of [true, false]) {
    const layout = transB ? 'x·Aᵀ, B (N, K)' : 'dy·B, B (K, N)';
    it(`${layout}: M = 37, every N in ${Ns} × K in ${Ks}, f32 (rel < 1e-5)`, async () => {
      for (const N of Ns) {
        for (const K of Ks) {
          const f: SkinnyCase = { M: 37, N, K, transB };
          const { actual, expected, names } = await run(f, F32, 'skinny', N + K);
          expectClose(`skinny ${layout} 37×${N}×${K}`, actual, expected, 1e-5);
          expect(names).toEqual([
            `matmul.skinny${N <= 16 ? 16 : N <= 32 ? 32 : 64}${vec4B(N, transB) ? '' : '.sb'}`,
          ]);
        }
      }
    });
  }

  it('M = 1, 8, 9 and 70 (rows per workgroup 8), alpha −0.5 and beta 1 / −1 (accumulate into C)', async () => {
    for (const [M, alpha, beta] of [
      [1, 1, 0],
      [8, -0.5, 1],
      [9, 2, -1],
      [70, 0.25, 1],
    ]) {
      for (const transB of [true, false]) {
        const { actual, expected } = await run({ M, N: 20, K: 44, transB, alpha, beta }, F32, 'skinny', M);
        expectClose(`skinny M=${M} alpha=${alpha} beta=${beta} transB=${transB}`, actual, expected, 1e-5);
      }
    }
  });

  it('batch 3 with broadcast A, strided B and C written as columns of a wider buffer (stacked adapters)', async () => {
    for (const transB of [true, false]) {
      const f: SkinnyCase = {
        M: 29,
        N: 8,
        K: 36,
        batch: 3,
        transB,
        aBatchStride: 0, // x shared by q, k, v
        bBatchStride: 8 * 36 + 16, // the adapters' matrices 16 elements apart
        ldc: 30,
        cOffset: 3,
        cBatchStride: 9, // u columns side by side (and one spare) in a (M, 30) buffer
        beta: 0.5,
      };
      const { actual, expected } = await run(f, F32, 'skinny', 5);
      expectClose(`skinny stacked transB=${transB}`, actual, expected, 1e-5);
    }
  });

  it('offsets and leading dimensions: A a view into a wider buffer, B with ldb > its row (scalar B loads)', async () => {
    for (const transB of [true, false]) {
      const f: SkinnyCase = {
        M: 13,
        N: 6,
        K: 24,
        transB,
        lda: 32,
        aOffset: 8,
        ldb: transB ? 27 : 7,
        bOffset: 3,
        ldc: 11,
        cOffset: 2,
        beta: 1,
      };
      const { actual, expected, names } = await run(f, F32, 'skinny', 9);
      expectClose(`skinny strided transB=${transB}`, actual, expected, 1e-5);
      expect(names).toEqual(['matmul.skinny16.sb']);
    }
  });
});

describe.skipIf(skipF16)('skinny matmul, f16 storage', () => {
  it('f16 activations with f32 adapter weights and output (the LoRA products): rel < 1e-5 of f16-exact inputs', async () => {
    for (const transB of [true, false]) {
      for (const [N, K] of [
        [16, 580],
        [48, 1540],
        [5, 12],
      ]) {
        const types: Types = { a: 'f16', b: 'f32', c: 'f32' };
        const { actual, expected } = await run({ M: 21, N, K, transB, beta: 1 }, types, 'skinny', 3);
        expectClose(`skinny f16→f32 ${N}×${K} transB=${transB}`, actual, expected, 1e-5);
      }
    }
  });

  it('everything f16 (rel < 1e-2)', async () => {
    for (const transB of [true, false]) {
      const types: Types = { a: 'f16', b: 'f16', c: 'f16' };
      const { actual, expected } = await run(
        { M: 19, N: 17, K: 132, transB, alpha: 0.5 },
        types,
        'skinny',
        4,
      );
      expectClose(`skinny f16 transB=${transB}`, actual, expected, 1e-2);
    }
  });
});

describe('skinny LoRA dropout on A', () => {
  const dropout = { p: 0.4, seed: 4321, stream: 6, step: 91 };

  it('drops exactly the elements the tiled kernel drops: with B = I, C is dropout(x), bit for bit', async () => {
    const K = 60;
    const identity = new Float64Array(K * K).map((_, i) => (i % (K + 1) === 0 ? 1 : 0));
    for (const transB of [true, false]) {
      const f: SkinnyCase = { M: 23, N: K, K, batch: 2, transB, aBatchStride: 0, dropout };
      const skinny = await run(f, F32, 'skinny', 8, Float64Array.from([...identity, ...identity]));
      const tiled = await run(f, F32, 't32x32', 8, Float64Array.from([...identity, ...identity]));
      expect(skinny.names).toEqual(['matmul.skinny64+mask_a+rng']);
      expect(tiled.names[0]).toMatch(/\+mask_a\+rng$/);
      expect(Array.from(skinny.actual)).toEqual(Array.from(tiled.actual));
      // The reference's dropped elements exactly (x is never 0 where kept), the kept ones to f32 rounding.
      expect(Array.from(skinny.actual, (v) => v === 0)).toEqual(Array.from(skinny.expected, (v) => v === 0));
      expectClose('dropout(x)', skinny.actual, skinny.expected, 1e-6);
      const dropped = skinny.actual.filter((v) => v === 0).length;
      expect(dropped / skinny.actual.length).toBeGreaterThan(0.3); // p = 0.4 did drop
      expect(dropped / skinny.actual.length).toBeLessThan(0.5);
    }
  });

  it('u = dropout(x)·Aᵀ for stacked adapters (streams 6, 7, 8) matches the reference and the tiled kernel', async () => {
    const f: SkinnyCase = {
      M: 45,
      N: 16,
      K: 580,
      batch: 3,
      transB: true,
      aBatchStride: 0,
      ldc: 48,
      cBatchStride: 16,
      dropout,
    };
    const skinny = await run(f, F32, 'skinny', 12);
    const tiled = await run(f, F32, 't128x16', 12);
    expectClose('skinny masked', skinny.actual, skinny.expected, 1e-5);
    expectClose('skinny vs tiled masked', skinny.actual, tiled.actual, 1e-5);
  });
});

describe('skinny refusals and selection', () => {
  const t = () => ({ binding: poisoned(gpu, 64 * 64, 'f32'), dtype: 'f32' as const });

  it('refuses what it cannot run, naming why, before recording anything', () => {
    const rec = new CommandRecorder(gpu);
    const [a, b, c] = [t(), t(), t()];
    const skinny =
      (dims: { M: number; N: number; K: number }, options: MatmulOptions = {}) =>
      () =>
        matmul(rec, c, a, b, dims, { ...options, variant: 'skinny' });
    expect(skinny({ M: 8, N: 65, K: 8 })).toThrow(/skinny.*N must be in \[1, 64\], got 65/);
    expect(skinny({ M: 8, N: 8, K: 8 }, { transA: true })).toThrow(/skinny.*K-contiguous/);
    expect(skinny({ M: 8, N: 8, K: 6 })).toThrow(/skinny.*vec4/);
    expect(skinny({ M: 8, N: 8, K: 8 }, { lda: 10 })).toThrow(/skinny.*vec4/);
    expect(skinny({ M: 8, N: 8, K: 8 }, { bias: t() })).toThrow(/skinny.*cannot fuse bias/);
    expect(skinny({ M: 8, N: 8, K: 8 }, { residual: t(), rowScale: t().binding })).toThrow(
      /cannot fuse residual, rowScale/,
    );
    const workspace = poisoned(gpu, 1024, 'f32');
    expect(skinny({ M: 8, N: 8, K: 1024 }, { splits: 2, workspace })).toThrow(/skinny.*split-K/);
    expect(rec.counts.dispatches).toBe(0);
    rec.destroy();
  });

  it('a tuned skinny choice runs for plain products and falls back to the tiled kernel for extras it cannot fuse', async () => {
    const dims = { M: 40, N: 12, K: 16 };
    const key = matmulShapeClass(dims, { aK: true, bK: true }, { a: 'f32', b: 'f32', c: 'f32' });
    gpu.tuning.set('matmul', key, 'skinny');
    try {
      const rec = new CommandRecorder(gpu);
      const names: string[] = [];
      const dispatch = rec.dispatch.bind(rec);
      rec.dispatch = (program, args) => (names.push(program.name), dispatch(program, args));
      const [a, b, c] = [t(), t(), t()];
      matmul(rec, c, a, b, dims, { transB: true });
      matmul(rec, c, a, b, dims, { transB: true, bias: t() });
      await rec.submitAndWait();
      rec.destroy();
      expect(names).toEqual(['matmul.skinny16', 'matmul.t32x32+bias']);
    } finally {
      gpu.tuning.clear();
    }
  });

  it('the heuristic picks skinny for N ≤ 64 on hardware adapters only', () => {
    const hardware = Object.create(gpu, { isSoftware: { value: false } }) as Gpu;
    const software = Object.create(gpu, { isSoftware: { value: true } }) as Gpu;
    const xa = { aK: true, bK: true };
    const dyb = { aK: true, bK: false };
    expect(defaultVariant(hardware, { M: 1024, N: 16, K: 576 }, xa)).toBe('skinny');
    expect(defaultVariant(hardware, { M: 1024, N: 48, K: 1536, batch: 3 }, dyb)).toBe('skinny');
    expect(defaultVariant(hardware, { M: 1, N: 16, K: 576 }, xa)).toBe('skinny'); // decode's u (strided)
    expect(defaultVariant(hardware, { M: 1024, N: 65, K: 576 }, xa)).not.toBe('skinny');
    expect(defaultVariant(hardware, { M: 1024, N: 16, K: 578 }, xa)).not.toBe('skinny');
    expect(defaultVariant(hardware, { M: 16, N: 16, K: 1024 }, { aK: false, bK: false })).not.toBe('skinny');
    expect(defaultVariant(software, { M: 1024, N: 16, K: 576 }, xa)).toBe('t128x16');
  });
});

/** Whether the kernel reads a dense B as vec4: along K (always, K being a multiple of 4) or along N (N ÷ 4). */
function vec4B(N: number, transB: boolean): boolean {
  return transB || N % 4 === 0;
}
