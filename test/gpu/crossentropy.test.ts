import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  crossEntropyBackward,
  crossEntropyBackwardFromLogits,
  crossEntropyForward,
  crossEntropyForwardFromLogits,
  crossEntropyPlan,
  type CrossEntropyDims,
} from '../../src/engine/kernels/crossentropy.ts';
import { expectClose } from '../reference/compare.ts';
import {
  crossEntropyBackwardRef,
  crossEntropyFromLogitsRef,
  crossEntropyRef,
  dlogitsRef,
} from '../reference/crossentropy.ts';
import { randomArray, rng } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);

/** Targets in [0, V) with every `ignoreEvery`-th row set to −100. */
function makeTargets(N: number, V: number, seed: number, ignoreEvery = 3): Int32Array {
  const next = rng(seed);
  const t = new Int32Array(N);
  for (let n = 0; n < N; n++) t[n] = n % ignoreEvery === 1 ? -100 : Math.floor(next() * V);
  return t;
}

interface GpuCe {
  loss: number;
  losses: Float64Array;
  lse: Float64Array;
  dh: Float64Array;
}

/** Runs forward and backward of the chunked kernel; dh starts from `dh0` (backward accumulates). */
async function runChunked(
  h: ArrayLike<number>,
  w: ArrayLike<number>,
  targets: Int32Array,
  dims: CrossEntropyDims,
  opts: {
    actType: ScalarType;
    dhType?: ScalarType;
    chunk?: number;
    invNormaliser: number;
    lossScale?: number;
    dh0?: ArrayLike<number>;
    backward?: boolean;
  },
): Promise<GpuCe> {
  const { N, C } = dims;
  const dhType = opts.dhType ?? opts.actType;
  const plan = crossEntropyPlan(gpu, dims, opts.actType, opts.chunk);
  const hBuf = upload(gpu, h, opts.actType);
  const wBuf = upload(gpu, w, opts.actType);
  const tBuf = upload(gpu, targets, 'i32');
  const scratch = poisoned(gpu, plan.scratchBytes / 4, 'f32');
  const loss = poisoned(gpu, 1, 'f32');
  const losses = poisoned(gpu, N, 'f32');
  const lse = poisoned(gpu, N, 'f32');
  const dh = upload(gpu, opts.dh0 ?? new Float64Array(N * C), dhType);
  const rec = new CommandRecorder(gpu);
  const hRef = { binding: hBuf, dtype: opts.actType };
  const wRef = { binding: wBuf, dtype: opts.actType };
  crossEntropyForward(rec, { loss, losses, lse }, hRef, wRef, tBuf, dims, {
    invNormaliser: opts.invNormaliser,
    chunk: opts.chunk,
    scratch,
  });
  if (opts.backward !== false) {
    crossEntropyBackward(rec, { binding: dh, dtype: dhType }, lse, hRef, wRef, tBuf, dims, {
      invNormaliser: opts.invNormaliser,
      lossScale: opts.lossScale,
      chunk: opts.chunk,
      scratch,
    });
  }
  await rec.submitAndWait();
  const result = {
    loss: (await download(gpu, loss, 1, 'f32'))[0],
    losses: await download(gpu, losses, N, 'f32'),
    lse: await download(gpu, lse, N, 'f32'),
    dh: await download(gpu, dh, N * C, dhType),
  };
  for (const b of [hBuf, wBuf, tBuf, scratch, loss, losses, lse, dh]) b.destroy();
  rec.destroy();
  return result;
}

function countValid(targets: Int32Array): number {
  return targets.filter((t) => t !== -100).length;
}

describe('cross-entropy f64 reference', () => {
  it('backward matches central finite differences of the reference loss (1e-6)', () => {
    const dims = { N: 5, C: 7, V: 23 };
    const h = randomArray(dims.N * dims.C, 1);
    const w = randomArray(dims.V * dims.C, 2);
    const targets = makeTargets(dims.N, dims.V, 3);
    const inv = 1 / countValid(targets);
    const dh = crossEntropyBackwardRef(h, w, targets, dims, inv);
    const fd = new Float64Array(h.length);
    const eps = 1e-5;
    for (let i = 0; i < h.length; i++) {
      const hp = Float64Array.from(h);
      const hm = Float64Array.from(h);
      hp[i] += eps;
      hm[i] -= eps;
      fd[i] =
        (crossEntropyRef(hp, w, targets, dims, inv).loss - crossEntropyRef(hm, w, targets, dims, inv).loss) /
        (2 * eps);
    }
    expectClose('ce ref dh vs finite differences', dh, fd, 1e-6);
    // ignored rows (n % 3 == 1) have exactly zero gradient
    for (let c = 0; c < dims.C; c++) expect(dh[1 * dims.C + c]).toBe(0);
  });
});

