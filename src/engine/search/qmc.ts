// Scrambled Sobol points: Joe–Kuo direction numbers (new-joe-kuo-6.21201, 40 dimensions), randomised by
// Matoušek's linear matrix scramble plus a random digital shift (as SciPy's `Sobol(scramble=True)`).
import { Rng } from '../rng.ts';

// Per dimension 2..40: s (degree of the primitive polynomial), a (its inner coefficients), m_1..m_s.
const JOE_KUO: readonly (readonly number[])[] = [
  [1, 0, 1],
  [2, 1, 1, 3],
  [3, 1, 1, 3, 1],
  [3, 2, 1, 1, 1],
  [4, 1, 1, 1, 3, 3],
  [4, 4, 1, 3, 5, 13],
  [5, 2, 1, 1, 5, 5, 17],
  [5, 4, 1, 1, 5, 5, 5],
  [5, 7, 1, 1, 7, 11, 19],
  [5, 11, 1, 1, 5, 1, 1],
  [5, 13, 1, 1, 1, 3, 11],
  [5, 14, 1, 3, 5, 5, 31],
  [6, 1, 1, 3, 3, 9, 7, 49],
  [6, 13, 1, 1, 1, 15, 21, 21],
  [6, 16, 1, 3, 1, 13, 27, 49],
  [6, 19, 1, 1, 1, 15, 7, 5],
  [6, 22, 1, 3, 1, 15, 13, 25],
  [6, 25, 1, 1, 5, 5, 19, 61],
  [7, 1, 1, 3, 7, 11, 23, 15, 103],
  [7, 4, 1, 3, 7, 13, 13, 15, 69],
  [7, 7, 1, 1, 3, 13, 7, 35, 63],
  [7, 8, 1, 3, 5, 9, 1, 25, 53],
  [7, 14, 1, 3, 1, 13, 9, 35, 107],
  [7, 19, 1, 3, 1, 5, 27, 61, 31],
  [7, 21, 1, 1, 5, 11, 19, 41, 61],
  [7, 28, 1, 3, 5, 3, 3, 13, 69],
  [7, 31, 1, 1, 7, 13, 1, 19, 1],
  [7, 32, 1, 3, 7, 5, 13, 19, 59],
  [7, 37, 1, 1, 3, 9, 25, 29, 41],
  [7, 41, 1, 3, 5, 13, 23, 1, 55],
  [7, 42, 1, 3, 7, 3, 13, 59, 17],
  [7, 50, 1, 3, 1, 3, 5, 53, 69],
  [7, 55, 1, 1, 5, 5, 23, 33, 13],
  [7, 56, 1, 1, 7, 7, 1, 61, 123],
  [7, 59, 1, 1, 7, 9, 13, 61, 49],
  [7, 62, 1, 3, 3, 5, 3, 55, 33],
  [8, 14, 1, 3, 1, 15, 31, 13, 49, 245],
  [8, 21, 1, 3, 5, 15, 31, 59, 63, 97],
  [8, 22, 1, 3, 1, 11, 11, 11, 77, 249],
];

export const SOBOL_MAX_DIMS = JOE_KUO.length + 1;
const BITS = 32;

/** Unscrambled direction numbers V_k (k = 0..31) of one dimension, MSB-first binary fractions. */
export function directionNumbers(dim: number): Uint32Array {
  const v = new Uint32Array(BITS);
  if (dim === 0) {
    for (let k = 0; k < BITS; k++) v[k] = (1 << (BITS - 1 - k)) >>> 0;
    return v;
  }
  const row = JOE_KUO[dim - 1];
  const s = row[0];
  const a = row[1];
  for (let k = 0; k < s; k++) v[k] = (row[2 + k] << (BITS - 1 - k)) >>> 0;
  for (let k = s; k < BITS; k++) {
    let x = v[k - s] ^ (v[k - s] >>> s);
    for (let j = 1; j < s; j++) if ((a >>> (s - 1 - j)) & 1) x ^= v[k - j];
    v[k] = x >>> 0;
  }
  return v;
}

function parity(x: number): number {
  x ^= x >>> 16;
  x ^= x >>> 8;
  x ^= x >>> 4;
  x ^= x >>> 2;
  x ^= x >>> 1;
  return x & 1;
}

/** A scrambled Sobol sequence in `dims` dimensions; `point(i)` is a pure function of (seed, dims, i). */
export class SobolSequence {
  readonly dims: number;
  #v: Uint32Array[];
  #shift: Uint32Array;

  constructor(dims: number, seed: number | null) {
    if (!Number.isInteger(dims) || dims < 1 || dims > SOBOL_MAX_DIMS)
      throw new Error(`SobolSequence: dims must be an integer in [1, ${SOBOL_MAX_DIMS}] (got ${dims})`);
    this.dims = dims;
    this.#shift = new Uint32Array(dims);
    this.#v = [];
    const rng = seed === null ? null : new Rng(seed, 'sobol-scramble', dims);
    for (let d = 0; d < dims; d++) {
      const v = directionNumbers(d);
      if (rng) {
        // Lower-triangular L with unit diagonal: output digit r mixes input digits 0..r.
        const rows = new Uint32Array(BITS);
        for (let r = 0; r < BITS; r++) {
          const above = r === 0 ? 0 : (0xffffffff << (BITS - r)) >>> 0;
          rows[r] = ((rng.uint32() & above) | (1 << (BITS - 1 - r))) >>> 0;
        }
        for (let k = 0; k < BITS; k++) {
          let x = 0;
          for (let r = 0; r < BITS; r++) if (parity(rows[r] & v[k])) x |= 1 << (BITS - 1 - r);
          v[k] = x >>> 0;
        }
        this.#shift[d] = rng.uint32();
      }
      this.#v.push(v);
    }
  }

  /** The i-th point in [0, 1)^dims. */
  point(i: number): Float64Array {
    const out = new Float64Array(this.dims);
    for (let d = 0; d < this.dims; d++) {
      const v = this.#v[d];
      let x = this.#shift[d];
      let n = i;
      for (let k = 0; n > 0; k++, n = Math.floor(n / 2)) if (n % 2 === 1) x ^= v[k];
      out[d] = (x >>> 0) / 4294967296;
    }
    return out;
  }
}

const cache = new Map<string, SobolSequence>();

/** Memoised sequence (construction costs ~30k bit operations per dimension). */
export function sobolSequence(dims: number, seed: number | null): SobolSequence {
  const key = `${dims}:${seed}`;
  let seq = cache.get(key);
  if (!seq) {
    if (cache.size > 64) cache.clear();
    seq = new SobolSequence(dims, seed);
    cache.set(key, seq);
  }
  return seq;
}
