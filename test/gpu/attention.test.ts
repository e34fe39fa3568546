// Causal GQA attention vs the f64 reference: forward (out, lse), backward (dq, dk, dv), f32 and f16, GQA
// ratios 1/3/7, odd lengths, batch > 1, a 512-token case with many key blocks, sharp softmax rows, the
// KV-cache inference variant, determinism, and finite differences (reference and GPU). Outputs and the
// delta scratch start as NaN. Cold lavapipe compiles (~1 s per pipeline) dominate this file's time.
import { afterAll, describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type ScalarType, type TensorRef } from '../../src/engine/gpu/index.ts';
import {
  attentionBackward,
  attentionDeltaBytes,
  attentionForward,
  attentionTiles,
  type AttentionDims,
} from '../../src/engine/kernels/attention.ts';
import { attentionBackwardRef, attentionForwardRef } from '../reference/attention.ts';
import { expectClose } from '../reference/compare.ts';
import { randomArray } from '../reference/random.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);

const dims = (batch: number, seq: number, heads: number, kvHeads: number, headDim: number) => ({
  batch,
  seq,
  heads,
  kvHeads,
  headDim,
});

// GQA ratios 1, 3 and 7; odd lengths (1, 5, 67, 129) that leave partial query and key tiles; batch > 1.
const cases: [string, AttentionDims][] = [
  ['T=1 H=1 D=32', dims(1, 1, 1, 1, 32)],
  ['B=2 T=5 H=3 Hkv=3 D=64', dims(2, 5, 3, 3, 64)],
  ['B=2 T=67 H=9 Hkv=3 D=64', dims(2, 67, 9, 3, 64)],
  ['T=129 H=7 Hkv=1 D=32', dims(1, 129, 7, 1, 32)],
];
// Head dim 128 (larger models) in f32 only: each storage type × head dim compiles 4 more pipelines, and
// cold compiles dominate this file's time on lavapipe.
const d128: [string, AttentionDims] = ['B=2 T=41 H=4 Hkv=2 D=128', dims(2, 41, 4, 2, 128)];
// Many key blocks (16 forward, 32 backward at D = 32) with small H·D so the file stays fast.
const long: [string, AttentionDims] = ['long T=512 H=2 Hkv=1 D=32', dims(1, 512, 2, 1, 32)];

interface Inputs {
  q: Float64Array;
  k: Float64Array;
  v: Float64Array;
  dout: Float64Array;
}

/** q is scaled up so scores have std ≈ 1: softmax rows are far from uniform and the running max moves. */
function inputs(d: AttentionDims, seed: number, dtype: ScalarType, kvLength = d.seq, qScale = 3): Inputs {
  const qn = d.batch * d.seq * d.heads * d.headDim;
  const kn = d.batch * kvLength * d.kvHeads * d.headDim;
  const raw = {
    q: randomArray(qn, seed, qScale),
    k: randomArray(kn, seed + 1),
    v: randomArray(kn, seed + 2),
    dout: randomArray(qn, seed + 3),
  };
  if (dtype === 'f32') return raw;
  return { q: roundToF16(raw.q), k: roundToF16(raw.k), v: roundToF16(raw.v), dout: roundToF16(raw.dout) };
}

const ref = (binding: GPUBuffer, dtype: ScalarType): TensorRef => ({ binding, dtype });

async function gpuForward(d: AttentionDims, x: Inputs, dtype: ScalarType) {
  const qn = x.q.length;
  const q = upload(gpu, x.q, dtype);
  const k = upload(gpu, x.k, dtype);
  const v = upload(gpu, x.v, dtype);
  const out = poisoned(gpu, qn, dtype);
  const lse = poisoned(gpu, d.batch * d.heads * d.seq, 'f32');
  const rec = new CommandRecorder(gpu);
  attentionForward(rec, ref(out, dtype), lse, ref(q, dtype), ref(k, dtype), ref(v, dtype), d);
  await rec.submitAndWait();
  const result = {
    out: await download(gpu, out, qn, dtype),
    lse: await download(gpu, lse, d.batch * d.heads * d.seq, 'f32'),
  };
  for (const b of [q, k, v, out, lse]) b.destroy();
  rec.destroy();
  return result;
}

