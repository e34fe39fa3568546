import { describe, expect, it } from 'vitest';
import { CommandRecorder } from '../../src/engine/gpu/index.ts';
import { CONTROL, GRADNORM_PARTIALS_BYTES, gradNorm } from '../../src/engine/kernels/gradnorm.ts';
import {
  ADAMW_STEP_BYTES,
  adamwUpdate,
  segmentTable,
  sgdUpdate,
  type ParamSegment,
} from '../../src/engine/kernels/optimizer.ts';
import { expectClose } from '../reference/compare.ts';
import { adamwRef, sgdRef, type AdamWRefState } from '../reference/optimizer.ts';
import { randomArray } from '../reference/random.ts';
import { download, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const f = Math.fround;

// Awkward segments: odd lengths, a length-1 and an empty tensor, a frozen one (lrMult 0), one without decay.
const segments: ParamSegment[] = [
  { length: 301, lrMult: f(0.81) },
  { length: 1, lrMult: 2 },
  { length: 0, lrMult: 7 },
  { length: 1024, lrMult: f(0.9), wdMult: 0 },
  { length: 77, lrMult: 0 },
  { length: 1500, lrMult: 1 },
];
const n = segments.reduce((s, x) => s + x.length, 0);
const frozen = [301 + 1 + 1024, 301 + 1 + 1024 + 77] as const;

/** Control words with a given (f32) grad scale and flag. */
function controlWords(gradScale: number, nonFinite: number): Uint32Array {
  const words = new Uint32Array(4);
  new Float32Array(words.buffer)[0] = gradScale;
  words[1] = nonFinite;
  return words;
}

function f32Copy(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(Float32Array.from(x));
}

/** Delta from p0: compares the update itself, which the parameters' magnitude would otherwise hide. */
function delta(p: ArrayLike<number>, p0: ArrayLike<number>): Float64Array {
  return Float64Array.from(p0, (x, i) => p[i] - x);
}

describe('AdamW', () => {
  const hyper = { lr: 0.02, beta1: f(0.9), beta2: f(0.999), eps: f(1e-8), weightDecay: f(0.1) };

  it('5 steps with per-tensor multipliers and varying grad scales vs f64 (rel < 1e-5)', async () => {
    const p0 = f32Copy(randomArray(n, 1, 0.1));
    const pBuf = upload(gpu, p0, 'f32');
    const mBuf = upload(gpu, new Float64Array(n), 'f32');
    const vBuf = upload(gpu, new Float64Array(n), 'f32');
    const step = upload(gpu, new Uint32Array(ADAMW_STEP_BYTES / 4), 'u32');
    const table = upload(gpu, segmentTable(segments), 'u32');
    const ref: AdamWRefState = {
      params: Float64Array.from(p0),
      m: new Float64Array(n),
      v: new Float64Array(n),
      t: 0,
    };
    const scales = [f(1 / 1024), f(0.37 / 1024), f(1 / 512), 1, f(0.01)];
    for (let k = 0; k < scales.length; k++) {
      // Scaled raw gradients; some tiny so eps matters.
      const grads = f32Copy(randomArray(n, 10 + k, k === 3 ? 1e-7 : 1 / scales[k]));
      const gBuf = upload(gpu, grads, 'f32');
      const control = upload(gpu, controlWords(scales[k], 0), 'u32');
      const rec = new CommandRecorder(gpu);
      adamwUpdate(
        rec,
        { params: pBuf, m: mBuf, v: vBuf, step },
        gBuf,
        control,
        { binding: table, count: segments.length },
        n,
        hyper,
      );
      await rec.submitAndWait();
      adamwRef(ref, grads, scales[k], segments, hyper);
      gBuf.destroy();
      control.destroy();
      rec.destroy();
    }
    const p = await download(gpu, pBuf, n, 'f32');
    expectClose('adamw update (p − p0)', delta(p, p0), delta(ref.params, p0), 1e-5);
    expectClose('adamw params', p, ref.params, 1e-5);
    expectClose('adamw m', await download(gpu, mBuf, n, 'f32'), ref.m, 1e-5);
    expectClose('adamw v', await download(gpu, vBuf, n, 'f32'), ref.v, 1e-5);
    const s = await download(gpu, step, 4, 'u32');
    expect(s[0]).toBe(5);
    const bc = new Float32Array(Uint32Array.from([s[1], s[2]]).buffer);
    expectClose('1 − β1ᵗ', [bc[0]], [1 - hyper.beta1 ** 5], 1e-6);
    expectClose('1 − β2ᵗ', [bc[1]], [1 - hyper.beta2 ** 5], 1e-6);
    for (let i = frozen[0]; i < frozen[1]; i++) expect(p[i]).toBe(p0[i]); // lrMult 0: bit-exact unchanged
    for (const b of [pBuf, mBuf, vBuf, step, table]) b.destroy();
  });

  it('bias corrections stay accurate at large step counts (β2 = 0.999, t up to 100000)', async () => {
    const table = upload(gpu, segmentTable([{ length: 1 }]), 'u32');
    for (const t0 of [1, 2, 999, 99_999]) {
      const step = upload(gpu, [t0, 0, 0, 0], 'u32');
      const p = upload(gpu, [0], 'f32');
      const m = upload(gpu, [0], 'f32');
      const v = upload(gpu, [0], 'f32');
      const g = upload(gpu, [1], 'f32');
      const control = upload(gpu, controlWords(1, 0), 'u32');
      const rec = new CommandRecorder(gpu);
      adamwUpdate(rec, { params: p, m, v, step }, g, control, { binding: table, count: 1 }, 1, hyper);
      await rec.submitAndWait();
      const s = await download(gpu, step, 4, 'u32');
      const bc = new Float32Array(Uint32Array.from([s[1], s[2]]).buffer);
      const t = t0 + 1;
      expectClose(`1 − β1^${t}`, [bc[0]], [1 - hyper.beta1 ** t], 1e-6);
      expectClose(`1 − β2^${t}`, [bc[1]], [1 - hyper.beta2 ** t], 1e-6);
      for (const b of [step, p, m, v, g, control]) b.destroy();
      rec.destroy();
    }
    table.destroy();
  });

  it('skips on a non-finite gradient found by gradNorm in the same submit: nothing changes, t not advanced', async () => {
    const p0 = f32Copy(randomArray(n, 2, 0.1));
    const m0 = f32Copy(randomArray(n, 3, 0.01));
    const v0 = f32Copy(randomArray(n, 4, 0.01).map(Math.abs));
    const pBuf = upload(gpu, p0, 'f32');
    const mBuf = upload(gpu, m0, 'f32');
    const vBuf = upload(gpu, v0, 'f32');
    const step = upload(gpu, [3, 0, 0, 0], 'u32');
    const table = upload(gpu, segmentTable(segments), 'u32');
    const bad = f32Copy(randomArray(n, 5));
    bad[1234] = NaN;
    const good = f32Copy(randomArray(n, 6, 1000));
    const gBad = upload(gpu, bad, 'f32');
    const gGood = upload(gpu, good, 'f32');
    const control = upload(gpu, [0, 0, 0, 0], 'u32');
    const partials = upload(gpu, new Float64Array(GRADNORM_PARTIALS_BYTES / 4), 'f32');
    const seg = { binding: table, count: segments.length };
    const state = { params: pBuf, m: mBuf, v: vBuf, step };

    const rec = new CommandRecorder(gpu);
    gradNorm(rec, control, gBad, n, partials, { lossScale: 1024, maxNorm: 1 });
    adamwUpdate(rec, state, gBad, control, seg, n, hyper);
    await rec.submitAndWait();
    expect(Array.from(await download(gpu, pBuf, n, 'f32'))).toEqual(Array.from(p0));
    expect(Array.from(await download(gpu, mBuf, n, 'f32'))).toEqual(Array.from(m0));
    expect(Array.from(await download(gpu, vBuf, n, 'f32'))).toEqual(Array.from(v0));
    expect((await download(gpu, step, 1, 'u32'))[0]).toBe(3);

    // The next, finite step is applied as step 4 with the clip factor computed on the GPU.
    gradNorm(rec, control, gGood, n, partials, { lossScale: 1024, maxNorm: 1 });
    adamwUpdate(rec, state, gGood, control, seg, n, hyper);
    await rec.submitAndWait();
    const ctl = new Float32Array(Float32Array.from(await download(gpu, control, 4, 'f32')));
    const ref: AdamWRefState = {
      params: Float64Array.from(p0),
      m: Float64Array.from(m0),
      v: Float64Array.from(v0),
      t: 3,
    };
    adamwRef(ref, good, ctl[CONTROL.gradScale], segments, hyper);
    expect((await download(gpu, step, 1, 'u32'))[0]).toBe(4);
    expectClose(
      'adamw after skip',
      delta(await download(gpu, pBuf, n, 'f32'), p0),
      delta(ref.params, p0),
      1e-5,
    );
    for (const b of [pBuf, mBuf, vBuf, step, table, gBad, gGood, control, partials]) b.destroy();
    rec.destroy();
  });

  it('rejects bad hyperparameters and segment tables with RangeError', () => {
    const rec = new CommandRecorder(gpu);
    const b = upload(gpu, [0, 0, 0, 0], 'f32');
    const state = { params: b, m: b, v: b, step: b };
    const seg = { binding: b, count: 1 };
    expect(() => adamwUpdate(rec, state, b, b, seg, 1, { lr: 1, beta1: 1 })).toThrow(RangeError);
    expect(() => adamwUpdate(rec, state, b, b, seg, 1, { lr: -1 })).toThrow(RangeError);
    expect(() => adamwUpdate(rec, state, b, b, seg, 1, { lr: 1, eps: 0 })).toThrow(RangeError);
    expect(() => adamwUpdate(rec, state, b, b, { binding: b, count: 0 }, 1, { lr: 1 })).toThrow(RangeError);
    expect(() => sgdUpdate(rec, { params: b }, b, b, seg, 1, { lr: 1, nesterov: true })).toThrow(RangeError);
    expect(() => sgdUpdate(rec, { params: b }, b, b, seg, 1, { lr: 1, momentum: 0.9 })).toThrow(RangeError);
    expect(() => segmentTable([])).toThrow(RangeError);
    expect(() => segmentTable([{ length: 3, lrMult: NaN }])).toThrow(RangeError);
    b.destroy();
    rec.destroy();
  });
});

describe('SGD', () => {
  const cases = [
    [
      'plain with weight decay (no momentum buffer)',
      { lr: 0.05, momentum: 0, nesterov: false, weightDecay: f(0.01) },
    ],
    ['momentum 0.9', { lr: 0.05, momentum: f(0.9), nesterov: false, weightDecay: f(0.01) }],
    ['Nesterov momentum 0.8', { lr: 0.05, momentum: f(0.8), nesterov: true, weightDecay: 0 }],
  ] as const;
  it.each(cases)('%s: 4 steps with per-tensor multipliers vs f64 (rel < 1e-5)', async (_name, hyper) => {
    const p0 = f32Copy(randomArray(n, 21, 0.1));
    const pBuf = upload(gpu, p0, 'f32');
    const momentum = hyper.momentum > 0 ? upload(gpu, new Float64Array(n), 'f32') : undefined;
    const table = upload(gpu, segmentTable(segments), 'u32');
    const ref = { params: Float64Array.from(p0), momentum: new Float64Array(n) };
    for (let k = 0; k < 4; k++) {
      const scale = f(0.5 + 0.25 * k);
      const grads = f32Copy(randomArray(n, 30 + k));
      const gBuf = upload(gpu, grads, 'f32');
      const control = upload(gpu, controlWords(scale, 0), 'u32');
      const rec = new CommandRecorder(gpu);
      sgdUpdate(
        rec,
        { params: pBuf, momentum },
        gBuf,
        control,
        { binding: table, count: segments.length },
        n,
        hyper,
      );
      await rec.submitAndWait();
      sgdRef(ref, grads, scale, segments, hyper);
      gBuf.destroy();
      control.destroy();
      rec.destroy();
    }
    const p = await download(gpu, pBuf, n, 'f32');
    expectClose('sgd update (p − p0)', delta(p, p0), delta(ref.params, p0), 1e-5);
    if (momentum) expectClose('sgd momentum', await download(gpu, momentum, n, 'f32'), ref.momentum, 1e-5);
    for (let i = frozen[0]; i < frozen[1]; i++) expect(p[i]).toBe(p0[i]);
    for (const b of [pBuf, momentum, table]) b?.destroy();
  });

  it('is a no-op when the non-finite flag is set', async () => {
    const p0 = f32Copy(randomArray(n, 41));
    const m0 = f32Copy(randomArray(n, 42));
    const pBuf = upload(gpu, p0, 'f32');
    const mBuf = upload(gpu, m0, 'f32');
    const table = upload(gpu, segmentTable(segments), 'u32');
    const g = upload(gpu, randomArray(n, 43), 'f32');
    const control = upload(gpu, controlWords(1, 1), 'u32');
    const rec = new CommandRecorder(gpu);
    sgdUpdate(
      rec,
      { params: pBuf, momentum: mBuf },
      g,
      control,
      { binding: table, count: segments.length },
      n,
      {
        lr: 0.1,
        momentum: 0.9,
      },
    );
    await rec.submitAndWait();
    expect(Array.from(await download(gpu, pBuf, n, 'f32'))).toEqual(Array.from(p0));
    expect(Array.from(await download(gpu, mBuf, n, 'f32'))).toEqual(Array.from(m0));
    for (const b of [pBuf, mBuf, table, g, control]) b.destroy();
    rec.destroy();
  });
});
