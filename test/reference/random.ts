// Seeded random inputs for tests: mulberry32, reproducible across runs and hosts.

export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n values uniform in [-scale, scale). */
export function randomArray(n: number, seed: number, scale = 1): Float64Array {
  const next = rng(seed);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = (2 * next() - 1) * scale;
  return out;
}