async function gpuBackward(d: AttentionDims, x: Inputs, dtype: ScalarType) {
  const qn = x.q.length;
  const kn = x.k.length;
  const rows = d.batch * d.heads * d.seq;
  const [q, k, v, dout] = [x.q, x.k, x.v, x.dout].map((a) => upload(gpu, a, dtype));
  const out = poisoned(gpu, qn, dtype);
  const lse = poisoned(gpu, rows, 'f32');
  const delta = poisoned(gpu, attentionDeltaBytes(d) / 4, 'f32');
  const dq = poisoned(gpu, qn, dtype);
  const dk = poisoned(gpu, kn, dtype);
  const dv = poisoned(gpu, kn, dtype);
  const rec = new CommandRecorder(gpu);
  const t = (b: GPUBuffer) => ref(b, dtype);
  attentionForward(rec, t(out), lse, t(q), t(k), t(v), d);
  attentionBackward(rec, t(dq), t(dk), t(dv), delta, t(dout), t(out), lse, t(q), t(k), t(v), d);
  await rec.submitAndWait();
  const result = {
    dq: await download(gpu, dq, qn, dtype),
    dk: await download(gpu, dk, kn, dtype),
    dv: await download(gpu, dv, kn, dtype),
  };
  for (const b of [q, k, v, dout, out, lse, delta, dq, dk, dv]) b.destroy();
  rec.destroy();
  return result;
}

async function checkForward(d: AttentionDims, dtype: ScalarType, tol: number, seed: number) {
  const x = inputs(d, seed, dtype);
  const want = attentionForwardRef(x.q, x.k, x.v, d);
  const got = await gpuForward(d, x, dtype);
  return {
    out: expectClose(`attention out ${dtype}`, got.out, want.out, tol),
    lse: expectClose(`attention lse ${dtype}`, got.lse, want.lse, tol),
  };
}

async function checkBackward(d: AttentionDims, dtype: ScalarType, tol: number, seed: number) {
  const x = inputs(d, seed, dtype);
  const want = attentionBackwardRef(x.dout, x.q, x.k, x.v, d);
  const got = await gpuBackward(d, x, dtype);
  return {
    dq: expectClose(`attention dq ${dtype}`, got.dq, want.dq, tol),
    dk: expectClose(`attention dk ${dtype}`, got.dk, want.dk, tol),
    dv: expectClose(`attention dv ${dtype}`, got.dv, want.dv, tol),
  };
}

const worst: Record<string, number> = {};
function note(label: string, errors: Record<string, number>) {
  for (const [name, e] of Object.entries(errors)) {
    const key = `${label} ${name}`;
    worst[key] = Math.max(worst[key] ?? 0, e);
  }
}

describe('attention forward f32', () => {
  it.each([...cases, d128, long])('%s matches the f64 reference (rel < 1e-5)', async (_name, d) => {
    note('f32 fwd', await checkForward(d, 'f32', 1e-5, 101));
  });
});

