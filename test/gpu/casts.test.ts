import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, CommandRecorder, f16BitsToF32, f32ToF16Bits } from '../../src/engine/gpu/index.ts';
import { castBf16ToF16, castBf16ToF32, castF16ToF32, castF32ToF16 } from '../../src/engine/kernels/casts.ts';
import { download, f16SkipReason, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
if (skipF16) console.warn(skipF16);

/** Host reference of the saturating bf16 → f16 cast: [f16 bits, overflowed]. */
function bf16ToF16Ref(bits: number): [number, boolean] {
  const v = bf16BitsToF32(bits);
  if (Number.isNaN(v)) return [0, true];
  if (Math.abs(v) > 65504) return [v < 0 ? 0xfbff : 0x7bff, true];
  return [f32ToF16Bits(v), false];
}

/** u16 values packed two per u32 (little-endian), as a bf16 or f16 buffer holds them. */
function pack(halves: Uint16Array): Uint32Array {
  const padded = new Uint16Array(halves.length + (halves.length % 2));
  padded.set(halves);
  return new Uint32Array(padded.buffer);
}

async function halvesOf(buffer: GPUBuffer, n: number): Promise<Uint16Array> {
  const words = Uint32Array.from(await download(gpu, buffer, Math.ceil(n / 2), 'u32'));
  return new Uint16Array(words.buffer).slice(0, n);
}

const every = Uint16Array.from({ length: 65536 }, (_, i) => i);

function classOf(bits: number): string {
  const e = (bits >> 7) & 0xff;
  const m = bits & 0x7f;
  if (e === 0xff) return m ? 'NaN' : 'inf';
  if (e === 0) return m ? 'bf16 subnormal' : 'zero';
  if (e >= 143) return 'overflows f16';
  if (e >= 113) return 'f16 normal';
  return 'f16 subnormal or underflow';
}

describe('bf16 casts (every one of the 65,536 bit patterns)', () => {
  it('bf16 → f32 is bit-exact, NaN payloads included', async () => {
    const src = upload(gpu, pack(every), 'u32');
    const out = upload(gpu, new Uint32Array(65536).fill(0xdeadbeef), 'u32');
    const rec = new CommandRecorder(gpu);
    castBf16ToF32(rec, out, src, 65536);
    await rec.submitAndWait();
    const got = await download(gpu, out, 65536, 'u32');
    const bad: string[] = [];
    for (let i = 0; i < 65536; i++) {
      const want = (i << 16) >>> 0;
      if (got[i] !== want && bad.length < 8) bad.push(`0x${i.toString(16)}: got 0x${got[i].toString(16)}`);
    }
    expect(bad).toEqual([]);
    for (const b of [src, out]) b.destroy();
    rec.destroy();
  });

  it('bf16 → f16 rounds to nearest even, saturates and counts overflow exactly like the host reference', async () => {
    const src = upload(gpu, pack(every), 'u32');
    const out = upload(gpu, new Uint32Array(32768).fill(0xdeadbeef), 'u32');
    const overflow = upload(gpu, [0], 'u32');
    const rec = new CommandRecorder(gpu);
    castBf16ToF16(rec, out, src, 65536, overflow);
    await rec.submitAndWait();
    const got = await halvesOf(out, 65536);
    const mismatches = new Map<string, string[]>();
    const seen = new Map<string, number>();
    let overflows = 0;
    for (let i = 0; i < 65536; i++) {
      const [want, over] = bf16ToF16Ref(i);
      if (over) overflows++;
      const cls = classOf(i);
      seen.set(cls, (seen.get(cls) ?? 0) + 1);
      if (got[i] !== want) {
        const list = mismatches.get(cls) ?? [];
        if (list.length < 4)
          list.push(`0x${i.toString(16)}: got 0x${got[i].toString(16)}, want 0x${want.toString(16)}`);
        mismatches.set(cls, list);
      }
    }
    expect(Object.fromEntries(mismatches)).toEqual({});
    expect(seen.size).toBe(7); // every class exercised
    expect((await download(gpu, overflow, 1, 'u32'))[0]).toBe(overflows);
    // a few hand-checked values
    for (const [b, h] of [
      [0x3f80, 0x3c00], // 1
      [0x477f, 0x7bf8], // 65280, the largest bf16 below 65504
      [0x4780, 0x7bff], // 65536 saturates
      [0xff80, 0xfbff], // −inf saturates
      [0x7fc1, 0x0000], // NaN → 0
      [0x3380, 0x0001], // 2⁻²⁴, the smallest f16 subnormal
      [0x3300, 0x0000], // 2⁻²⁵: a tie, to even (0)
      [0x3340, 0x0001], // 1.5·2⁻²⁵ rounds up
      [0x33c0, 0x0002], // 1.5·2⁻²⁴: a tie, to even (2)
      [0x8000, 0x8000], // −0
    ]) {
      expect(got[b]).toBe(h);
    }
    for (const b of [src, out, overflow]) b.destroy();
    rec.destroy();
  });

  it('odd length at an odd source offset keeps the neighbouring half of the last output word', async () => {
    const halves = Uint16Array.from([
      0x1111, 0x2222, 0x3333, 0x3f80, 0xbfc0, 0x4780, 0x0001, 0x7f80, 0x3c01, 0xc2f7, 0x9999,
    ]);
    const src = upload(gpu, pack(halves), 'u32');
    const out16 = upload(gpu, new Uint32Array(4).fill(0xabcdabcd), 'u32');
    const out32 = upload(gpu, new Uint32Array(8).fill(0xabcdabcd), 'u32');
    const overflow = upload(gpu, [5], 'u32');
    const rec = new CommandRecorder(gpu);
    castBf16ToF16(rec, out16, src, 7, overflow, { srcOffset: 3 });
    castBf16ToF32(rec, out32, src, 7, { srcOffset: 3 });
    await rec.submitAndWait();
    const h = await halvesOf(out16, 8);
    const part = halves.slice(3, 10);
    expect(Array.from(h.slice(0, 7))).toEqual(Array.from(part, (b) => bf16ToF16Ref(b)[0]));
    expect(h[7]).toBe(0xabcd);
    expect((await download(gpu, overflow, 1, 'u32'))[0]).toBe(5 + 2); // 65536 and inf
    const w = await download(gpu, out32, 8, 'u32');
    expect(Array.from(w.slice(0, 7))).toEqual(Array.from(part, (b) => (b << 16) >>> 0));
    expect(w[7]).toBe(0xabcdabcd);
    for (const b of [src, out16, out32, overflow]) b.destroy();
    rec.destroy();
  });

  it('rejects bad sizes with RangeError', () => {
    const rec = new CommandRecorder(gpu);
    const b = upload(gpu, [0], 'u32');
    expect(() => castBf16ToF32(rec, b, b, -1)).toThrow(RangeError);
    expect(() => castBf16ToF16(rec, b, b, 1, b, { srcOffset: 0.5 })).toThrow(RangeError);
    b.destroy();
    rec.destroy();
  });
});

describe.skipIf(skipF16)('f16 ↔ f32 through scaleCast', () => {
  it('f16 → f32 is exact for every f16 bit pattern (NaN stays NaN)', async () => {
    const src = upload(gpu, pack(every), 'u32');
    const out = upload(gpu, new Uint32Array(65536).fill(0xdeadbeef), 'u32');
    const overflow = upload(gpu, [0], 'u32');
    const rec = new CommandRecorder(gpu);
    castF16ToF32(rec, out, src, 65536, overflow);
    await rec.submitAndWait();
    const got = await download(gpu, out, 65536, 'f32');
    const bad: string[] = [];
    for (let i = 0; i < 65536; i++) {
      const want = f16BitsToF32(i);
      const ok = Number.isNaN(want) ? Number.isNaN(got[i]) : Object.is(got[i], want);
      if (!ok && bad.length < 8) bad.push(`0x${i.toString(16)}: got ${got[i]}, want ${want}`);
    }
    expect(bad).toEqual([]);
    expect((await download(gpu, overflow, 1, 'u32'))[0]).toBe(0);
    for (const b of [src, out, overflow]) b.destroy();
    rec.destroy();
  });

  it('f32 → f16 saturates and counts like scaleCast', async () => {
    const values = [1, -2.5, 65504, 70000, -Infinity, NaN, 1e-8, 0.1];
    const src = upload(gpu, values, 'f32');
    const out = upload(gpu, new Uint32Array(4).fill(0xdeadbeef), 'u32');
    const overflow = upload(gpu, [0], 'u32');
    const rec = new CommandRecorder(gpu);
    castF32ToF16(rec, out, src, values.length, overflow);
    await rec.submitAndWait();
    const got = Array.from(await download(gpu, out, values.length, 'f16'));
    expect(got.slice(0, 5)).toEqual([1, -2.5, 65504, 65504, -65504]);
    expect(got[5]).toBe(0);
    expect((await download(gpu, overflow, 1, 'u32'))[0]).toBe(3);
    for (const b of [src, out, overflow]) b.destroy();
    rec.destroy();
  });
});
