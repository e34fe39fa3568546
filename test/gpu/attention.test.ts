// Causal GQA attention vs the f64 reference: forward (out, lse) and backward (dq, dk, dv) in f32 and f16, head
// dims 8 to 256 (multiples of 8, not only powers of two), GQA ratios 1/2/3/7, odd lengths (1, 7, 33, 130, 300)
// that leave partial row and key tiles, the KV-cache inference variant, the fused-qkv layout (one buffer for
// q/k/v and one for dq/dk/dv), fused RoPE (against the rope kernel and the reference), forced tiles and
// reduction variants, determinism, finite differences and argument checks. Every output and the scratch
// start as NaN; padding columns of strided outputs must stay NaN.
import { afterAll, describe, expect, it } from 'vitest';
import {
  CommandRecorder,
  roundToF16,
  type BufferBinding,
  type ScalarType,
  type TensorRef,
  wgslPreamble,
} from '../../src/engine/gpu/index.ts';
import {
  attentionBackward,
  attentionCost,
  attentionDeltaBytes,
  attentionForward,
  attentionLimits,
  attentionSharedBytes,
  attentionTileCandidates,
  attentionTiles,
  MIN_ATTENTION_LIMITS,
  attentionBackwardMode,
  type AttentionBackwardMode,
  type AttentionDims,
  type AttentionKernel,
  type AttentionLayout,
  type AttentionTile,
} from '../../src/engine/kernels/attention.ts';
import { ropeBackward, ropeForward, ropeInvFreq } from '../../src/engine/kernels/rope.ts';
import { attentionBackwardRef, attentionForwardRef, attentionRopeRef } from '../reference/attention.ts';
import { expectClose } from '../reference/compare.ts';
import { randomArray } from '../reference/random.ts';
import { invFreqRef } from '../reference/rope.ts';
import { download, f16SkipReason, poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);
const limits = attentionLimits(gpu);

const dims = (batch: number, seq: number, heads: number, kvHeads: number, headDim: number) => ({
  batch,
  seq,
  heads,
  kvHeads,
  headDim,
});

// Every head dim of the issue (8, 40, 96, 256 and 32/64/128), MHA and GQA 2/3/7, odd lengths, batch > 1.
const cases: [string, AttentionDims][] = [
  ['T=1 H=1 D=32', dims(1, 1, 1, 1, 32)],
  ['B=2 T=7 H=3 Hkv=3 D=8', dims(2, 7, 3, 3, 8)],
  ['B=2 T=33 H=9 Hkv=3 D=64', dims(2, 33, 9, 3, 64)],
  ['T=130 H=7 Hkv=1 D=40', dims(1, 130, 7, 1, 40)],
  ['B=2 T=33 H=4 Hkv=2 D=96', dims(2, 33, 4, 2, 96)],
  ['T=41 H=2 Hkv=2 D=128', dims(1, 41, 2, 2, 128)],
  ['T=33 H=2 Hkv=1 D=256', dims(1, 33, 2, 1, 256)],
  // Many key blocks with small H·D so the file stays fast.
  ['long T=300 H=2 Hkv=1 D=32', dims(1, 300, 2, 1, 32)],
];

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

interface RunOptions {
  backward?: boolean;
  rope?: { theta: number; positionOffset?: number };
  /** q, k, v in one buffer of (H + 2·Hkv)·D rows, likewise dq, dk, dv; out and dout in padded rows. */
  fused?: boolean;
  tile?: AttentionTile;
  tiles?: Partial<Record<'dq' | 'dkdv', AttentionTile>>;
  /** The backward's path; default the size rule's (spill at these sizes). */
  mode?: AttentionBackwardMode;
  /** Sliding window (keys each query sees). */
  window?: number;
  /** Score factor (default 1/√D). */
  scale?: number;
}

interface Outputs {
  out: Float64Array;
  lse: Float64Array;
  dq?: Float64Array;
  dk?: Float64Array;
  dv?: Float64Array;
}

/** Rows of `width` elements copied into rows of `stride` at `offset` (and back). */
function scatter(dst: Float64Array, src: Float64Array, width: number, stride: number, offset: number) {
  for (let r = 0; r < src.length / width; r++)
    dst.set(src.subarray(r * width, (r + 1) * width), r * stride + offset);
}
function gather(src: Float64Array, tokens: number, width: number, stride: number, offset: number) {
  const out = new Float64Array(tokens * width);
  for (let r = 0; r < tokens; r++)
    out.set(src.subarray(r * stride + offset, r * stride + offset + width), r * width);
  return out;
}

/** Where each tensor sits: packed, or the fused layout (widths qw = H·D, kw = Hkv·D). */
function layoutOf(d: AttentionDims, fused: boolean): Required<AttentionLayout> | null {
  if (!fused) return null;
  const [qw, kw] = [d.heads * d.headDim, d.kvHeads * d.headDim];
  const row = qw + 2 * kw;
  return {
    q: { rowStride: row, colOffset: 0 },
    k: { rowStride: row, colOffset: qw },
    v: { rowStride: row, colOffset: qw + kw },
    dq: { rowStride: row, colOffset: 0 },
    dk: { rowStride: row, colOffset: qw },
    dv: { rowStride: row, colOffset: qw + kw },
    out: { rowStride: qw + 8, colOffset: 4 },
    dout: { rowStride: qw + 4, colOffset: 0 },
  };
}

const ref = (binding: BufferBinding, dtype: ScalarType): TensorRef => ({ binding, dtype });