describe('attention backward f32', () => {
  it.each([...cases, d128, long])('%s: dq, dk, dv match the f64 reference (rel < 1e-5)', async (_name, d) => {
    note('f32 bwd', await checkBackward(d, 'f32', 1e-5, 201));
  });

  it('stays accurate with sharp softmax rows (scores of std ≈ 12, the running max jumps often)', async () => {
    const d = dims(2, 129, 3, 1, 64);
    const x = inputs(d, 17, 'f32', d.seq, 36);
    const fwd = attentionForwardRef(x.q, x.k, x.v, d);
    const bwd = attentionBackwardRef(x.dout, x.q, x.k, x.v, d);
    const out = await gpuForward(d, x, 'f32');
    const grads = await gpuBackward(d, x, 'f32');
    note('f32 sharp', {
      out: expectClose('sharp out', out.out, fwd.out, 1e-5),
      lse: expectClose('sharp lse', out.lse, fwd.lse, 1e-5),
      dq: expectClose('sharp dq', grads.dq, bwd.dq, 1e-5),
      dk: expectClose('sharp dk', grads.dk, bwd.dk, 1e-5),
      dv: expectClose('sharp dv', grads.dv, bwd.dv, 1e-5),
    });
  });

  it('is deterministic (bitwise) across runs', async () => {
    const d = dims(2, 37, 9, 3, 64);
    const x = inputs(d, 7, 'f32');
    const a = await gpuBackward(d, x, 'f32');
    const b = await gpuBackward(d, x, 'f32');
    expect(a.dk).toEqual(b.dk);
    expect(a.dv).toEqual(b.dv);
    expect(a.dq).toEqual(b.dq);
  });

  it('GPU backward agrees with finite differences of the GPU forward', async () => {
    const d = dims(1, 9, 3, 1, 32);
    const x = inputs(d, 31, 'f32');
    const grads = await gpuBackward(d, x, 'f32');
    const loss = async (y: Inputs) => {
      const { out } = await gpuForward(d, y, 'f32');
      let sum = 0;
      for (let i = 0; i < out.length; i++) sum += out[i] * x.dout[i];
      return sum;
    };
    const h = 1e-2;
    for (const name of ['q', 'k', 'v'] as const) {
      const g = grads[`d${name}`];
      let scale = 0;
      for (const value of g) scale = Math.max(scale, Math.abs(value));
      for (const i of [0, 97, x[name].length - 1]) {
        const plus = { ...x, [name]: Float64Array.from(x[name]) };
        const minus = { ...x, [name]: Float64Array.from(x[name]) };
        plus[name][i] += h;
        minus[name][i] -= h;
        const fd = ((await loss(plus)) - (await loss(minus))) / (2 * h);
        expect(Math.abs(fd - g[i]), `d${name}[${i}]: fd ${fd}, gpu ${g[i]}`).toBeLessThan(
          2e-3 * scale + 1e-4,
        );
      }
    }
  });
});

describe('attention f64 reference', () => {
  it('backward matches central finite differences of the forward (rel < 1e-6)', () => {
    const d = dims(2, 4, 3, 1, 8);
    const x = inputs(d, 41, 'f32');
    const grads = attentionBackwardRef(x.dout, x.q, x.k, x.v, d);
    const loss = (y: Inputs) => {
      const { out } = attentionForwardRef(y.q, y.k, y.v, d);
      let sum = 0;
      for (let i = 0; i < out.length; i++) sum += out[i] * x.dout[i];
      return sum;
    };
    const h = 1e-5;
    for (const name of ['q', 'k', 'v'] as const) {
      const fd = new Float64Array(x[name].length);
      for (let i = 0; i < fd.length; i++) {
        const y = { ...x, [name]: Float64Array.from(x[name]) };
        y[name][i] += h;
        const up = loss(y);
        y[name][i] -= 2 * h;
        fd[i] = (up - loss(y)) / (2 * h);
      }
      expectClose(`reference d${name} vs finite differences`, grads[`d${name}`], fd, 1e-6);
    }
  });

  it('forward softmax rows sum to one and respect the causal mask', () => {
    // v = one-hot position code: out[t] must put all its weight on keys ≤ t.
    const d = dims(1, 6, 1, 1, 8);
    const x = inputs(d, 5, 'f32');
    const v = new Float64Array(x.v.length);
    for (let s = 0; s < 6; s++) v[s * 8 + s] = 1;
    const { out } = attentionForwardRef(x.q, x.k, v, d);
    for (let t = 0; t < 6; t++) {
      let sum = 0;
      for (let s = 0; s < 8; s++) {
        if (s > t) expect(out[t * 8 + s]).toBe(0);
        sum += out[t * 8 + s];
      }
      expect(sum).toBeCloseTo(1, 12);
    }
  });
});

