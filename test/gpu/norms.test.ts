import { afterAll, describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type Program, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  rmsnormBackward,
  rmsnormForward,
  type NormOptions,
  type RmsnormOptions,
} from '../../src/engine/kernels/rmsnorm.ts';
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
const hasSubgroups = gpu.features.has('subgroups');
if (!hasSubgroups) console.warn(`adapter has no 'subgroups': only the workgroup-tree reductions are tested`);
/** Both row reductions, each forced: the workgroup tree and (where the device has them) subgroups. */
const REDUCTIONS = hasSubgroups ? [false, true] : [false];
const reductionName = (subgroups: boolean) => (subgroups ? 'subgroups' : 'workgroup tree');

type Kind = 'rmsnorm' | 'layernorm';
const EPS = 1e-5;

// Awkward rows: size 1, shorter than the workgroup (64 threads), not a multiple of it, and the model widths.
// C % 4 == 0 runs the vec4 loads by default (one packet, 65 packets for 64 threads, the model widths), the
// others single elements.
const shapes: [number, number][] = [
  [1, 1],
  [3, 7],
  [2, 12],
  [5, 257],
  [3, 260],
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

async function forwardGpu(
  kind: Kind,
  N: number,
  C: number,
  inp: Inputs,
  dtype: ScalarType,
  variant: RmsnormOptions = {},
) {
  const xBuf = upload(gpu, inp.x, dtype);
  const wBuf = upload(gpu, inp.w, dtype);
  const bBuf = upload(gpu, inp.b, dtype);
  const yBuf = poisoned(gpu, N * C, dtype);
  const meanBuf = poisoned(gpu, N, 'f32');
  const rstdBuf = poisoned(gpu, N, 'f32');
  const rec = new CommandRecorder(gpu);
  const t = (binding: GPUBuffer) => ({ binding, dtype });
  if (kind === 'rmsnorm') rmsnormForward(rec, t(yBuf), rstdBuf, t(xBuf), t(wBuf), { N, C }, EPS, variant);
  else layernormForward(rec, t(yBuf), meanBuf, rstdBuf, t(xBuf), t(wBuf), t(bBuf), { N, C }, EPS, variant);
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
  variant: RmsnormOptions = {},
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
  const options = { ...variant, accumulate };
  if (kind === 'rmsnorm') {
    rmsnormForward(rec, t(yBuf), rstdBuf, t(xBuf), t(wBuf), { N, C }, EPS, variant);
    rmsnormBackward(rec, t(dxBuf), t(dyBuf), t(xBuf), t(wBuf), rstdBuf, { N, C }, options);
  } else {
    layernormForward(rec, t(yBuf), meanBuf, rstdBuf, t(xBuf), t(wBuf), t(bBuf), { N, C }, EPS, variant);
    layernormBackward(rec, t(dxBuf), t(dyBuf), t(xBuf), t(wBuf), meanBuf, rstdBuf, { N, C }, options);
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

const KINDS: Kind[] = ['rmsnorm', 'layernorm'];

describe.each(KINDS)('%s f64 reference', (kind) => {
  it('backward matches central differences of the f64 forward', () => {
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
});

for (const subgroups of REDUCTIONS) {
  const variant = { subgroups };
  describe.each(KINDS)(`%s f32, ${reductionName(subgroups)} reductions`, (kind) => {
    it.each(shapes)('forward N=%i C=%i matches the f64 reference (rel < 1e-5)', async (N, C) => {
      const inp = inputs(N, C, 100 + C, 'f32');
      const got = await forwardGpu(kind, N, C, inp, 'f32', variant);
      const want = refForward(kind, inp, N, C);
      expectClose(`${kind} y`, got.y, want.y, 1e-5);
      expectClose(`${kind} rstd`, got.rstd, want.rstd, 1e-5);
      if (want.mean) expectClose(`${kind} mean`, got.mean, want.mean, 1e-5);
    });

    it.each(backwardShapes)('backward N=%i C=%i matches the f64 reference (rel < 1e-5)', async (N, C) => {
      const inp = inputs(N, C, 200 + C, 'f32');
      const got = await backwardGpu(kind, N, C, inp, 'f32', variant);
      expectClose(`${kind} dx`, got, refBackward(kind, inp, N, C), 1e-5);
    });

    it('single-element loads at model widths (vec4: false) match the f64 reference', async () => {
      for (const [N, C] of [
        [2, 576],
        [3, 260],
      ]) {
        const inp = inputs(N, C, 500 + C, 'f32');
        const scalar = { ...variant, vec4: false };
        expectClose(
          `${kind} y`,
          (await forwardGpu(kind, N, C, inp, 'f32', scalar)).y,
          refForward(kind, inp, N, C).y,
          1e-5,
        );
        const dx = await backwardGpu(kind, N, C, inp, 'f32', scalar);
        expectClose(`${kind} dx`, dx, refBackward(kind, inp, N, C), 1e-5);
      }
    });

    it('backward at C = 1 is exact up to the rounding of its terms', async () => {
      const N = 5;
      const inp = inputs(N, 1, 17, 'f32');
      const got = await backwardGpu(kind, N, 1, inp, 'f32', variant);
      const want = refBackward(kind, inp, N, 1);
      const { rstd } = refForward(kind, inp, N, 1);
      for (let n = 0; n < N; n++) {
        const termScale = rstd[n] * Math.abs(inp.w[0] * inp.dy[n]);
        expect(Math.abs(got[n] - want[n])).toBeLessThan(1e-5 * termScale);
      }
    });

    it.each([
      [4, 300],
      [3, 301],
    ])('backward with accumulate adds into dx (N=%i C=%i)', async (N, C) => {
      const inp = inputs(N, C, 7, 'f32');
      const got = await backwardGpu(kind, N, C, inp, 'f32', variant, true);
      const want = refBackward(kind, inp, N, C).map((v, i) => v + inp.dx0[i]);
      expectClose(`${kind} dx += `, got, want, 1e-5);
    });

    it('GPU backward agrees with finite differences of the GPU forward', async () => {
      const [N, C] = [2, 37];
      const inp = inputs(N, C, 9, 'f32');
      const indices = [0, 5, 36, 40, 73];
      const numeric = await finiteDiffGradAsync(
        async (x) => (await forwardGpu(kind, N, C, { ...inp, x }, 'f32', variant)).y,
        inp.x,
        inp.dy,
        1e-2,
        indices,
      );
      const dx = await backwardGpu(kind, N, C, inp, 'f32', variant);
      expectClose(
        `${kind} GPU dx vs GPU finite differences`,
        indices.map((i) => dx[i]),
        numeric,
        1e-2,
      );
    });
  });

  describe.skipIf(skipF16).each(KINDS)(`%s f16, ${reductionName(subgroups)} reductions`, (kind) => {
    it.each(shapes)('forward N=%i C=%i (rel < 1e-2)', async (N, C) => {
      const inp = inputs(N, C, 300 + C, 'f16');
      const got = await forwardGpu(kind, N, C, inp, 'f16', variant);
      const want = refForward(kind, inp, N, C);
      expectClose(`${kind} f16 y`, got.y, want.y, 1e-2);
      // The statistics are f32 computed from f16-exact inputs.
      expectClose(`${kind} f16 rstd`, got.rstd, want.rstd, 1e-5);
    });

    it.each(backwardShapes)('backward N=%i C=%i (rel < 1e-2)', async (N, C) => {
      const inp = inputs(N, C, 400 + C, 'f16');
      const got = await backwardGpu(kind, N, C, inp, 'f16', variant);
      expectClose(`${kind} f16 dx`, got, refBackward(kind, inp, N, C), 1e-2);
    });

    it('backward with accumulate at a vec4 width (rel < 1e-2)', async () => {
      const [N, C] = [3, 260];
      const inp = inputs(N, C, 11, 'f16');
      const got = await backwardGpu(kind, N, C, inp, 'f16', variant, true);
      const want = refBackward(kind, inp, N, C).map((v, i) => v + inp.dx0[i]);
      expectClose(`${kind} f16 dx += `, got, want, 1e-2);
    });
  });
}

/** The programs a few launches record, in order (a recorder whose dispatch is watched, never submitted). */
function recordedPrograms(record: (rec: CommandRecorder) => void): Program[] {
  const rec = new CommandRecorder(gpu);
  const programs: Program[] = [];
  const dispatch = rec.dispatch.bind(rec);
  rec.dispatch = (program, args) => {
    programs.push(program);
    dispatch(program, args);
  };
  record(rec);
  rec.destroy();
  return programs;
}

describe("rmsnorm with Gemma's (1 + w) weights (weightOffset 1, added in f32)", () => {
  // Gemma stores w around 0 (the scale is 1 + w): weights of both signs, some below −1.
  const gemmaInputs = (N: number, C: number, dtype: ScalarType) => {
    const inp = inputs(N, C, 71, dtype);
    const w = randomArray(C, 72, 1.5);
    return { ...inp, w: dtype === 'f16' ? roundToF16(w) : w };
  };
  const cases = (['f32', 'f16'] as const).flatMap((dtype) =>
    [
      [3, 256],
      [2, 257],
    ].map(([N, C]) => [dtype, N, C] as const),
  );
  it.each(cases)('%s N=%i C=%i: y and dx against the f64 reference of (1 + w)', async (dtype, N, C) => {
    if (dtype === 'f16' && skipF16) return;
    const tol = dtype === 'f32' ? 1e-5 : 1e-2;
    const inp = gemmaInputs(N, C, dtype);
    const onePlusW = inp.w.map((v) => 1 + v);
    const want = rmsnormRef(inp.x, onePlusW, N, C, EPS);
    const got = await forwardGpu('rmsnorm', N, C, inp, dtype, { weightOffset: 1 });
    expectClose(`gemma rmsnorm ${dtype} y`, got.y, want.y, tol);
    const dx = await backwardGpu('rmsnorm', N, C, inp, dtype, { weightOffset: 1 });
    expectClose(`gemma rmsnorm ${dtype} dx`, dx, rmsnormBackwardRef(inp.dy, inp.x, onePlusW, N, C, EPS), tol);
    // The offset is not a no-op: plain w gives another y.
    const plain = rmsnormRef(inp.x, inp.w, N, C, EPS).y;
    expect(Math.max(...plain.map((v, i) => Math.abs(v - want.y[i])))).toBeGreaterThan(0.1);
  });

  it('rejects a weightOffset that is not finite, recording nothing', () => {
    const rec = new CommandRecorder(gpu);
    const b = poisoned(gpu, 8, 'f32');
    const t = { binding: b, dtype: 'f32' as const };
    expect(() => rmsnormForward(rec, t, b, t, t, { N: 1, C: 4 }, EPS, { weightOffset: NaN })).toThrow(
      /weightOffset must be finite/,
    );
    expect(rec.dispatches).toBe(0);
    rec.destroy();
    b.destroy();
  });
});

describe.each(KINDS)('%s versions and launch checks', (kind) => {
  const buffers = Array.from({ length: 6 }, () => poisoned(gpu, 4 * 576, 'f32'));
  afterAll(() => buffers.forEach((b) => b.destroy()));
  const t = (i: number, dtype: ScalarType = 'f32') => ({ binding: buffers[i], dtype });
  const launch = (rec: CommandRecorder, C: number, variant: NormOptions, dtype: ScalarType = 'f32') => {
    const dims = { N: 2, C };
    if (kind === 'rmsnorm') {
      rmsnormForward(rec, t(0, dtype), buffers[1], t(2, dtype), t(3, dtype), dims, EPS, variant);
      rmsnormBackward(rec, t(0, dtype), t(4, dtype), t(2, dtype), t(3, dtype), buffers[1], dims, variant);
    } else {
      layernormForward(
        rec,
        t(0, dtype),
        buffers[1],
        buffers[5],
        t(2, dtype),
        t(3, dtype),
        t(4, dtype),
        dims,
        EPS,
        variant,
      );
      layernormBackward(
        rec,
        t(0, dtype),
        t(4, dtype),
        t(2, dtype),
        t(3, dtype),
        buffers[1],
        buffers[5],
        dims,
        variant,
      );
    }
  };

  it.skipIf(!hasSubgroups)('the subgroup version is other code than the tree, chosen by default here', () => {
    const [tree, sub, auto] = [false, true, undefined].map((subgroups) =>
      recordedPrograms((rec) => launch(rec, 576, { subgroups })),
    );
    for (const [i, program] of sub.entries()) {
      expect(program.enables).toEqual(['subgroups']);
      expect(program.source).toMatch(/subgroupAdd\(/);
      expect(tree[i].enables ?? []).toEqual([]);
      expect(tree[i].source).not.toMatch(/subgroup\w*\(/);
      expect(program.name).toBe(`${kind}_${i === 0 ? 'forward' : 'backward'}.subgroups.vec4`);
      expect(auto[i]).toBe(program);
    }
  });

  it('vec4 loads by default where C % 4 == 0, single elements otherwise or when asked', () => {
    const names = (C: number, variant: NormOptions) =>
      recordedPrograms((rec) => launch(rec, C, variant)).map((p) => p.name);
    expect(names(576, { subgroups: false })).toEqual([`${kind}_forward.vec4`, `${kind}_backward.vec4`]);
    expect(names(577, { subgroups: false })).toEqual([`${kind}_forward`, `${kind}_backward`]);
    expect(names(576, { subgroups: false, vec4: false })).toEqual([`${kind}_forward`, `${kind}_backward`]);
    const [vec4] = recordedPrograms((rec) => launch(rec, 576, { subgroups: false }));
    expect(vec4.source).toMatch(/alias x_v = vec4<x_t>;/);
  });

  it('states the FLOPs and bytes of every launch: each tensor read or written once', () => {
    const rec = new CommandRecorder(gpu);
    const [N, C] = [2, 12];
    launch(rec, C, {}, 'f16');
    expect(rec.counts.costed).toBe(rec.counts.dispatches);
    // f16 x, y (forward), dy, x, dx (backward), w once per launch (+ b in layernorm's forward), f32 statistics.
    const stats = kind === 'rmsnorm' ? 1 : 2;
    const weights = kind === 'rmsnorm' ? 2 : 3;
    expect(rec.counts.bytes).toBe(2 * N * C * 5 + 2 * C * weights + 4 * N * stats * 2);
    expect(rec.counts.flops).toBeGreaterThan(10 * N * C);
    rec.destroy();
  });

  it('rejects bad sizes and impossible versions with errors naming the argument', () => {
    const rec = new CommandRecorder(gpu);
    const call = (C: number, eps: number, variant: NormOptions = {}) =>
      kind === 'rmsnorm'
        ? rmsnormForward(rec, t(0), buffers[1], t(2), t(3), { N: 1, C }, eps, variant)
        : layernormForward(rec, t(0), buffers[1], buffers[5], t(2), t(3), t(4), { N: 1, C }, eps, variant);
    expect(() => call(0, 1e-5)).toThrow(/C must be/);
    expect(() => call(4, -1)).toThrow(/eps must be/);
    expect(() => call(6, 1e-5, { vec4: true })).toThrow(/vec4 needs C to be a multiple of 4, got C = 6/);
    expect(rec.dispatches).toBe(0);
    rec.destroy();
  });
});