async function run(d: AttentionDims, x: Inputs, dtype: ScalarType, o: RunOptions = {}): Promise<Outputs> {
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = d;
  const tokens = B * T;
  const [qw, kw] = [H * D, Hkv * D];
  const L = layoutOf(d, o.fused ?? false);
  const buffers: GPUBuffer[] = [];
  const keep = (b: GPUBuffer) => (buffers.push(b), b);
  const t = (b: GPUBuffer) => ref(b, dtype);
  let q: TensorRef, k: TensorRef, v: TensorRef, dq: TensorRef, dk: TensorRef, dv: TensorRef;
  let out: TensorRef, dout: TensorRef;
  if (L) {
    const row = qw + 2 * kw;
    const qkv = new Float64Array(tokens * row);
    scatter(qkv, x.q, qw, row, 0);
    scatter(qkv, x.k, kw, row, qw);
    scatter(qkv, x.v, kw, row, qw + kw);
    q = k = v = t(keep(upload(gpu, qkv, dtype)));
    dq = dk = dv = t(keep(poisoned(gpu, tokens * row, dtype)));
    out = t(keep(poisoned(gpu, tokens * (qw + 8), dtype)));
    const padded = new Float64Array(tokens * (qw + 4));
    scatter(padded, x.dout, qw, qw + 4, 0);
    dout = t(keep(upload(gpu, padded, dtype)));
  } else {
    [q, k, v, dout] = [x.q, x.k, x.v, x.dout].map((a) => t(keep(upload(gpu, a, dtype))));
    out = t(keep(poisoned(gpu, x.q.length, dtype)));
    [dq, dk, dv] = [x.q, x.k, x.k].map((a) => t(keep(poisoned(gpu, a.length, dtype))));
  }
  const lse = keep(poisoned(gpu, B * H * T, 'f32'));
  const delta = keep(poisoned(gpu, attentionDeltaBytes(d, o.mode) / 4, 'f32'));
  const rope = o.rope && {
    invFreq: keep(upload(gpu, ropeInvFreq(D, o.rope.theta), 'f32')),
    positionOffset: o.rope.positionOffset,
  };
  const layout = L ?? undefined;
  const rec = new CommandRecorder(gpu);
  const { window, scale } = o;
  attentionForward(rec, out, lse, q, k, v, d, { layout, rope, tile: o.tile, window, scale });
  if (o.backward)
    attentionBackward(rec, dq, dk, dv, delta, dout, out, lse, q, k, v, d, {
      layout,
      rope,
      tiles: o.tiles,
      mode: o.mode,
      window,
      scale,
    });
  await rec.submitAndWait();
  rec.destroy();
  const get = async (r: TensorRef, n: number) => download(gpu, r.binding as GPUBuffer, n, dtype);
  const result: Outputs = { out: new Float64Array(), lse: await download(gpu, lse, B * H * T, 'f32') };
  if (L) {
    const rawOut = await get(out, tokens * (qw + 8));
    result.out = gather(rawOut, tokens, qw, qw + 8, 4);
    // The padding columns of out are never written.
    for (let r = 0; r < tokens; r++) {
      for (const c of [0, 1, 2, 3, qw + 4, qw + 7]) expect(rawOut[r * (qw + 8) + c]).toBeNaN();
    }
    if (o.backward) {
      const raw = await get(dq, tokens * (qw + 2 * kw));
      result.dq = gather(raw, tokens, qw, qw + 2 * kw, 0);
      result.dk = gather(raw, tokens, kw, qw + 2 * kw, qw);
      result.dv = gather(raw, tokens, kw, qw + 2 * kw, qw + kw);
    }
  } else {
    result.out = await get(out, x.q.length);
    if (o.backward) {
      result.dq = await get(dq, x.q.length);
      result.dk = await get(dk, x.k.length);
      result.dv = await get(dv, x.k.length);
    }
  }
  for (const b of buffers) b.destroy();
  return result;
}

const worst: Record<string, number> = {};
function note(label: string, errors: Record<string, number>) {
  for (const [name, e] of Object.entries(errors)) {
    const key = `${label} ${name}`;
    worst[key] = Math.max(worst[key] ?? 0, e);
  }
}

/** Compares every output `got` has against `want`; returns the relative errors by name. */
function compareAll(
  label: string,
  got: Outputs,
  want: Partial<Outputs>,
  tol: number,
): Record<string, number> {
  const errors: Record<string, number> = {};
  for (const name of ['out', 'lse', 'dq', 'dk', 'dv'] as const) {
    const [a, b] = [got[name], want[name]];
    if (a && b) errors[name] = expectClose(`${label} ${name}`, a, b, tol);
  }
  return errors;
}

async function checkAgainstReference(d: AttentionDims, dtype: ScalarType, tol: number, o: RunOptions = {}) {
  const x = inputs(d, 101 + d.headDim, dtype);
  const r = { ...d, window: o.window, scale: o.scale };
  const want = o.rope
    ? attentionRopeRef(o.backward ? x : { ...x, dout: undefined }, r, o.rope.theta, o.rope.positionOffset)
    : {
        ...attentionForwardRef(x.q, x.k, x.v, r),
        ...(o.backward ? attentionBackwardRef(x.dout, x.q, x.k, x.v, r) : {}),
      };
  const got = await run(d, x, dtype, o);
  return compareAll(`attention ${dtype}`, got, want, tol);
}

// Every backward case on both paths: dS spilled to the scratch, and recomputed by the dq kernel.
const modes: AttentionBackwardMode[] = ['spill', 'recompute'];
const modeCases = modes.flatMap((mode) => cases.map(([name, d]) => [`${name} ${mode}`, d, mode] as const));

