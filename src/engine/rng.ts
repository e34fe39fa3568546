// Seeded, splittable random numbers, shared by the search engine, data shuffling and token sampling. Every
// random decision of the search engine draws from a stream derived from (seed, labels...), e.g. (seed, 'trial',
// 17), never from a shared mutable stream, so a study reloaded from its log makes exactly the draws an
// uninterrupted one would.

function mix32(x: number): number {
  // murmur3 finaliser: a bijection on 32-bit words with full avalanche.
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

function hashLabel(label: number | string): number {
  if (typeof label === 'number') {
    if (!Number.isSafeInteger(label)) throw new Error(`rng label: expected a safe integer, got ${label}`);
    const lo = label >>> 0;
    const hi = Math.floor(label / 4294967296) >>> 0;
    return mix32(lo ^ mix32(hi + 0x9e3779b9));
  }
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193);
  return mix32(h ^ 0x5bd1e995);
}

/** xoshiro128** over a 128-bit state seeded by hashing the labels. */
export class Rng {
  #s0: number;
  #s1: number;
  #s2: number;
  #s3: number;

  constructor(...labels: (number | string)[]) {
    let h = 0x2545f491;
    for (const label of labels) h = mix32(h ^ hashLabel(label)) + 0x6a09e667;
    // splitmix32 expands the 32-bit hash into four non-zero words.
    const next = (): number => {
      h = (h + 0x9e3779b9) | 0;
      return mix32(h) || 1;
    };
    this.#s0 = next();
    this.#s1 = next();
    this.#s2 = next();
    this.#s3 = next();
  }

  /** Uniform 32-bit unsigned integer. */
  uint32(): number {
    const result = Math.imul(rotl(Math.imul(this.#s1, 5), 7), 9) >>> 0;
    const t = this.#s1 << 9;
    this.#s2 ^= this.#s0;
    this.#s3 ^= this.#s1;
    this.#s1 ^= this.#s2;
    this.#s0 ^= this.#s3;
    this.#s2 ^= t;
    this.#s3 = rotl(this.#s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  random(): number {
    const hi = this.uint32() >>> 5; // 27 bits
    const lo = this.uint32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  uniform(low: number, high: number): number {
    return low + (high - low) * this.random();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.min(n - 1, Math.floor(this.random() * n));
  }

  normal(): number {
    // Box–Muller; 1 - u keeps the log argument in (0, 1].
    const u = 1 - this.random();
    const v = this.random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }

  choice<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }

  /** Fisher–Yates, in place. */
  shuffle<T>(items: T[]): T[] {
    for (let i = items.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = items[i];
      items[i] = items[j];
      items[j] = t;
    }
    return items;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
