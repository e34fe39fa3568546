// The fused linear's extras of the tiled matmul (shaders/matmul-tiled.wgsl) against an f64 reference: the LoRA
// up-projection as a K-extension, dropout masks on A and on the extension's result (bit-exact masks from the
// reference hash), stacked adapters along the batch, bias / residual / per-row β epilogues, offsets and strides.
import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  matmul,
  variantFits,
  type DropoutMask,
  type MatmulOptions,
  type TiledVariant,
} from '../../src/engine/kernels/matmul.ts';
import { expectClose } from '../reference/compare.ts';
import { dropoutMaskRef } from '../reference/dropout.ts';
import { randomArray } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);

/** A strided f64 view: element (b, i, j) of a buffer's values. */
type View = (b: number, i: number, j: number) => number;
const at = (values: ArrayLike<number>, off: number, bs: number, ld: number, trans = false): View =>
  trans ? (b, i, j) => values[off + b * bs + j * ld + i] : (b, i, j) => values[off + b * bs + i * ld + j];

interface MaskSpec {
  p: number;
  seed: number;
  stream: number;
  streamStride?: number;
  rowLength: number;
  step: number;
}

/** keep(b, m, k) · 1/(1 − p) of the reference hash, as the kernel applies it. */
function maskView(spec: MaskSpec, rows: number, batch: number): View {
  const masks = Array.from({ length: batch }, (_, b) =>
    dropoutMaskRef(
      rows * spec.rowLength,
      spec.p,
      spec.seed,
      spec.step,
      spec.stream + b * (spec.streamStride ?? 0),
    ),
  );
  return (b, m, k) => (masks[b][m * spec.rowLength + k] ? 1 / (1 - spec.p) : 0);
}

interface FusedCase {
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** Elements of A and B per batch, and C's layout (defaults dense). */
  aBatchStride?: number;
  bBatchStride?: number;
  cBatchStride?: number;
  aOffset?: number;
  cOffset?: number;
  ldc?: number;
  extend?: { K: number; scale: number; mask?: MaskSpec };
  maskA?: MaskSpec;
  /** Dropout on B (N-contiguous): masks index k·N + n. */
  maskB?: MaskSpec;
  bias?: boolean;
  residual?: boolean;
  rowScale?: boolean;
}

/** The dropout step is rng[0] + stepOffset: a base word and a micro-batch's index. */
const STEP_OFFSET = 3;

