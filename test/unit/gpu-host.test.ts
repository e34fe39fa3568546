import { describe, expect, it } from 'vitest';
import {
  f16BitsToF32,
  f32ToF16Bits,
  resolvePrecision,
  uniforms,
  wgslPreamble,
} from '../../src/engine/gpu/index.ts';
import { grid1d } from '../../src/engine/gpu/recorder.ts';

describe('precision policy', () => {
  it('auto picks f16 only with shader-f16', () => {
    expect(resolvePrecision('auto', true)).toBe('f16');
    expect(resolvePrecision('auto', false)).toBe('f32');
    expect(resolvePrecision('f32', true)).toBe('f32');
  });
  it('refuses f16 without shader-f16, and unknown values, saying what is allowed', () => {
    expect(() => resolvePrecision('f16', false)).toThrow(/lacks the 'shader-f16' feature/);
    expect(() => resolvePrecision('bf16' as 'f16', true)).toThrow(/'auto', 'f16' or 'f32'/);
  });
  it('injects enable f16 only when an alias needs it', () => {
    expect(wgslPreamble('f32')).toBe('alias act = f32;\n');
    expect(wgslPreamble('f32', { out_t: 'f16' })).toBe('enable f16;\nalias act = f32;\nalias out_t = f16;\n');
    expect(wgslPreamble('f16', { in_t: 'f32' })).toBe('enable f16;\nalias act = f16;\nalias in_t = f32;\n');
  });
});

describe('half conversions', () => {
  it('round to nearest even, with overflow to inf and subnormals', () => {
    expect(f32ToF16Bits(1)).toBe(0x3c00);
    expect(f32ToF16Bits(65504)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // halfway to the next binade rounds up to inf
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(f32ToF16Bits(2 ** -24)).toBe(0x0001);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(Number.isNaN(f16BitsToF32(f32ToF16Bits(NaN)))).toBe(true);
  });
  it('round-trips every finite half exactly', () => {
    for (let bits = 0; bits < 0x10000; bits++) {
      const value = f16BitsToF32(bits);
      if (Number.isNaN(value)) continue;
      expect(f32ToF16Bits(value)).toBe(bits);
    }
  });
});

describe('launch helpers', () => {
  it('grid1d stays within the per-dimension limit and covers every element', () => {
    expect(grid1d(1000, 256)).toEqual([4, 1]);
    const [x, y] = grid1d(256 * 70000, 256, 65535);
    expect(x).toBeLessThanOrEqual(65535);
    expect(x * y * 256).toBeGreaterThanOrEqual(256 * 70000);
  });
  it('uniforms pack 4-byte fields padded to 16 bytes and reject out-of-range integers', () => {
    const u = uniforms().u32(7).f32(0.5).i32(-3);
    expect(u.byteLength).toBe(16);
    const view = new DataView(new ArrayBuffer(16));
    u.writeTo(view, 0);
    expect([view.getUint32(0, true), view.getFloat32(4, true), view.getInt32(8, true)]).toEqual([7, 0.5, -3]);
    expect(() => uniforms().u32(-1)).toThrow(RangeError);
    expect(() => uniforms().u32(1.5)).toThrow(RangeError);
  });
});
