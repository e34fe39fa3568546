// The host-side inv_freq tables of RoPE scaling (attention reads them as `rope.invFreq`) against an f64 reference
// of transformers' modeling_rope_utils, with the real configs' numbers.
import { describe, expect, it } from 'vitest';
import { ropeInvFreq, type RopeScaling } from '../../../src/engine/kernels/rope.ts';
import { invFreqRef, scaledInvFreqRef } from '../../reference/rope.ts';

// Llama-3.2-1B/3B's config.json: rope_theta 500000, head_dim 64 (1B) / 128 (3B).
const LLAMA32: RopeScaling = {
  type: 'llama3',
  factor: 32,
  lowFreqFactor: 1,
  highFreqFactor: 4,
  originalMaxPositions: 8192,
};

function maxRelError(got: Float32Array, want: Float64Array): number {
  let worst = 0;
  want.forEach((w, i) => (worst = Math.max(worst, Math.abs(got[i] - w) / Math.abs(w))));
  return worst;
}

describe('ropeInvFreq with rope_scaling', () => {
  it.each([
    ['Llama-3.2-1B (D 64, θ 5e5, llama3 ×32)', 64, 5e5, LLAMA32],
    ['Llama-3.2-3B (D 128, θ 5e5, llama3 ×32)', 128, 5e5, LLAMA32],
    ['Llama-3.1-8B (D 128, θ 5e5, llama3 ×8)', 128, 5e5, { ...LLAMA32, factor: 8 }],
    [
      'a tiny model (D 32, θ 1e4, llama3 ×4 of 64 positions)',
      32,
      1e4,
      { ...LLAMA32, factor: 4, originalMaxPositions: 64 },
    ],
    ['linear ×8 (D 256, θ 1e6)', 256, 1e6, { type: 'linear', factor: 8 }],
    ['linear ×3 (D 64, θ 1e4)', 64, 1e4, { type: 'linear', factor: 3 }],
  ] as [string, number, number, RopeScaling][])(
    '%s matches the f64 reference (rel < 1e-6)',
    (_, D, theta, s) => {
      const got = ropeInvFreq(D, theta, s);
      const error = maxRelError(got, scaledInvFreqRef(D, theta, s));
      expect(error, `max rel error ${error}`).toBeLessThan(1e-6);
    },
  );

  it('llama3 keeps the high frequencies, divides the low ones by the factor and blends the band between', () => {
    const D = 128;
    const base = invFreqRef(D, 5e5);
    const got = ropeInvFreq(D, 5e5, LLAMA32);
    const bands = { kept: 0, divided: 0, blended: 0 };
    base.forEach((f, i) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < 8192 / 4) {
        expect(got[i]).toBe(f); // bit for bit: untouched
        bands.kept++;
      } else if (wavelen > 8192) {
        expect(got[i]).toBe(Math.fround(f / 32));
        bands.divided++;
      } else {
        expect(got[i]).toBeLessThan(f);
        expect(got[i]).toBeGreaterThan(f / 32);
        bands.blended++;
      }
    });
    // Every band is exercised by the real config (so the test cannot pass with one branch wrong).
    expect(bands.kept).toBeGreaterThan(0);
    expect(bands.divided).toBeGreaterThan(0);
    expect(bands.blended).toBeGreaterThan(0);
    // Monotone: frequencies still decrease with the dimension index.
    for (let i = 1; i < got.length; i++) expect(got[i]).toBeLessThan(got[i - 1]);
  });

  it('without scaling the table is the default one', () => {
    expect(Array.from(ropeInvFreq(64, 1e4, null))).toEqual(Array.from(invFreqRef(64, 1e4)));
  });
});
