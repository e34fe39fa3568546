import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, wgslPreamble, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  crossEntropyBackward,
  crossEntropyBackwardFromLogits,
  crossEntropyCost,
  crossEntropyForward,
  crossEntropyForwardFromLogits,
  crossEntropyPlan,
  crossEntropyTrainForward,
  type CrossEntropyDims,
} from '../../src/engine/kernels/crossentropy.ts';
import { expectClose } from '../reference/compare.ts';
import {
  crossEntropyBackwardRef,
  crossEntropyFromLogitsRef,
  crossEntropyRef,
  crossEntropyTrainRef,
  dlogitsRef,
} from '../reference/crossentropy.ts';
import { randomArray, rng } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);
const hasSubgroups = gpu.features.has('subgroups');
if (!hasSubgroups) console.warn(`adapter has no 'subgroups': only the workgroup-tree reductions are tested`);
/** Both row reductions, each forced: the workgroup tree and (where the device has them) subgroups. */
const REDUCTIONS = hasSubgroups ? [false, true] : [false];
const reductionName = (subgroups: boolean) => (subgroups ? 'subgroups' : 'workgroup tree');

/** Targets in [0, V) with every `ignoreEvery`-th row set to −100. */
function makeTargets(N: number, V: number, seed: number, ignoreEvery = 3): Int32Array {
  const next = rng(seed);
  const t = new Int32Array(N);
  for (let n = 0; n < N; n++) t[n] = n % ignoreEvery === 1 ? -100 : Math.floor(next() * V);
  return t;
}

function countValid(targets: Int32Array): number {
  return targets.filter((t) => t !== -100).length;
}

interface CeProblem {
  h: ArrayLike<number>;
  w: ArrayLike<number>;
  targets: Int32Array;
  dims: CrossEntropyDims;
}

function problem(dims: CrossEntropyDims, seed: number, ignoreEvery = 3): CeProblem {
  return {
    h: randomArray(dims.N * dims.C, seed),
    w: randomArray(dims.V * dims.C, seed + 1, 0.5),
    targets: makeTargets(dims.N, dims.V, seed + 2, ignoreEvery),
    dims,
  };
}

/** 'eval': forward only; 'unfused': forward then backward (dh += …); 'fused': crossEntropyTrainForward. */
type Mode = 'eval' | 'unfused' | 'fused';

interface RunOptions {
  mode: Mode;
  actType: ScalarType;
  dhType?: ScalarType;
  chunk?: number;
  invNormaliser: number;
  lossScale?: number;
  /** dh's starting contents for 'unfused' (default zeros); 'fused' always starts from poison. */
  dh0?: ArrayLike<number>;
  subgroups?: boolean;
}

interface GpuCe {
  loss: number;
  losses: Float64Array;
  lse: Float64Array;
  dh: Float64Array;
  dispatches: number;
}

/** One recorded launch on fresh buffers; outputs and both scratches are poisoned first. */
async function runCe(p: CeProblem, o: RunOptions): Promise<GpuCe> {
  const { N, C } = p.dims;
  const dhType = o.dhType ?? o.actType;
  const plan = crossEntropyPlan(gpu, p.dims, o.actType, o.chunk);
  const h = { binding: upload(gpu, p.h, o.actType), dtype: o.actType };
  const w = { binding: upload(gpu, p.w, o.actType), dtype: o.actType };
  const targets = upload(gpu, p.targets, 'i32');
  const scratch = poisoned(gpu, plan.scratchBytes / 4, 'f32');
  const gradScratch = poisoned(gpu, plan.gradScratchBytes / 4, 'f32');
  const out = {
    loss: poisoned(gpu, 1, 'f32'),
    losses: poisoned(gpu, N, 'f32'),
    lse: poisoned(gpu, N, 'f32'),
  };
  const dhBuf =
    o.mode === 'fused' ? poisoned(gpu, N * C, dhType) : upload(gpu, o.dh0 ?? new Float64Array(N * C), dhType);
  const dh = { binding: dhBuf, dtype: dhType };
  const common = { invNormaliser: o.invNormaliser, chunk: o.chunk, scratch, subgroups: o.subgroups };
  const rec = new CommandRecorder(gpu);
  if (o.mode === 'fused') {
    crossEntropyTrainForward(rec, { ...out, dh }, h, w, targets, p.dims, {
      ...common,
      lossScale: o.lossScale,
      gradScratch,
    });
  } else {
    crossEntropyForward(rec, out, h, w, targets, p.dims, common);
    if (o.mode === 'unfused') {
      crossEntropyBackward(rec, dh, out.lse, h, w, targets, p.dims, { ...common, lossScale: o.lossScale });
    }
  }
  const dispatches = rec.dispatches;
  await rec.submitAndWait();
  const result = {
    loss: (await download(gpu, out.loss, 1, 'f32'))[0],
    losses: await download(gpu, out.losses, N, 'f32'),
    lse: await download(gpu, out.lse, N, 'f32'),
    dh: await download(gpu, dhBuf, N * C, dhType),
    dispatches,
  };
  for (const b of [
    h.binding,
    w.binding,
    targets,
    scratch,
    gradScratch,
    out.loss,
    out.losses,
    out.lse,
    dhBuf,
  ]) {
    b.destroy();
  }
  rec.destroy();
  return result;
}

