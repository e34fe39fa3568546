// f64 reference for rotary embeddings in HF's rotate_half convention. The angle is formed as HF forms it,
// in float32 (inv_freq and pos · inv_freq rounded to f32); cos and sin of that angle are then exact.

/** HF's float32 inv_freq, computed independently of the kernel module. */
export function invFreqRef(D: number, theta: number): Float64Array {
  const out = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) {
    const p = Math.fround(Math.fround(theta) ** Math.fround((2 * i) / D));
    out[i] = Math.fround(1 / p);
  }
  return out;
}

/**
 * Rotates x (B, T, H, D) (token stride `stride`, default H·D) by sign · angle; returns a dense (B, T, H, D).
 */
export function ropeRef(
  x: ArrayLike<number>,
  dims: { B: number; T: number; H: number; D: number },
  theta: number,
  positionOffset = 0,
  sign = 1,
  stride = dims.H * dims.D,
): Float64Array {
  const { B, T, H, D } = dims;
  const half = D / 2;
  const invFreq = invFreqRef(D, theta);
  const out = new Float64Array(B * T * H * D);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < H; h++) {
        for (let i = 0; i < half; i++) {
          const angle = Math.fround((positionOffset + t) * invFreq[i]);
          const c = Math.cos(angle);
          const s = sign * Math.sin(angle);
          const src = (b * T + t) * stride + h * D + i;
          const dst = ((b * T + t) * H + h) * D + i;
          out[dst] = x[src] * c - x[src + half] * s;
          out[dst + half] = x[src + half] * c + x[src] * s;
        }
      }
    }
  }
  return out;
}

/** Llama 3.x / linear RoPE scaling as rope_scaling describes it (kernels/rope.ts RopeScaling, restated here). */
export type RopeScalingRef =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    };

/**
 * transformers' scaled inv_freq in f64 from HF's f32 default table: 'linear' divides every frequency by the factor;
 * 'llama3' divides those whose wavelength 2π/f exceeds original / low_freq_factor, keeps those under
 * original / high_freq_factor and blends linearly in 1/wavelength between.
 */
export function scaledInvFreqRef(D: number, theta: number, scaling: RopeScalingRef | null): Float64Array {
  const inv = invFreqRef(D, theta);
  if (!scaling) return inv;
  if (scaling.type === 'linear') return inv.map((f) => f / scaling.factor);
  const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositions: old } = scaling;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen < old / high) return f;
    if (wavelen > old / low) return f / factor;
    const smooth = (old / wavelen - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}