describe('cross-entropy chunked f32', () => {
  const dims = { N: 7, C: 37, V: 1000 };
  const h = randomArray(dims.N * dims.C, 11);
  const w = randomArray(dims.V * dims.C, 12, 0.5);
  const targets = makeTargets(dims.N, dims.V, 13);
  const inv = 1 / countValid(targets);

  it('V=1000 in chunks of 384 (remainder 232), ignored rows: loss, lse and accumulated dh vs f64', async () => {
    const dh0 = randomArray(dims.N * dims.C, 14);
    const plan = crossEntropyPlan(gpu, dims, 'f32', 384);
    expect(plan.chunks).toBe(3);
    const got = await runChunked(h, w, targets, dims, {
      actType: 'f32',
      chunk: 384,
      invNormaliser: inv,
      lossScale: 8,
      dh0,
    });
    const ref = crossEntropyRef(h, w, targets, dims, inv);
    expectClose('ce losses', got.losses, ref.losses, 1e-5);
    expectClose('ce loss', [got.loss], [ref.loss], 1e-5);
    const refLse = ref.lse.map((x, n) => (targets[n] === -100 ? got.lse[n] : x)); // lse of ignored rows unused
    expectClose('ce lse', got.lse, refLse, 1e-5);
    const g = crossEntropyBackwardRef(h, w, targets, dims, 8 * inv);
    const dhRef = g.map((x, i) => x + dh0[i]);
    expectClose('ce dh (accumulated)', got.dh, dhRef, 1e-5);
    // the gradient alone, not hidden by dh0
    expectClose(
      'ce dh increment',
      got.dh.map((x, i) => x - dh0[i]),
      g,
      1e-5,
    );
  });

  it('ignored rows contribute nothing: changing their h changes neither loss nor any gradient', async () => {
    const a = await runChunked(h, w, targets, dims, { actType: 'f32', chunk: 384, invNormaliser: inv });
    const h2 = Float64Array.from(h);
    for (let n = 0; n < dims.N; n++) {
      if (targets[n] !== -100) continue;
      for (let c = 0; c < dims.C; c++) h2[n * dims.C + c] = 100 * (c % 5) - 7;
    }
    const b = await runChunked(h2, w, targets, dims, { actType: 'f32', chunk: 384, invNormaliser: inv });
    expect(b.loss).toBe(a.loss);
    expect(Array.from(b.dh)).toEqual(Array.from(a.dh));
    for (let n = 0; n < dims.N; n++) {
      if (targets[n] !== -100) continue;
      expect(b.losses[n]).toBe(0);
      for (let c = 0; c < dims.C; c++) expect(b.dh[n * dims.C + c]).toBe(0);
    }
  });

  it('GPU backward agrees with finite differences of the GPU forward (loose)', async () => {
    const base = await runChunked(h, w, targets, dims, { actType: 'f32', chunk: 384, invNormaliser: inv });
    const eps = 1e-2;
    for (const i of [0, 40, 3 * dims.C + 5, dims.N * dims.C - 1]) {
      const hp = Float64Array.from(h);
      const hm = Float64Array.from(h);
      hp[i] += eps;
      hm[i] -= eps;
      const lp = await runChunked(hp, w, targets, dims, {
        actType: 'f32',
        chunk: 384,
        invNormaliser: inv,
        backward: false,
      });
      const lm = await runChunked(hm, w, targets, dims, {
        actType: 'f32',
        chunk: 384,
        invNormaliser: inv,
        backward: false,
      });
      const fd = (lp.loss - lm.loss) / (2 * eps);
      expect(Math.abs(fd - base.dh[i])).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)) + 1e-4);
    }
  });

  it('default chunk, one chunk covering V, N = 1, C = 1', async () => {
    const d = { N: 1, C: 1, V: 5 };
    const hh = [0.7];
    const ww = [1, -2, 0.5, 3, -1];
    const t = Int32Array.from([3]);
    const got = await runChunked(hh, ww, t, d, { actType: 'f32', invNormaliser: 1 });
    const ref = crossEntropyRef(hh, ww, t, d, 1);
    expectClose('ce tiny loss', [got.loss], [ref.loss], 1e-5);
    expectClose('ce tiny dh', got.dh, crossEntropyBackwardRef(hh, ww, t, d, 1), 1e-5);
  });

  it('micro-batch accumulation adds into loss[0]', async () => {
    const plan = crossEntropyPlan(gpu, dims, 'f32', 384);
    const hBuf = upload(gpu, h, 'f32');
    const wBuf = upload(gpu, w, 'f32');
    const tBuf = upload(gpu, targets, 'i32');
    const scratch = poisoned(gpu, plan.scratchBytes / 4, 'f32');
    const loss = upload(gpu, [0.25], 'f32');
    const losses = poisoned(gpu, dims.N, 'f32');
    const lse = poisoned(gpu, dims.N, 'f32');
    const rec = new CommandRecorder(gpu);
    for (let k = 0; k < 2; k++) {
      crossEntropyForward(
        rec,
        { loss, losses, lse },
        { binding: hBuf, dtype: 'f32' },
        { binding: wBuf, dtype: 'f32' },
        tBuf,
        dims,
        { invNormaliser: inv / 2, accumulate: true, chunk: 384, scratch },
      );
    }
    await rec.submitAndWait();
    const got = (await download(gpu, loss, 1, 'f32'))[0];
    expectClose('accumulated loss', [got], [0.25 + crossEntropyRef(h, w, targets, dims, inv).loss], 1e-5);
    for (const b of [hBuf, wBuf, tBuf, scratch, loss, losses, lse]) b.destroy();
    rec.destroy();
  });

  it('Qwen-sized vocabulary V = 151,936 (tiny N, C) within the binding limits', async () => {
    const d = { N: 3, C: 8, V: 151936 };
    const hh = randomArray(d.N * d.C, 21);
    const ww = randomArray(d.V * d.C, 22);
    const t = Int32Array.from([151935, -100, 77777]);
    const plan = crossEntropyPlan(gpu, d, 'f32');
    expect(plan.chunks).toBeGreaterThan(1);
    const got = await runChunked(hh, ww, t, d, { actType: 'f32', invNormaliser: 0.5 });
    const ref = crossEntropyRef(hh, ww, t, d, 0.5);
    expectClose('qwen ce losses', got.losses, ref.losses, 1e-5);
    expectClose('qwen ce dh', got.dh, crossEntropyBackwardRef(hh, ww, t, d, 0.5), 1e-5);
  });

  it('rejects a chunk that would misalign the W slices', () => {
    expect(() => crossEntropyPlan(gpu, dims, 'f32', 100)).toThrow(RangeError);
    expect(() => crossEntropyPlan(gpu, { N: 1, C: 1, V: 0 }, 'f32')).toThrow(RangeError);
  });
});