/** Loss, row losses, lse (all rows: ignored rows' lse is computed too) and dh against the f64 reference. */
function expectMatchesRef(
  label: string,
  got: GpuCe,
  p: CeProblem,
  inv: number,
  lossScale: number,
  tol: number,
) {
  const ref = crossEntropyTrainRef(p.h, p.w, p.targets, p.dims, inv, lossScale);
  expectClose(`${label} losses`, got.losses, ref.losses, tol);
  expectClose(`${label} loss`, [got.loss], [ref.loss], tol);
  expectClose(`${label} lse`, got.lse, ref.lse, tol);
  expectClose(`${label} dh`, got.dh, ref.dh, tol);
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

  it('the training reference agrees with the forward and backward references', () => {
    const p = problem({ N: 6, C: 5, V: 19 }, 4);
    const train = crossEntropyTrainRef(p.h, p.w, p.targets, p.dims, 0.25, 8);
    const fwd = crossEntropyRef(p.h, p.w, p.targets, p.dims, 0.25);
    expectClose('train ref loss', [train.loss], [fwd.loss], 1e-12);
    expectClose('train ref lse', train.lse, fwd.lse, 1e-12);
    expectClose('train ref dh', train.dh, crossEntropyBackwardRef(p.h, p.w, p.targets, p.dims, 2), 1e-12);
  });
});