async function runFused(f: FusedCase, inType: ScalarType, outType: ScalarType, variant?: TiledVariant) {
  const { M, N, K, batch = 1, transA = false, transB = false, alpha = 1, beta = 0 } = f;
  const aBs = f.aBatchStride ?? M * K;
  const bBs = f.bBatchStride ?? K * N;
  const ldc = f.ldc ?? N;
  const cBs = f.cBatchStride ?? M * ldc;
  const aOff = f.aOffset ?? 0;
  const cOff = f.cOffset ?? 0;
  const round = (x: Float64Array, t: ScalarType) => (t === 'f16' ? roundToF16(x) : x);
  const aLen = aOff + (batch - 1) * aBs + M * K;
  const bLen = (batch - 1) * bBs + K * N;
  const cLen = cOff + (batch - 1) * cBs + (M - 1) * ldc + N;
  const a = round(randomArray(aLen, 1), inType);
  const b = round(randomArray(bLen, 2), inType);
  const c0 = round(randomArray(cLen, 3), outType);
  const bias = round(randomArray(N, 4), outType);
  const residual = round(randomArray(cLen, 5), outType);
  const rowScale = randomArray(M, 6);
  const K2 = f.extend?.K ?? 0;
  const a2 = randomArray(batch * M * K2, 7);
  const b2 = randomArray(batch * K2 * N, 8);
  const A = at(a, aOff, aBs, transA ? M : K, transA);
  const B = at(b, 0, bBs, transB ? K : N, transB);
  const A2 = at(a2, 0, M * K2, K2);
  const B2 = at(b2, 0, K2 * N, transB ? K2 : N, transB);
  const maskA = f.maskA ? maskView(f.maskA, M, batch) : () => 1;
  const maskB = f.maskB ? maskView(f.maskB, K, batch) : () => 1;
  const mask2 = f.extend?.mask ? maskView(f.extend.mask, M, batch) : () => 1;

  const expected = Float64Array.from(c0);
  for (let bi = 0; bi < batch; bi++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let main = 0;
        for (let k = 0; k < K; k++) main += maskA(bi, m, k) * A(bi, m, k) * maskB(bi, k, n) * B(bi, k, n);
        let ext = 0;
        for (let k = 0; k < K2; k++) ext += A2(bi, m, k) * B2(bi, k, n);
        const i = cOff + bi * cBs + m * ldc + n;
        let v = alpha * (main + (f.extend?.scale ?? 0) * mask2(bi, m, n) * ext);
        if (f.bias) v += bias[n];
        if (f.residual) v += residual[i];
        const cb = f.rowScale ? rowScale[m] : beta;
        if (cb !== 0) v += cb * c0[i];
        expected[i] = v;
      }
    }
  }

  const buffers: GPUBuffer[] = [];
  const keep = <T extends GPUBuffer>(buffer: T) => (buffers.push(buffer), buffer);
  const cBuf = keep(upload(gpu, c0, outType));
  const step = f.maskA?.step ?? f.maskB?.step ?? f.extend?.mask?.step ?? STEP_OFFSET;
  const rng = keep(upload(gpu, [step - STEP_OFFSET, 9], 'u32'));
  const mask = (spec: MaskSpec | undefined): DropoutMask | undefined =>
    spec && { ...spec, rng, stepOffset: STEP_OFFSET };
  const options: MatmulOptions = {
    transA,
    transB,
    alpha,
    beta,
    aBatchStride: aBs,
    bBatchStride: bBs,
    cBatchStride: cBs,
    aOffset: aOff,
    cOffset: cOff,
    ldc,
    variant,
    maskA: mask(f.maskA),
    maskB: mask(f.maskB),
    bias: f.bias ? { binding: keep(upload(gpu, bias, outType)), dtype: outType } : undefined,
    residual: f.residual ? { binding: keep(upload(gpu, residual, outType)), dtype: outType } : undefined,
    rowScale: f.rowScale ? keep(upload(gpu, rowScale, 'f32')) : undefined,
    extend: f.extend && {
      a: { binding: keep(upload(gpu, a2, 'f32')), rowStride: K2, colStride: 1, batchStride: M * K2 },
      // B2 is stored like B (transposed with transB): its strides say so.
      b: {
        binding: keep(upload(gpu, b2, 'f32')),
        rowStride: transB ? 1 : N,
        colStride: transB ? K2 : 1,
        batchStride: K2 * N,
      },
      K: K2,
      scale: f.extend.scale,
      mask: mask(f.extend.mask),
    },
  };
  const rec = new CommandRecorder(gpu);
  matmul(
    rec,
    { binding: cBuf, dtype: outType },
    { binding: keep(upload(gpu, a, inType)), dtype: inType },
    { binding: keep(upload(gpu, b, inType)), dtype: inType },
    { M, N, K, batch },
    options,
  );
  await rec.submitAndWait();
  const actual = await download(gpu, cBuf, cLen, outType);
  rec.destroy();
  for (const buffer of buffers) buffer.destroy();
  return { actual, expected };
}

const dropout = (stream: number, rowLength: number, p = 0.3): MaskSpec => ({
  p,
  seed: 1234,
  stream,
  rowLength,
  step: 77,
});