describe.skipIf(skipF16)('cross-entropy chunked f16', () => {
  it('f16 h and W, f32 and f16 dh, vs f64 from f16-rounded inputs (rel < 1e-2)', async () => {
    const dims = { N: 9, C: 33, V: 700 };
    const h = roundToF16(randomArray(dims.N * dims.C, 31));
    const w = roundToF16(randomArray(dims.V * dims.C, 32, 0.5));
    const targets = makeTargets(dims.N, dims.V, 33);
    const inv = 1 / countValid(targets);
    const ref = crossEntropyRef(h, w, targets, dims, inv);
    const dhRef = crossEntropyBackwardRef(h, w, targets, dims, inv);
    for (const dhType of ['f32', 'f16'] as const) {
      const got = await runChunked(h, w, targets, dims, {
        actType: 'f16',
        dhType,
        chunk: 256,
        invNormaliser: inv,
      });
      // f32 logits and statistics from f16-exact inputs: as tight as the f32 path.
      expect(expectClose('ce f16 loss', [got.loss], [ref.loss], 1e-2)).toBeLessThan(1e-5);
      expectClose(`ce f16 dh (${dhType})`, got.dh, dhRef, 1e-2);
    }
  });
});

describe('cross-entropy from whole logits', () => {
  for (const type of ['f32', 'f16'] as const) {
    it.skipIf(type === 'f16' && skipF16)(`${type} logits: loss, lse and dlogits vs f64`, async () => {
      const N = 6;
      const V = 301;
      let logits = randomArray(N * V, 41, 4);
      if (type === 'f16') logits = roundToF16(logits);
      const targets = makeTargets(N, V, 42, 4);
      const inv = 1 / countValid(targets);
      const lBuf = upload(gpu, logits, type);
      const tBuf = upload(gpu, targets, 'i32');
      const scratch = poisoned(gpu, 3 * N, 'f32');
      const loss = poisoned(gpu, 1, 'f32');
      const losses = poisoned(gpu, N, 'f32');
      const lse = poisoned(gpu, N, 'f32');
      const dl = poisoned(gpu, N * V, type);
      const rec = new CommandRecorder(gpu);
      const lRef = { binding: lBuf, dtype: type };
      crossEntropyForwardFromLogits(
        rec,
        { loss, losses, lse },
        lRef,
        tBuf,
        { N, V },
        { invNormaliser: inv, scratch },
      );
      crossEntropyBackwardFromLogits(
        rec,
        { binding: dl, dtype: type },
        lse,
        lRef,
        tBuf,
        { N, V },
        {
          invNormaliser: inv,
          lossScale: 4,
        },
      );
      await rec.submitAndWait();
      const ref = crossEntropyFromLogitsRef(logits, targets, N, V, inv);
      expectClose('logits ce loss', await download(gpu, loss, 1, 'f32'), [ref.loss], 1e-5);
      expectClose('logits ce losses', await download(gpu, losses, N, 'f32'), ref.losses, 1e-5);
      const dRef = dlogitsRef(logits, ref.lse, targets, N, V, 4 * inv);
      expectClose('dlogits', await download(gpu, dl, N * V, type), dRef, type === 'f32' ? 1e-5 : 1e-2);
      for (const b of [lBuf, tBuf, scratch, loss, losses, lse, dl]) b.destroy();
      rec.destroy();
    });
  }
});