for (const subgroups of REDUCTIONS) {
  describe(`cross-entropy chunked f32, ${reductionName(subgroups)} reductions`, () => {
    const p = problem({ N: 7, C: 37, V: 1000 }, 11);
    const inv = 1 / countValid(p.targets);
    const base = { actType: 'f32', chunk: 384, invNormaliser: inv, subgroups } as const;

    it('unfused: V=1000 in chunks of 384 (remainder 232), ignored rows, dh accumulated, vs f64', async () => {
      const dh0 = randomArray(p.dims.N * p.dims.C, 14);
      expect(crossEntropyPlan(gpu, p.dims, 'f32', 384).chunks).toBe(3);
      const got = await runCe(p, { ...base, mode: 'unfused', lossScale: 8, dh0 });
      const ref = crossEntropyTrainRef(p.h, p.w, p.targets, p.dims, inv, 8);
      expectMatchesRef('unfused', { ...got, dh: got.dh.map((x, i) => x - dh0[i]) }, p, inv, 8, 1e-5);
      expectClose(
        'unfused dh (accumulated)',
        got.dh,
        ref.dh.map((x, i) => x + dh0[i]),
        1e-5,
      );
    });

    it('fused: V=1000 in chunks of 384, ignored rows, lossScale 8: loss, lse and dh vs f64', async () => {
      const got = await runCe(p, { ...base, mode: 'fused', lossScale: 8 });
      expectMatchesRef('fused', got, p, inv, 8, 1e-5);
    });

    it('fused: 16 chunks of 64 (remainder 40), odd N = 13, equals unfused forward + backward', async () => {
      const q = problem({ N: 13, C: 37, V: 1000 }, 51);
      const qInv = 1 / countValid(q.targets);
      const opts = { ...base, chunk: 64, invNormaliser: qInv, lossScale: 3 };
      expect(crossEntropyPlan(gpu, q.dims, 'f32', 64).chunks).toBe(16);
      const fused = await runCe(q, { ...opts, mode: 'fused' });
      const unfused = await runCe(q, { ...opts, mode: 'unfused' });
      expectMatchesRef('fused 16 chunks', fused, q, qInv, 3, 1e-5);
      expectClose('fused vs unfused loss', [fused.loss], [unfused.loss], 1e-6);
      expectClose('fused vs unfused losses', fused.losses, unfused.losses, 1e-6);
      expectClose('fused vs unfused lse', fused.lse, unfused.lse, 1e-6);
      expectClose('fused vs unfused dh', fused.dh, unfused.dh, 1e-5);
    });

    it('ignored rows contribute nothing: changing their h changes neither loss nor any gradient', async () => {
      const h2 = Float64Array.from(p.h);
      for (let n = 0; n < p.dims.N; n++) {
        if (p.targets[n] !== -100) continue;
        for (let c = 0; c < p.dims.C; c++) h2[n * p.dims.C + c] = 100 * (c % 5) - 7;
      }
      for (const mode of ['unfused', 'fused'] as const) {
        const a = await runCe(p, { ...base, mode });
        const b = await runCe({ ...p, h: h2 }, { ...base, mode });
        expect(b.loss).toBe(a.loss);
        expect(Array.from(b.dh)).toEqual(Array.from(a.dh));
        for (let n = 0; n < p.dims.N; n++) {
          if (p.targets[n] !== -100) continue;
          expect(b.losses[n]).toBe(0);
          for (let c = 0; c < p.dims.C; c++) expect(b.dh[n * p.dims.C + c]).toBe(0);
        }
      }
    });

    it('fused, every row ignored: loss 0 and dh 0 everywhere (no poison left)', async () => {
      const q = { ...p, targets: new Int32Array(p.dims.N).fill(-100) };
      const got = await runCe(q, { ...base, mode: 'fused', invNormaliser: 1, lossScale: 4 });
      expect(got.loss).toBe(0);
      expect(Array.from(got.losses)).toEqual(new Array<number>(p.dims.N).fill(0));
      expect(got.dh.every((x) => x === 0)).toBe(true);
      expectClose('all-ignored lse', got.lse, crossEntropyRef(q.h, q.w, q.targets, q.dims, 1).lse, 1e-5);
    });

    it('fused, a target outside the vocabulary: NaN loss for its row, the other rows intact', async () => {
      const targets = Int32Array.from(p.targets);
      targets[2] = p.dims.V + 5;
      const q = { ...p, targets };
      const got = await runCe(q, { ...base, mode: 'fused', lossScale: 2 });
      expect(got.losses[2]).toBeNaN();
      expect(got.loss).toBeNaN();
      const ref = crossEntropyTrainRef(q.h, q.w, q.targets, q.dims, inv, 2);
      const valid = (xs: Float64Array) => xs.filter((_, n) => n !== 2);
      expectClose('oov: other losses', valid(got.losses), valid(ref.losses), 1e-5);
      expectClose('oov: dh (softmax·W on the bad row)', got.dh, ref.dh, 1e-5);
    });

    it('default chunk, one chunk covering V, N = 1 (matvec), C = 1', async () => {
      const q = {
        h: [0.7],
        w: [1, -2, 0.5, 3, -1],
        targets: Int32Array.from([3]),
        dims: { N: 1, C: 1, V: 5 },
      };
      for (const mode of ['unfused', 'fused'] as const) {
        const got = await runCe(q, { mode, actType: 'f32', invNormaliser: 1, lossScale: 5, subgroups });
        expectMatchesRef(`tiny ${mode}`, got, q, 1, 5, 1e-5);
      }
    });

    it('micro-batches: loss[0] accumulates, the fused dh is written (not added)', async () => {
      const plan = crossEntropyPlan(gpu, p.dims, 'f32', 384);
      const second = problem(p.dims, 61);
      const buffers = [p, second].map((x) => ({
        h: { binding: upload(gpu, x.h, 'f32'), dtype: 'f32' as const },
        t: upload(gpu, x.targets, 'i32'),
      }));
      const w = { binding: upload(gpu, p.w, 'f32'), dtype: 'f32' as const };
      const scratch = poisoned(gpu, plan.scratchBytes / 4, 'f32');
      const gradScratch = poisoned(gpu, plan.gradScratchBytes / 4, 'f32');
      const out = {
        loss: upload(gpu, [0.25], 'f32'),
        losses: poisoned(gpu, 7, 'f32'),
        lse: poisoned(gpu, 7, 'f32'),
      };
      const dh = { binding: poisoned(gpu, 7 * 37, 'f32'), dtype: 'f32' as const };
      const rec = new CommandRecorder(gpu);
      const opts = {
        invNormaliser: 0.1,
        accumulate: true,
        chunk: 384,
        lossScale: 2,
        scratch,
        gradScratch,
        subgroups,
      };
      for (const b of buffers) crossEntropyTrainForward(rec, { ...out, dh }, b.h, w, b.t, p.dims, opts);
      await rec.submitAndWait();
      const ref1 = crossEntropyTrainRef(p.h, p.w, p.targets, p.dims, 0.1, 2);
      const ref2 = crossEntropyTrainRef(second.h, p.w, second.targets, p.dims, 0.1, 2);
      const loss = (await download(gpu, out.loss, 1, 'f32'))[0];
      expectClose('accumulated loss', [loss], [0.25 + ref1.loss + ref2.loss], 1e-5);
      expectClose(
        'dh of the last micro-batch',
        await download(gpu, dh.binding, 7 * 37, 'f32'),
        ref2.dh,
        1e-5,
      );
      for (const b of buffers) [b.h.binding, b.t].forEach((x) => x.destroy());
      for (const x of [w.binding, scratch, gradScratch, out.loss, out.losses, out.lse, dh.binding])
        x.destroy();
      rec.destroy();
    });

    it('fused is deterministic: two runs give bitwise-equal loss and dh', async () => {
      const a = await runCe(p, { ...base, mode: 'fused', lossScale: 8 });
      const b = await runCe(p, { ...base, mode: 'fused', lossScale: 8 });
      expect(b.loss).toBe(a.loss);
      expect(Array.from(b.dh)).toEqual(Array.from(a.dh));
    });
  });
}