describe('attention f32 vs the f64 reference (rel < 1e-5)', () => {
  it.each(modeCases)('%s: out, lse, dq, dk, dv', async (_name, d, mode) => {
    note(`f32 ${mode}`, await checkAgainstReference(d, 'f32', 1e-5, { backward: true, mode }));
  });

  it.each([dims(2, 37, 9, 3, 64), dims(1, 61, 4, 2, 96), dims(3, 5, 6, 3, 32)])(
    'both paths agree (B=$batch T=$seq H=$heads Hkv=$kvHeads D=$headDim): dk, dv bitwise, dq rel < 1e-6',
    async (d) => {
      const x = inputs(d, 9, 'f32');
      const spill = await run(d, x, 'f32', { backward: true, mode: 'spill' });
      const again = await run(d, x, 'f32', { backward: true, mode: 'recompute' });
      // dk/dv is the same kernel; dq sums scale·dS·k instead of scale·(dS·k).
      expect(spill.dk).toEqual(again.dk);
      expect(spill.dv).toEqual(again.dv);
      note('f32 spill vs recompute', {
        dq: expectClose('spill vs recompute dq', spill.dq!, again.dq!, 1e-6),
      });
    },
  );

  it('the size rule spills short sequences and recomputes long ones; the scratch grows by B·H·T² floats', () => {
    const short = dims(4, 256, 9, 3, 64);
    const long = dims(4, 2048, 9, 3, 64);
    expect(attentionBackwardMode(short)).toBe('spill');
    expect(attentionBackwardMode(long)).toBe('recompute');
    expect(attentionBackwardMode(short, 2 ** 20)).toBe('recompute'); // a binding too small for it
    expect(attentionDeltaBytes(short, 'spill') - attentionDeltaBytes(short, 'recompute')).toBe(
      4 * 4 * 9 * 256 * 256,
    );
    expect(attentionDeltaBytes(long)).toBe(attentionDeltaBytes(long, 'recompute'));
  });

  it.each(modes)(
    'stays accurate with sharp softmax rows (scores of std ≈ 12, the running max jumps often), %s',
    async (mode) => {
      const d = dims(2, 129, 3, 1, 64);
      const x = inputs(d, 17, 'f32', d.seq, 36);
      const want = {
        ...attentionForwardRef(x.q, x.k, x.v, d),
        ...attentionBackwardRef(x.dout, x.q, x.k, x.v, d),
      };
      const got = await run(d, x, 'f32', { backward: true, mode });
      note(`f32 sharp ${mode}`, compareAll('sharp', got, want, 1e-5));
    },
  );

  it('is deterministic (bitwise) across runs', async () => {
    const d = dims(2, 37, 9, 3, 64);
    const x = inputs(d, 7, 'f32');
    const a = await run(d, x, 'f32', { backward: true });
    const b = await run(d, x, 'f32', { backward: true });
    expect(b).toEqual(a);
  });

  it('GPU backward agrees with finite differences of the GPU forward', async () => {
    const d = dims(1, 9, 3, 1, 32);
    const x = inputs(d, 31, 'f32');
    const grads = await run(d, x, 'f32', { backward: true });
    const loss = async (y: Inputs) => {
      const { out } = await run(d, y, 'f32');
      let sum = 0;
      for (let i = 0; i < out.length; i++) sum += out[i] * x.dout[i];
      return sum;
    };
    const h = 1e-2;
    for (const name of ['q', 'k', 'v'] as const) {
      const g = grads[`d${name}`]!;
      const scale = Math.max(...g.map(Math.abs));
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

describe.skipIf(skipF16)('attention f16 vs the f64 reference (rel < 1e-2)', () => {
  it.each(modeCases)('%s: out, lse, dq, dk, dv', async (_name, d, mode) => {
    note(`f16 ${mode}`, await checkAgainstReference(d, 'f16', 1e-2, { backward: true, mode }));
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

/** Copies (B, L, Hkv, D) rows into a (B, cap, Hkv, D) cache whose rows past L hold NaN. */
function inCache(a: Float64Array, d: AttentionDims, L: number, cap: number): Float64Array {
  const row = d.kvHeads * d.headDim;
  const c = new Float64Array(d.batch * cap * row).fill(NaN);
  for (let b = 0; b < d.batch; b++) c.set(a.subarray(b * L * row, (b + 1) * L * row), b * cap * row);
  return c;
}

async function decode(
  d: AttentionDims,
  x: Inputs,
  L: number,
  cap: number,
  rope?: { theta: number; positionOffset?: number },
  window?: number,
): Promise<Float64Array> {
  const [q, k, v] = [x.q, inCache(x.k, d, L, cap), inCache(x.v, d, L, cap)].map((a) => upload(gpu, a, 'f32'));
  const out = poisoned(gpu, x.q.length, 'f32');
  const invFreq = rope && upload(gpu, ropeInvFreq(d.headDim, rope.theta), 'f32');
  const rec = new CommandRecorder(gpu);
  const t = (b: GPUBuffer) => ref(b, 'f32');
  attentionForward(rec, t(out), null, t(q), t(k), t(v), d, {
    kvLength: L,
    kvCapacity: cap,
    rope: invFreq && { invFreq, positionOffset: rope.positionOffset },
    window,
  });
  await rec.submitAndWait();
  const got = await download(gpu, out, x.q.length, 'f32');
  for (const b of [q, k, v, out, invFreq]) b?.destroy();
  rec.destroy();
  return got;
}

describe('attention KV-cache inference', () => {
  // Queries are the last T of L cached positions; cache rows past L hold NaN and must never be read.
  it.each([
    ['decode T=1 L=37 cap=40 H=6 Hkv=2 D=64', dims(2, 1, 6, 2, 64), 37, 40],
    ['chunked prefill T=3 L=21 cap=64 H=3 Hkv=3 D=32', dims(1, 3, 3, 3, 32), 21, 64],
    ['decode T=1 L=70 cap=71 H=7 Hkv=1 D=96', dims(1, 1, 7, 1, 96), 70, 71],
  ] as const)('%s matches the f64 reference (rel < 1e-5)', async (_name, d, L, cap) => {
    const x = inputs(d, 501, 'f32', L);
    const want = attentionForwardRef(x.q, x.k, x.v, { ...d, kvLength: L });
    note('f32 infer', { out: expectClose('attention decode', await decode(d, x, L, cap), want.out, 1e-5) });
  });

  it('with RoPE: k stored unrotated is rotated by its absolute position (rel < 1e-5)', async () => {
    const d = dims(2, 2, 6, 2, 64);
    const [L, cap, theta, positionOffset] = [29, 33, 10000, 3];
    const x = inputs(d, 511, 'f32', L);
    const want = attentionRopeRef({ q: x.q, k: x.k, v: x.v }, { ...d, kvLength: L }, theta, positionOffset);
    const got = await decode(d, x, L, cap, { theta, positionOffset });
    note('f32 infer rope', { out: expectClose('attention decode rope', got, want.out, 1e-5) });
  });
});

describe('attention in the fused-qkv layout (one q|k|v buffer, one dq|dk|dv buffer, padded out/dout)', () => {
  const d = dims(2, 19, 6, 2, 40);
  it('f32 matches the f64 reference (rel < 1e-5)', async () => {
    note('f32 fused', await checkAgainstReference(d, 'f32', 1e-5, { backward: true, fused: true }));
  });
  it.skipIf(skipF16)('f16 matches the f64 reference (rel < 1e-2)', async () => {
    note('f16 fused', await checkAgainstReference(d, 'f16', 1e-2, { backward: true, fused: true }));
  });
  it('gives the same bits as the packed layout', async () => {
    const x = inputs(d, 77, 'f32');
    const packed = await run(d, x, 'f32', { backward: true });
    expect(await run(d, x, 'f32', { backward: true, fused: true })).toEqual(packed);
  });
});

/** The unfused path the fused RoPE replaces: rope kernels on q and k, attention, rope⁻¹ on dq and dk. */
async function unfusedRope(
  d: AttentionDims,
  x: Inputs,
  theta: number,
  positionOffset: number,
): Promise<Outputs> {
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = d;
  const t = (b: GPUBuffer) => ref(b, 'f32');
  const [q, k, v, dout] = [x.q, x.k, x.v, x.dout].map((a) => upload(gpu, a, 'f32'));
  const [qr, out, dqr, dq] = [0, 1, 2, 3].map(() => poisoned(gpu, x.q.length, 'f32'));
  const [kr, dkr, dk, dv] = [0, 1, 2, 3].map(() => poisoned(gpu, x.k.length, 'f32'));
  const lse = poisoned(gpu, B * H * T, 'f32');
  const delta = poisoned(gpu, attentionDeltaBytes(d) / 4, 'f32');
  const rec = new CommandRecorder(gpu);
  const opts = { theta, positionOffset };
  ropeForward(rec, t(qr), t(q), { B, T, H, D }, opts);
  ropeForward(rec, t(kr), t(k), { B, T, H: Hkv, D }, opts);
  attentionForward(rec, t(out), lse, t(qr), t(kr), t(v), d);
  attentionBackward(rec, t(dqr), t(dkr), t(dv), delta, t(dout), t(out), lse, t(qr), t(kr), t(v), d);
  ropeBackward(rec, t(dq), t(dqr), { B, T, H, D }, opts);
  ropeBackward(rec, t(dk), t(dkr), { B, T, H: Hkv, D }, opts);
  await rec.submitAndWait();
  rec.destroy();
  const result = {
    out: await download(gpu, out, x.q.length, 'f32'),
    lse: await download(gpu, lse, B * H * T, 'f32'),
    dq: await download(gpu, dq, x.q.length, 'f32'),
    dk: await download(gpu, dk, x.k.length, 'f32'),
    dv: await download(gpu, dv, x.k.length, 'f32'),
  };
  for (const b of [q, k, v, dout, qr, out, dqr, dq, kr, dkr, dk, dv, lse, delta]) b.destroy();
  return result;
}

describe('attention with fused RoPE', () => {
  const ropeCases: [string, AttentionDims, number, number][] = [
    ['B=2 T=33 H=9 Hkv=3 D=64 θ=1e4', dims(2, 33, 9, 3, 64), 10000, 0],
    ['T=21 H=2 Hkv=2 D=96 θ=1e6 offset 5', dims(1, 21, 2, 2, 96), 1e6, 5],
  ];

  it('ropeInvFreq (the table the rope kernel uses) is HF float32 inv_freq, bit for bit', () => {
    for (const D of [8, 64, 96, 128, 256]) {
      for (const theta of [10000, 500000, 1e6])
        expect(Array.from(ropeInvFreq(D, theta))).toEqual(Array.from(invFreqRef(D, theta)));
    }
  });

  it.each(ropeCases)(
    '%s: == rope kernel, attention, rope⁻¹ (f32 rel < 1e-5)',
    async (_name, d, theta, offset) => {
      const x = inputs(d, 601, 'f32');
      const want = await unfusedRope(d, x, theta, offset);
      const got = await run(d, x, 'f32', { backward: true, rope: { theta, positionOffset: offset } });
      note('f32 rope vs kernels', compareAll('fused vs unfused rope', got, want, 1e-5));
    },
  );

  it.each(ropeCases)(
    '%s: f32 matches the f64 reference with RoPE (rel < 1e-5)',
    async (_name, d, theta, offset) => {
      note(
        'f32 rope',
        await checkAgainstReference(d, 'f32', 1e-5, {
          backward: true,
          rope: { theta, positionOffset: offset },
        }),
      );
    },
  );

  // f16 at the production shape only: every case × storage type compiles four more pipelines.
  it.skipIf(skipF16).each(ropeCases.slice(0, 1))(
    '%s: f16 matches the f64 reference with RoPE (rel < 1e-2)',
    async (_name, d, theta, offset) => {
      note(
        'f16 rope',
        await checkAgainstReference(d, 'f16', 1e-2, {
          backward: true,
          rope: { theta, positionOffset: offset },
        }),
      );
    },
  );

  it('composes with the fused-qkv layout (f32 rel < 1e-5)', async () => {
    const opts = { backward: true, fused: true, rope: { theta: 10000, positionOffset: 2 } };
    note('f32 rope fused', await checkAgainstReference(ropeCases[0][1], 'f32', 1e-5, opts));
  });
});

describe('attention with a sliding window (query i sees key j iff 0 ≤ i − j < W)', () => {
  // Window 1 (each query sees itself), windows shorter than a tile, tiles whose first rows see none of the
  // first key blocks, GQA 3 and 7, head dims 8 to 256, and a long sequence of many skipped blocks.
  const windowCases: [string, AttentionDims, number][] = [
    ['W=1 B=2 T=7 H=3 Hkv=3 D=8', dims(2, 7, 3, 3, 8), 1],
    ['W=5 T=130 H=7 Hkv=1 D=40', dims(1, 130, 7, 1, 40), 5],
    ['W=13 B=2 T=33 H=9 Hkv=3 D=64', dims(2, 33, 9, 3, 64), 13],
    ['W=20 T=41 H=2 Hkv=2 D=128', dims(1, 41, 2, 2, 128), 20],
    ['W=9 T=33 H=2 Hkv=1 D=256', dims(1, 33, 2, 1, 256), 9],
    ['W=70 T=300 H=2 Hkv=1 D=32', dims(1, 300, 2, 1, 32), 70],
  ];
  const windowModeCases = modes.flatMap((mode) =>
    windowCases.map(([name, d, w]) => [`${name} ${mode}`, d, w, mode] as const),
  );

  it.each(windowModeCases)('f32 %s: out, lse, dq, dk, dv (rel < 1e-5)', async (_name, d, window, mode) => {
    note(`f32 window ${mode}`, await checkAgainstReference(d, 'f32', 1e-5, { backward: true, mode, window }));
  });

  it.skipIf(skipF16).each(windowModeCases)(
    'f16 %s: out, lse, dq, dk, dv (rel < 1e-2)',
    async (_name, d, window, mode) => {
      note(
        `f16 window ${mode}`,
        await checkAgainstReference(d, 'f16', 1e-2, { backward: true, mode, window }),
      );
    },
  );

  it('takes a score scale other than 1/√D (Gemma: query_pre_attn_scalar^−½), both paths (f32 rel < 1e-5)', async () => {
    const d = dims(2, 19, 4, 2, 64);
    for (const mode of modes) {
      const o = { backward: true, mode, window: 5, scale: 1 / Math.sqrt(224) };
      note(`f32 window scale ${mode}`, await checkAgainstReference(d, 'f32', 1e-5, o));
    }
  });

  it('a window at least as long as the sequence is global causal attention, bit for bit', async () => {
    const d = dims(2, 37, 9, 3, 64);
    const x = inputs(d, 23, 'f32');
    const global = await run(d, x, 'f32', { backward: true });
    expect(await run(d, x, 'f32', { backward: true, window: 37 })).toEqual(global);
    expect(await run(d, x, 'f32', { backward: true, window: 10_000 })).toEqual(global);
  });

  it('composes with fused RoPE (position offset 5) and the fused-qkv layout (f32 rel < 1e-5)', async () => {
    const opts = { backward: true, window: 6, rope: { theta: 10000, positionOffset: 5 } };
    note('f32 window rope', await checkAgainstReference(dims(1, 21, 2, 2, 96), 'f32', 1e-5, opts));
    note(
      'f32 window rope fused',
      await checkAgainstReference(dims(2, 19, 6, 2, 40), 'f32', 1e-5, { ...opts, fused: true }),
    );
  }, 600_000);

  /**
   * Tiles of this device that between them take every value of the fields that shape a kernel's loops (rows,
   * score columns per thread, accumulator vec4s, reduction, tile type) and both sides of the questions a window
   * asks of a tile (blocks narrower or wider than the window, idle score threads), so every kind of variant runs.
   */
  function coveringTiles(kernel: AttentionKernel, D: number, dtype: ScalarType, window: number) {
    const all = attentionTileCandidates(kernel, D, limits, dtype === 'f16' ? 'f16' : 'f32');
    const chosen: AttentionTile[] = [];
    const covered = new Set<string>();
    const facts = (t: AttentionTile) => [
      `rows=${t.rows}`,
      `colBlock=${t.colBlock}`,
      `accVecs=${t.accVecs}`,
      `reduce=${t.reduce}`,
      `tileType=${t.tileType}`,
      `wide=${t.cols > window}`,
      `idle=${(t.rows / 4) * t.rowThreads < t.threads}`,
    ];
    for (const t of all) {
      if (facts(t).some((f) => !covered.has(f))) {
        chosen.push(t);
        for (const f of facts(t)) covered.add(f);
      }
    }
    return chosen;
  }

  it.each(['f32', 'f16'] as const)(
    'every kind of %s tile variant is right with a window (rel < 1e-5 f32, 1e-2 f16)',
    async (dtype) => {
      if (dtype === 'f16' && skipF16) return;
      const d = dims(2, 45, 6, 2, 32);
      const window = 11;
      const [fwd, dq, dkdv] = (['forward', 'dq', 'dkdv'] as const).map((k) =>
        coveringTiles(k, 32, dtype, window),
      );
      const n = Math.max(fwd.length, dq.length, dkdv.length);
      const tol = dtype === 'f32' ? 1e-5 : 1e-2;
      for (let i = 0; i < n; i++) {
        const tiles = { dq: dq[i % dq.length], dkdv: dkdv[i % dkdv.length] };
        const mode = modes[i % 2];
        const o = { backward: true, window, mode, tile: fwd[i % fwd.length], tiles };
        note(`${dtype} window tiles`, await checkAgainstReference(d, dtype, tol, o));
      }
    },
    // Each variant compiles its own pipelines: 9 (f32) and 13 (f16) minutes on a loaded software driver.
    1_500_000,
  );

  it.each([
    ['decode T=1 L=70 cap=71 H=7 Hkv=1 D=96 W=16', dims(1, 1, 7, 1, 96), 70, 71, 16],
    ['decode T=1 L=37 cap=40 B=2 H=6 Hkv=2 D=64 W=1', dims(2, 1, 6, 2, 64), 37, 40, 1],
    ['chunked prefill T=3 L=21 cap=64 H=3 Hkv=3 D=32 W=4', dims(1, 3, 3, 3, 32), 21, 64, 4],
  ] as const)(
    'KV-cache %s: a cache longer than the window (rel < 1e-5)',
    async (_name, d, L, cap, window) => {
      const x = inputs(d, 521, 'f32', L);
      const want = attentionForwardRef(x.q, x.k, x.v, { ...d, kvLength: L, window });
      const got = await decode(d, x, L, cap, undefined, window);
      note('f32 window infer', { out: expectClose('attention decode window', got, want.out, 1e-5) });
    },
  );

  it('KV-cache decode with RoPE at a position offset (rel < 1e-5)', async () => {
    const d = dims(2, 2, 6, 2, 64);
    const [L, cap, theta, positionOffset, window] = [29, 33, 10000, 3, 7];
    const x = inputs(d, 531, 'f32', L);
    const rd = { ...d, kvLength: L, window };
    const want = attentionRopeRef({ q: x.q, k: x.k, v: x.v }, rd, theta, positionOffset);
    const got = await decode(d, x, L, cap, { theta, positionOffset }, window);
    note('f32 window infer rope', { out: expectClose('attention decode window rope', got, want.out, 1e-5) });
  });

  it('GPU backward agrees with finite differences of the GPU forward', async () => {
    const d = dims(1, 9, 3, 1, 32);
    const window = 3;
    const x = inputs(d, 37, 'f32');
    const grads = await run(d, x, 'f32', { backward: true, window });
    const loss = async (y: Inputs) => {
      const { out } = await run(d, y, 'f32', { window });
      let sum = 0;
      for (let i = 0; i < out.length; i++) sum += out[i] * x.dout[i];
      return sum;
    };
    const h = 1e-2;
    for (const name of ['q', 'k', 'v'] as const) {
      const g = grads[`d${name}`]!;
      const scale = Math.max(...g.map(Math.abs));
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
  }, 600_000);

  it('the reference sees exactly the last W keys and its backward matches finite differences', () => {
    const d = dims(1, 8, 1, 1, 8);
    const window = 3;
    const x = inputs(d, 5, 'f32');
    const v = new Float64Array(x.v.length);
    for (let s = 0; s < 8; s++) v[s * 8 + s] = 1; // one-hot key code: out[t][s] = weight of key s
    const { out } = attentionForwardRef(x.q, x.k, v, { ...d, window });
    for (let t = 0; t < 8; t++) {
      for (let s = 0; s < 8; s++) {
        const seen = t - s >= 0 && t - s < window;
        if (seen) expect(out[t * 8 + s]).toBeGreaterThan(0);
        else expect(out[t * 8 + s]).toBe(0);
      }
    }
    const r = { ...dims(2, 6, 3, 1, 8), window: 2 };
    const y = inputs(r, 43, 'f32');
    const grads = attentionBackwardRef(y.dout, y.q, y.k, y.v, r);
    const loss = (z: Inputs) => {
      const o = attentionForwardRef(z.q, z.k, z.v, r).out;
      let sum = 0;
      for (let i = 0; i < o.length; i++) sum += o[i] * y.dout[i];
      return sum;
    };
    const h = 1e-5;
    for (const name of ['q', 'k', 'v'] as const) {
      const fd = new Float64Array(y[name].length);
      for (let i = 0; i < fd.length; i++) {
        const z = { ...y, [name]: Float64Array.from(y[name]) };
        z[name][i] += h;
        const up = loss(z);
        z[name][i] -= 2 * h;
        fd[i] = (up - loss(z)) / (2 * h);
      }
      expectClose(`windowed reference d${name} vs finite differences`, grads[`d${name}`], fd, 1e-6);
    }
  });

  it('skips the blocks outside the window: FLOPs follow T·W, not T²/2', () => {
    const d = dims(4, 2048, 9, 3, 64);
    const W = 256;
    // Useful products: q·kᵀ and P·v over each query's min(t + 1, W) keys.
    let pairs = 0;
    for (let t = 0; t < d.seq; t++) pairs += Math.min(t + 1, W);
    const useful = 4 * d.batch * d.heads * d.headDim * pairs;
    for (const which of ['forward', 'backward'] as const) {
      const global = attentionCost(d, which, { limits });
      const windowed = attentionCost(d, which, { limits, window: W });
      expect(windowed.flops).toBeGreaterThan(which === 'forward' ? useful : 2.5 * useful);
      // Edge blocks cost at most one tile of rows and one of columns more per query.
      expect(windowed.flops).toBeLessThan(global.flops / 3);
      expect(windowed.bytes).toBeLessThan(global.bytes);
      expect(attentionCost(d, which, { limits, window: d.seq })).toEqual(global);
    }
    const fwd = attentionCost(d, 'forward', { limits, window: W });
    expect(fwd.flops).toBeLessThan(1.6 * useful);
  });

  it('rejects a window that is not a whole number ≥ 1, recording nothing', () => {
    const buf = upload(gpu, new Float64Array(4096), 'f32');
    const out = upload(gpu, new Float64Array(4096), 'f32');
    const rec = new CommandRecorder(gpu);
    const t = ref(buf, 'f32');
    for (const window of [0, -1, 2.5, NaN]) {
      expect(() =>
        attentionForward(rec, ref(out, 'f32'), null, t, t, t, dims(1, 2, 1, 1, 32), { window }),
      ).toThrow(/window must be a whole number ≥ 1/);
      expect(() => attentionCost(dims(1, 2, 1, 1, 32), 'forward', { window })).toThrow(/window/);
    }
    const d = dims(1, 2, 1, 1, 32);
    expect(() => attentionForward(rec, ref(out, 'f32'), null, t, t, t, d, { scale: 0 })).toThrow(
      /scale must be a finite number > 0/,
    );
    expect(rec.dispatches).toBe(0);
    rec.destroy();
    buf.destroy();
    out.destroy();
  });
});

describe('attention tiles', () => {
  const kernels: AttentionKernel[] = ['forward', 'dq', 'dkdv'];

  it('every candidate tile keeps the thread layouts consistent and fits the workgroup memory', () => {
    for (const D of [8, 16, 40, 64, 80, 96, 128, 200, 256]) {
      for (const storage of [16384, 32768, 49152]) {
        const lim = { storage, invocations: 256, subgroupMinSize: 8, cpu: false };
        for (const [kernel, dtype] of kernels.flatMap(
          (k) =>
            [
              [k, 'f32'],
              [k, 'f16'],
            ] as const,
        )) {
          const all = attentionTileCandidates(kernel, D, lim, dtype);
          expect(all.length, `${kernel} D=${D} ${storage} B`).toBeGreaterThan(0);
          for (const t of all) {
            expect(t.rows % 4).toBe(0);
            expect(t.threads).toBe((t.rows / 4) * (D / 4 / t.accVecs));
            expect(t.threads).toBeLessThanOrEqual(256);
            expect(t.cols).toBe(t.rowThreads * t.colBlock);
            expect((t.rows / 4) * t.rowThreads).toBeLessThanOrEqual(t.threads);
            expect(attentionSharedBytes(kernel, t, D)).toBeLessThanOrEqual(storage);
            if (dtype === 'f32') expect(t.tileType).toBe('f32');
            if (t.reduce === 'subgroup') expect(8 % t.rowThreads).toBe(0);
          }
        }
      }
    }
  });

  it("are sized from this device's maxComputeWorkgroupStorageSize, not a fixed 16 KiB", () => {
    for (const dtype of ['f32', 'f16'] as const) {
      const small = attentionTiles(64, MIN_ATTENTION_LIMITS, Infinity, dtype);
      const here = attentionTiles(64, limits, Infinity, dtype);
      for (const kernel of kernels) {
        expect(attentionSharedBytes(kernel, small[kernel], 64)).toBeLessThanOrEqual(16384);
        const bytes = attentionSharedBytes(kernel, here[kernel], 64);
        expect(bytes).toBeLessThanOrEqual(limits.storage);
        if (limits.storage >= 32768) expect(bytes).toBeGreaterThan(16384);
      }
    }
  });

  it('only the subgroup variant enables subgroups (Program.enables → the preamble)', () => {
    expect(wgslPreamble('f16', { qkv_t: 'f16' }, ['subgroups'])).toBe(
      'enable f16;\nenable subgroups;\nalias act = f16;\nalias qkv_t = f16;\n',
    );
    expect(wgslPreamble('f32', { qkv_t: 'f32' })).not.toContain('subgroups');
  });

  it('a decode step (few query rows) takes a tile of fewer rows', () => {
    expect(attentionTiles(64, limits, 3).forward.rows).toBeLessThan(attentionTiles(64, limits).forward.rows);
  });

  it('keeps f16 rows in f16 tiles on GPUs, on CPU adapters only where larger tiles pay for the conversions', () => {
    const gpuLimits = { ...limits, cpu: false };
    const cpuLimits = { ...limits, cpu: true };
    for (const kernel of kernels)
      expect(attentionTiles(64, gpuLimits, Infinity, 'f16')[kernel].tileType).toBe('f16');
    // The forward's best tile is the same shape in f16 and f32 here: the CPU keeps the one without conversions.
    expect(attentionTiles(64, cpuLimits, Infinity, 'f16').forward.tileType).toBe('f32');
    for (const kernel of kernels)
      expect(attentionTiles(64, gpuLimits, Infinity, 'f32')[kernel].tileType).toBe('f32');
  });

  // The GPU default for f16 data, forced (this CPU adapter takes f32 tiles where they cost the same).
  it.skipIf(skipF16).each([dims(2, 33, 9, 3, 64), dims(1, 33, 2, 1, 256)])(
    'f16 tiles (D=$headDim) match the f64 reference (rel < 1e-2)',
    async (d) => {
      const t = attentionTiles(d.headDim, { ...limits, cpu: false }, Infinity, 'f16');
      expect(t.forward.tileType).toBe('f16');
      note(
        'f16 f16-tiles',
        await checkAgainstReference(d, 'f16', 1e-2, { backward: true, tile: t.forward, tiles: t }),
      );
    },
  );

  it('forced 16 KiB tiles with idle score threads match the reference (f32 rel < 1e-5)', async () => {
    // Fewer score threads than threads (the rest compute a clamped block and store nothing), within the
    // 16 KiB every device has: both paths the default tiles of this device may not take.
    const idle = (kernel: AttentionKernel) =>
      attentionTileCandidates(kernel, 64, MIN_ATTENTION_LIMITS).find(
        (t) => (t.rows / 4) * t.rowThreads < t.threads && t.cols > 4 && t.rows > 4,
      )!;
    const tiles = { dq: idle('dq'), dkdv: idle('dkdv') };
    const d = dims(2, 45, 6, 2, 64);
    note(
      'f32 idle tiles',
      await checkAgainstReference(d, 'f32', 1e-5, { backward: true, tile: idle('forward'), tiles }),
    );
  });

  it.skipIf(limits.subgroupMinSize === 0)(
    'the subgroup row max gives the same bits as the workgroup-memory one',
    async () => {
      const d = dims(2, 45, 6, 2, 64);
      const x = inputs(d, 88, 'f32');
      const tile = attentionTileCandidates('forward', 64, limits).find(
        (t) => t.reduce === 'subgroup' && t.rowThreads > 1,
      )!;
      const viaSubgroup = await run(d, x, 'f32', { tile });
      expect(await run(d, x, 'f32', { tile: { ...tile, reduce: 'shared' } })).toEqual(viaSubgroup);
      const want = attentionForwardRef(x.q, x.k, x.v, d);
      note('f32 subgroup', compareAll('subgroup row max', viaSubgroup, want, 1e-5));
    },
  );
});

describe('attentionCost', () => {
  it('counts whole blocks: one tile of the forward is 4·rows·cols·D flops per (batch, kv head)', () => {
    const t = attentionTiles(64).forward;
    const d = dims(3, Math.min(t.rows, t.cols), 1, 1, 64);
    const { flops, bytes } = attentionCost(d, 'forward', { dtype: 'f32' });
    expect(flops).toBe(3 * 4 * t.rows * t.cols * 64);
    expect(bytes).toBe(3 * (4 * d.seq * 64 * 4 + 4 * d.seq)); // q, k, v read, out written, lse written
  });

  it('includes the masked half of diagonal blocks, the backward recomputation or the dS spill', () => {
    const d = dims(4, 256, 9, 3, 64);
    const useful = (4 * 4 * 9 * 256 * 256 * 64) / 2; // causal q·kᵀ and P·v
    const fwd = attentionCost(d, 'forward', { limits });
    const bwd = attentionCost(d, 'backward', { limits });
    expect(fwd.flops).toBeGreaterThan(useful);
    expect(fwd.flops).toBeLessThan(1.5 * useful);
    const recompute = attentionCost(d, 'backward', { limits, mode: 'recompute' });
    expect(recompute.flops).toBeGreaterThan(3.5 * useful); // 7 block matmuls where the forward has 2
    // Spilling: 5 block matmuls, and dS written (4 bytes per computed pair) and read back.
    expect(bwd.flops).toBeGreaterThan(2.5 * useful);
    expect(bwd.flops).toBeLessThan(0.75 * recompute.flops); // 5/7, and the delta pass
    // The dS traffic (about 4·B·H·T² bytes) outweighs the q, dout, v, lse and delta the light dq kernel skips.
    expect(bwd.bytes).toBeGreaterThan(recompute.bytes);
    expect(attentionCost(d, 'forward', { limits, rope: true }).flops).toBeGreaterThan(fwd.flops);
  });
});

describe('attention argument checks', () => {
  const buf = upload(gpu, new Float64Array(4096), 'f32');
  const buf2 = upload(gpu, new Float64Array(4096), 'f32');
  const t = ref(buf, 'f32');
  const o = ref(buf2, 'f32');
  const rec = new CommandRecorder(gpu);
  it('rejects heads that are not a multiple of kvHeads', () => {
    expect(() => attentionForward(rec, o, null, t, t, t, dims(1, 2, 3, 2, 32))).toThrow(/kvHeads/);
  });
  it('rejects head dims that are not a multiple of 8 up to 256', () => {
    for (const D of [4, 12, 36, 264]) {
      expect(() => attentionForward(rec, o, null, t, t, t, dims(1, 2, 1, 1, D))).toThrow(
        /headDim must be a multiple of 8/,
      );
    }
    expect(() => attentionTiles(260)).toThrow(/headDim/);
  });
  it('rejects mixed storage types and short buffers, naming the argument', () => {
    const h = ref(buf, 'f16');
    expect(() => attentionForward(rec, o, null, h, t, t, dims(1, 2, 1, 1, 32))).toThrow(/q is f16/);
    expect(() => attentionForward(rec, o, null, t, t, t, dims(1, 200, 2, 1, 32))).toThrow(
      /q holds 16384 bytes, needs 51200/,
    );
    const lse = upload(gpu, new Float64Array(3), 'f32');
    expect(() => attentionForward(rec, o, lse, t, t, t, dims(1, 4, 2, 1, 32))).toThrow(/lse holds/);
  });
  it('rejects layouts that are not whole vec4s or whose rows overflow their stride', () => {
    const d = dims(1, 2, 2, 1, 8);
    expect(() => attentionForward(rec, o, null, t, t, t, d, { layout: { k: { rowStride: 10 } } })).toThrow(
      /layout.k.rowStride/,
    );
    expect(() =>
      attentionForward(rec, o, null, t, t, t, d, { layout: { q: { rowStride: 16, colOffset: 4 } } }),
    ).toThrow(/q rows of 16 elements at colOffset 4 do not fit rowStride 16/);
  });
  it('rejects outputs that overlap inputs, and dk/dv sharing columns of one buffer', () => {
    const d = dims(1, 2, 2, 1, 8);
    expect(() => attentionForward(rec, t, null, t, o, o, d)).toThrow(/out overlaps q/);
    const delta = upload(gpu, new Float64Array(attentionDeltaBytes(d) / 4), 'f32');
    const lse = upload(gpu, new Float64Array(4), 'f32');
    const grads = ref(upload(gpu, new Float64Array(64), 'f32'), 'f32');
    const args = [delta, o, o, lse, o, o, o, d] as const;
    expect(() =>
      attentionBackward(rec, grads, grads, grads, ...args, {
        layout: { dk: { rowStride: 16 }, dv: { rowStride: 16 } },
      }),
    ).toThrow(/dk and dv share a buffer/);
    expect(() => attentionBackward(rec, o, grads, grads, ...args)).toThrow(/dq overlaps q/);
  });
  it('rejects a short inv_freq, a bad positionOffset and a tile this device cannot run', () => {
    const d = dims(1, 2, 2, 1, 64);
    const small = upload(gpu, new Float64Array(8), 'f32');
    expect(() => attentionForward(rec, o, null, t, t, t, d, { rope: { invFreq: small } })).toThrow(
      /rope.invFreq holds 32 bytes, needs 128/,
    );
    const rope = { invFreq: buf, positionOffset: -1 };
    expect(() => attentionForward(rec, o, null, t, t, t, d, { rope })).toThrow(/positionOffset/);
    const tile = { ...attentionTiles(64, limits).forward, rows: 12 };
    expect(() => attentionForward(rec, o, null, t, t, t, d, { tile })).toThrow(
      /forward tile .* is not valid/,
    );
  });
  it('leaves nothing recorded when it refuses', () => {
    expect(rec.dispatches).toBe(0);
  });
});

afterAll(() => {
  const lines = Object.entries(worst).map(([k, v]) => `  ${k}: ${v.toExponential(2)}`);
  console.log(`attention worst relative errors:\n${lines.join('\n')}`);
});