const cases: [string, FusedCase][] = [
  [
    'LoRA forward: y = x·Wᵀ + s·u·Bᵀ + bias, r = 3',
    { M: 37, N: 45, K: 28, transB: true, extend: { K: 3, scale: 1.7 }, bias: true },
  ],
  [
    'LoRA forward into the residual stream: x2 = x + att·Woᵀ + s·u·Bᵀ, r = 5, K = 30 (scalar A and B loads)',
    { M: 19, N: 20, K: 30, transB: true, extend: { K: 5, scale: 0.5 }, residual: true },
  ],
  [
    'LoRA backward: dx = dy·W + mask ∘ (s·v·A) / (1 − p), accumulated (beta 1), r = 6',
    {
      M: 23,
      N: 36,
      K: 44,
      beta: 1,
      extend: { K: 6, scale: 2, mask: dropout(5, 36) },
    },
  ],
  ['u = dropout(x)·Aᵀ, r = 7', { M: 41, N: 7, K: 24, transB: true, maskA: dropout(3, 24, 0.5) }],
  [
    'dA += s·vᵀ·dropout(x) (Aᵀ·B, B masked), r = 5',
    { M: 5, N: 28, K: 33, transA: true, alpha: 0.7, beta: 1, maskB: dropout(4, 28) },
  ],
  [
    'stacked adapters: U[:, b·r : (b+1)·r] = dropout_b(x)·A_bᵀ for b = q, k, v (x broadcast)',
    {
      M: 17,
      N: 4,
      K: 20,
      batch: 3,
      transB: true,
      aBatchStride: 0,
      bBatchStride: 4 * 20 + 16, // A matrices 16 elements apart (alignment padding)
      ldc: 12,
      cBatchStride: 4,
      maskA: { ...dropout(10, 20), streamStride: 1 },
    },
  ],
  ['per-row β: G = P·W + α ∘ G (cross-entropy)', { M: 26, N: 32, K: 40, rowScale: true }],
  [
    'offsets and leading dimensions: a view into a bigger buffer, C written as columns of a wider one',
    { M: 14, N: 9, K: 12, transB: true, aOffset: 8, cOffset: 4, ldc: 21, alpha: -0.5, beta: 0.25 },
  ],
];

describe('fused linear extras of the tiled matmul', () => {
  it.each(cases)('%s: f32 (rel < 1e-5)', async (_name, f) => {
    const { actual, expected } = await runFused(f, 'f32', 'f32');
    expectClose('fused f32', actual, expected, 1e-5);
  });

  it.skipIf(skipF16).each(cases)('%s: f16 activations (rel < 1e-2)', async (_name, f) => {
    const { actual, expected } = await runFused(f, 'f16', 'f16');
    expectClose('fused f16', actual, expected, 1e-2);
  });

  // The small cases above run the small tile; each variant is the same code with other constants, so one
  // more variant over the three linear shapes (forward, backward, dropout(x)·Aᵀ) keeps compile time sane.
  it('the same with variant t64x64', async () => {
    for (const [name, f] of cases.slice(0, 5)) {
      if (!variantFits(gpu, 't64x64', { aK: !f.transA, bK: !!f.transB })) continue;
      const { actual, expected } = await runFused(f, 'f32', 'f32', 't64x64');
      expectClose(`t64x64: ${name}`, actual, expected, 1e-5);
    }
  });

  it('a dropout step other than the mask was made with changes the result (the step is read from rng)', async () => {
    const f: FusedCase = { M: 9, N: 5, K: 16, transB: true, maskA: dropout(1, 16, 0.5) };
    const right = await runFused(f, 'f32', 'f32');
    const wrongStep = await runFused({ ...f, maskA: { ...f.maskA!, step: 78 } }, 'f32', 'f32');
    expect(Array.from(wrongStep.actual)).not.toEqual(Array.from(right.expected));
  });

  it('refuses combinations it cannot fuse, before recording anything', () => {
    const rec = new CommandRecorder(gpu);
    const t = { binding: poisoned(gpu, 64, 'f32'), dtype: 'f32' as const };
    const dims = { M: 4, N: 4, K: 4 };
    expect(() => matmul(rec, t, t, t, dims, { bias: t, rowScale: t.binding })).toThrow(/share a binding/);
    const mask = { ...dropout(0, 4), rng: t.binding, stepOffset: 0 };
    expect(() => matmul(rec, t, t, t, dims, { transA: true, maskA: mask })).toThrow(/K-contiguous A/);
    expect(() => matmul(rec, t, t, t, dims, { maskA: mask, maskB: mask })).toThrow(/one dropout mask/);
    expect(() => matmul(rec, t, t, t, dims, { variant: 'generic', bias: t })).toThrow(/tiled variant/);
    expect(rec.dispatches).toBe(0);
    rec.destroy();
  });
});