describe('cross-entropy chunked f32, default reductions', () => {
  const p = problem({ N: 7, C: 37, V: 1000 }, 11);
  const inv = 1 / countValid(p.targets);

  it('GPU backward agrees with finite differences of the GPU forward (loose)', async () => {
    const opts = { actType: 'f32', chunk: 384, invNormaliser: inv } as const;
    const base = await runCe(p, { ...opts, mode: 'fused' });
    const eps = 1e-2;
    for (const i of [0, 40, 3 * p.dims.C + 5, p.dims.N * p.dims.C - 1]) {
      const hp = Float64Array.from(p.h);
      const hm = Float64Array.from(p.h);
      hp[i] += eps;
      hm[i] -= eps;
      const lp = await runCe({ ...p, h: hp }, { ...opts, mode: 'eval' });
      const lm = await runCe({ ...p, h: hm }, { ...opts, mode: 'eval' });
      const fd = (lp.loss - lm.loss) / (2 * eps);
      expect(Math.abs(fd - base.dh[i])).toBeLessThan(2e-3 * Math.max(1, Math.abs(fd)) + 1e-4);
    }
  });

  it('dispatches per launch are what crossEntropyCost counts; fused computes the logits once', async () => {
    const plan = crossEntropyPlan(gpu, p.dims, 'f32', 384);
    const eval_ = crossEntropyCost(p.dims, plan, 'eval');
    const train = crossEntropyCost(p.dims, plan, 'train');
    const backward = crossEntropyCost(p.dims, plan, 'backward');
    const opts = { actType: 'f32', chunk: 384, invNormaliser: inv } as const;
    expect((await runCe(p, { ...opts, mode: 'eval' })).dispatches).toBe(eval_.dispatches);
    expect((await runCe(p, { ...opts, mode: 'fused' })).dispatches).toBe(train.dispatches);
    expect((await runCe(p, { ...opts, mode: 'unfused' })).dispatches).toBe(
      eval_.dispatches + backward.dispatches,
    );
    expect(train.dispatches).toBe(3 * plan.chunks + 2); // logits, row statistics, G (α its per-row β); dh, loss
    const { N, C, V } = p.dims;
    // The products: forward + backward compute the logits twice (6·N·V·C), the fused pass once (4·N·V·C); the
    // rest is a few FLOPs per logit and per element of dh.
    expect(Math.abs(eval_.flops + backward.flops - 6 * N * V * C)).toBeLessThan(10 * N * V);
    expect(Math.abs(train.flops - 4 * N * V * C)).toBeLessThan(10 * N * (V + C));
  });

  it('Qwen-sized vocabulary V = 151,936 (tiny N, C) within the binding limits, fused', async () => {
    const q = problem({ N: 3, C: 8, V: 151936 }, 21);
    q.targets.set([151935, -100, 77777]);
    expect(crossEntropyPlan(gpu, q.dims, 'f32').chunks).toBeGreaterThan(1);
    const got = await runCe(q, { mode: 'fused', actType: 'f32', invNormaliser: 0.5, lossScale: 2 });
    expectMatchesRef('qwen fused', got, q, 0.5, 2, 1e-5);
  });

  it("Gemma 3's vocabulary V = 262,144 (tiny N, C) within the binding limits, fused and in f16", async () => {
    const g = problem({ N: 3, C: 8, V: 262144 }, 22);
    g.targets.set([262143, 131072, -100]);
    expect(crossEntropyPlan(gpu, g.dims, 'f32').chunks).toBeGreaterThan(1);
    const got = await runCe(g, { mode: 'fused', actType: 'f32', invNormaliser: 0.5, lossScale: 2 });
    expectMatchesRef('gemma3 fused', got, g, 0.5, 2, 1e-5);
    if (skipF16) return;
    const half = await runCe(g, { mode: 'fused', actType: 'f16', invNormaliser: 0.5, lossScale: 2 });
    expectMatchesRef('gemma3 fused f16', half, g, 0.5, 2, 1e-2);
  });

  it('rejects bad input with specific errors before recording anything', () => {
    expect(() => crossEntropyPlan(gpu, p.dims, 'f32', 100)).toThrow(/multiple of 64/);
    expect(() => crossEntropyPlan(gpu, { N: 1, C: 1, V: 0 }, 'f32')).toThrow(/V must be ≥ 1/);
    const plan = crossEntropyPlan(gpu, p.dims, 'f32', 384);
    const scratch = poisoned(gpu, plan.scratchBytes / 4, 'f32');
    const small = poisoned(gpu, 16, 'f32');
    const gradScratch = poisoned(gpu, plan.gradScratchBytes / 4, 'f32');
    const any = { binding: small, dtype: 'f32' as const };
    const out = { loss: small, losses: small, lse: small, dh: any };
    const rec = new CommandRecorder(gpu);
    const train =
      (dims: CrossEntropyDims, o: Partial<Parameters<typeof crossEntropyTrainForward>[6]>) => () =>
        crossEntropyTrainForward(rec, out, any, any, small, dims, {
          invNormaliser: 1,
          chunk: 384,
          scratch,
          gradScratch,
          ...o,
        });
    expect(train(p.dims, { gradScratch: scratch })).toThrow(/different buffer/);
    expect(train(p.dims, { scratch: small })).toThrow(/crossEntropy: scratch has 64 bytes/);
    expect(train(p.dims, { gradScratch: small })).toThrow(/gradScratch has 64 bytes/);
    expect(train({ ...p.dims, C: 0 }, {})).toThrow(/C must be ≥ 1/);
    expect(train(p.dims, { lossScale: Infinity })).toThrow(/lossScale must be finite/);
    expect(train(p.dims, { invNormaliser: 1 / 0 })).toThrow(/invNormaliser must be finite/);
    expect(rec.dispatches).toBe(0);
    rec.destroy();
    for (const b of [scratch, small, gradScratch]) b.destroy();
  });

  it('the preamble enables subgroups only for programs that ask (the tree variant compiles without)', () => {
    expect(wgslPreamble('f32', {}, ['subgroups'])).toBe('enable subgroups;\nalias act = f32;\n');
    expect(wgslPreamble('f32')).not.toContain('subgroups');
  });
});