describe.skipIf(skipF16)('attention f16', () => {
  it.each([...cases, long])('%s forward (rel < 1e-2)', async (_name, d) => {
    note('f16 fwd', await checkForward(d, 'f16', 1e-2, 301));
  });
  it.each([...cases, long])('%s backward (rel < 1e-2)', async (_name, d) => {
    note('f16 bwd', await checkBackward(d, 'f16', 1e-2, 401));
  });
});

describe('attention KV-cache inference', () => {
  // Queries are the last T of L cached positions; cache rows past L hold NaN and must never be read.
  it.each([
    ['decode T=1 L=37 cap=40 H=6 Hkv=2 D=64', dims(2, 1, 6, 2, 64), 37, 40],
    ['chunked prefill T=3 L=21 cap=64 H=3 Hkv=3 D=32', dims(1, 3, 3, 3, 32), 21, 64],
  ] as const)('%s matches the f64 reference (rel < 1e-5)', async (_name, d, L, cap) => {
    const x = inputs(d, 501, 'f32', L);
    const want = attentionForwardRef(x.q, x.k, x.v, { ...d, kvLength: L });
    const row = d.kvHeads * d.headDim;
    const inCache = (a: Float64Array) => {
      const c = new Float64Array(d.batch * cap * row).fill(NaN);
      for (let b = 0; b < d.batch; b++) c.set(a.subarray(b * L * row, (b + 1) * L * row), b * cap * row);
      return c;
    };
    const q = upload(gpu, x.q, 'f32');
    const k = upload(gpu, inCache(x.k), 'f32');
    const v = upload(gpu, inCache(x.v), 'f32');
    const out = poisoned(gpu, x.q.length, 'f32');
    const rec = new CommandRecorder(gpu);
    const t = (b: GPUBuffer) => ref(b, 'f32');
    attentionForward(rec, t(out), null, t(q), t(k), t(v), d, { kvLength: L, kvCapacity: cap });
    await rec.submitAndWait();
    const got = await download(gpu, out, x.q.length, 'f32');
    for (const b of [q, k, v, out]) b.destroy();
    rec.destroy();
    note('f32 infer', { out: expectClose('attention decode', got, want.out, 1e-5) });
  });
});

describe('attention argument checks', () => {
  const buf = upload(gpu, new Float64Array(4096), 'f32');
  const t = ref(buf, 'f32');
  const rec = new CommandRecorder(gpu);
  it('rejects heads that are not a multiple of kvHeads', () => {
    expect(() => attentionForward(rec, t, buf, t, t, t, dims(1, 2, 3, 2, 32))).toThrow(/kvHeads/);
  });
  it('rejects unsupported head dims', () => {
    expect(() => attentionForward(rec, t, buf, t, t, t, dims(1, 2, 1, 1, 48))).toThrow(RangeError);
    expect(() => attentionTiles(16)).toThrow(/headDim/);
    expect(() => attentionTiles(256)).toThrow(/headDim/);
  });
  it('rejects mixed storage types and short buffers, naming the argument', () => {
    const h = ref(buf, 'f16');
    expect(() => attentionForward(rec, t, buf, h, t, t, dims(1, 2, 1, 1, 32))).toThrow(/q is f16/);
    expect(() => attentionForward(rec, t, buf, t, t, t, dims(1, 200, 2, 1, 32))).toThrow(/q holds/);
  });
  it('keeps every tile within 16 KiB of workgroup memory', () => {
    for (const d of [32, 64, 128]) {
      const tiles = attentionTiles(d);
      expect(tiles.forward.BQ * d).toBe(1024);
      expect(tiles.dkdv.BKV * d).toBe(1024);
      expect(tiles.dq.BKV).toBeGreaterThan(0);
    }
  });
});

afterAll(() => {
  const lines = Object.entries(worst).map(([k, v]) => `  ${k}: ${v.toExponential(2)}`);
  console.log(`attention worst relative errors:\n${lines.join('\n')}`);
});
