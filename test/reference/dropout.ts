// Reference for dropout: the same counter-based hash as shaders/dropout.wgsl, in u32 arithmetic, so the GPU
// mask can be compared bit for bit.

function lowbias32(v: number): number {
  let h = v >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0;
  return h;
}

export function dropoutMaskRef(n: number, p: number, seed: number, step: number, stream = 0): Uint8Array {
  const threshold = Math.min(Math.round(p * 2 ** 32), 2 ** 32 - 1);
  const key = lowbias32(lowbias32(lowbias32((seed ^ 0x9e3779b9) >>> 0) ^ step) ^ stream);
  const mask = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const h = lowbias32((lowbias32((i ^ key) >>> 0) + key) >>> 0);
    mask[i] = h >= threshold ? 1 : 0;
  }
  return mask;
}

export function dropoutRef(x: ArrayLike<number>, mask: Uint8Array, p: number): Float64Array {
  return Float64Array.from(x, (v, i) => (mask[i] ? v / (1 - p) : 0));
}