describe.skipIf(skipF16)('cross-entropy chunked f16', () => {
  // f16-exact inputs, f32 logits and statistics: the loss is as tight as in f32; dh is rounded to its storage.
  const p = problem({ N: 9, C: 33, V: 700 }, 31);
  p.h = roundToF16(p.h);
  p.w = roundToF16(p.w);
  const inv = 1 / countValid(p.targets);
  for (const subgroups of REDUCTIONS) {
    it(`f16 h and W, f32 and f16 dh, unfused and fused (${reductionName(subgroups)}) vs f64 (rel < 1e-2)`, async () => {
      const ref = crossEntropyTrainRef(p.h, p.w, p.targets, p.dims, inv, 1024);
      for (const dhType of ['f32', 'f16'] as const) {
        const opts = {
          actType: 'f16',
          dhType,
          chunk: 256,
          invNormaliser: inv,
          lossScale: 1024,
          subgroups,
        } as const;
        const fused = await runCe(p, { ...opts, mode: 'fused' });
        const unfused = await runCe(p, { ...opts, mode: 'unfused' });
        for (const [label, got] of [
          ['fused', fused],
          ['unfused', unfused],
        ] as const) {
          expect(expectClose(`f16 ${label} loss`, [got.loss], [ref.loss], 1e-2)).toBeLessThan(1e-5);
          expectClose(`f16 ${label} lse`, got.lse, ref.lse, 1e-2);
          expectClose(`f16 ${label} dh (${dhType})`, got.dh, ref.dh, 1e-2);
        }
        expectClose(`f16 fused vs unfused dh (${dhType})`, fused.dh, unfused.dh, 1e-2);
      }
    });
  }
});

describe('cross-entropy from whole logits', () => {
  for (const type of ['f32', 'f16'] as const) {
    for (const subgroups of REDUCTIONS) {
      const name = `${type} logits, ${reductionName(subgroups)}: loss, lse and dlogits vs f64`;
      it.skipIf(type === 'f16' && skipF16)(name, async () => {
        const N = 6;
        const V = 301;
        let logits = randomArray(N * V, 41, 4);
        if (type === 'f16') logits = roundToF16(logits);
        const targets = makeTargets(N, V, 42, 4);
        const inv = 1 / countValid(targets);
        const lBuf = upload(gpu, logits, type);
        const tBuf = upload(gpu, targets, 'i32');
        const scratch = poisoned(gpu, 3 * N, 'f32');
        const out = {
          loss: poisoned(gpu, 1, 'f32'),
          losses: poisoned(gpu, N, 'f32'),
          lse: poisoned(gpu, N, 'f32'),
        };
        const dl = poisoned(gpu, N * V, type);
        const rec = new CommandRecorder(gpu);
        const lRef = { binding: lBuf, dtype: type };
        crossEntropyForwardFromLogits(
          rec,
          out,
          lRef,
          tBuf,
          { N, V },
          { invNormaliser: inv, scratch, subgroups },
        );
        const dlRef = { binding: dl, dtype: type };
        crossEntropyBackwardFromLogits(
          rec,
          dlRef,
          out.lse,
          lRef,
          tBuf,
          { N, V },
          { invNormaliser: inv, lossScale: 4 },
        );
        await rec.submitAndWait();
        const ref = crossEntropyFromLogitsRef(logits, targets, N, V, inv);
        expectClose('logits ce loss', await download(gpu, out.loss, 1, 'f32'), [ref.loss], 1e-5);
        expectClose('logits ce losses', await download(gpu, out.losses, N, 'f32'), ref.losses, 1e-5);
        expectClose('logits ce lse', await download(gpu, out.lse, N, 'f32'), ref.lse, 1e-5);
        const dRef = dlogitsRef(logits, ref.lse, targets, N, V, 4 * inv);
        expectClose('dlogits', await download(gpu, dl, N * V, type), dRef, type === 'f32' ? 1e-5 : 1e-2);
        for (const b of [lBuf, tBuf, scratch, out.loss, out.losses, out.lse, dl]) b.destroy();
        rec.destroy();
      });
    }
  }
});
