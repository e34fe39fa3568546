// Rotary position embedding (Llama, Qwen2, SmolLM2), Hugging Face's rotate_half convention, on q or k laid
// out (B, T, H, D). Forward rotates pairs (i, i + D/2) by pos · inv_freq[i]; backward rotates by the negative
// angle (the transpose of an orthogonal map). cos/sin are computed in the kernel; only inv_freq (D/2 floats)
// comes from the host, inside the uniforms, so nothing needs allocating or caching per model.

import { grid1d, uniforms, type CommandRecorder, type TensorRef, type BufferBinding } from '../gpu/index.ts';
import ropeWgsl from '../../../shaders/rope.wgsl?raw';
import ropeAngleWgsl from '../../../shaders/rope-angle.wgsl?raw';

const WG = 256;
/** Largest head dim the uniform table holds (Gemma's 256). */
export const ROPE_MAX_HEAD_DIM = 256;

export interface RopeDims {
  B: number;
  T: number;
  /** Heads in this tensor (query heads for q, key-value heads for k). */
  H: number;
  /** Head dim, even. */
  D: number;
}

export interface RopeOptions {
  /** rope_theta: 10000 (SmolLM2, TinyLlama), 1000000 (Qwen2.5). */
  theta: number;
  /** Position of t = 0: 0 for training and prefill, the cache length when decoding. Default 0. */
  positionOffset?: number;
  /** Elements between consecutive tokens of the input (default H·D; larger for a slice of a fused qkv row). */
  inStride?: number;
  /** Elements between consecutive tokens of the output (default H·D); ignored in place. */
  outStride?: number;
}

/**
 * A config's rope_scaling (or transformers 5's rope_parameters) as the inv_freq table needs it: the types the
 * supported checkpoints use. Llama 3.1/3.2's 'llama3' divides the low frequencies by `factor`, keeps the high
 * ones and blends between; 'linear' divides them all (position interpolation).
 */
export type RopeScaling =
  | { type: 'linear'; factor: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      /** The context the model was pre-trained on before the extension (8192 for Llama 3.x). */
      originalMaxPositions: number;
    };

/**
 * inv_freq (D/2) exactly as HF computes it in float32 (transformers' modeling_rope_utils):
 * `1.0 / (theta ** (torch.arange(0, D, 2).float() / D))`, every step rounded to f32, then scaled.
 */
export function ropeInvFreq(D: number, theta: number, scaling: RopeScaling | null = null): Float32Array {
  const out = new Float32Array(D / 2);
  const base = Math.fround(theta);
  for (let i = 0; i < D / 2; i++) {
    const exponent = Math.fround((2 * i) / D);
    out[i] = Math.fround(1 / Math.fround(Math.pow(base, exponent)));
  }
  if (scaling?.type === 'linear') {
    for (let i = 0; i < out.length; i++) out[i] = out[i] / Math.fround(scaling.factor);
  } else if (scaling?.type === 'llama3') {
    for (let i = 0; i < out.length; i++) out[i] = llama3InvFreq(out[i], scaling);
  }
  return out;
}

/**
 * One inv_freq of _compute_llama3_parameters, in torch's float32 steps: a Python scalar meets an f32 tensor as an
 * f32, and `scalar / tensor` is `tensor.reciprocal() * scalar`. The wavelength bounds stay Python floats until
 * compared (then f32).
 */
function llama3InvFreq(invFreq: number, s: Extract<RopeScaling, { type: 'llama3' }>): number {
  const f = Math.fround;
  const factor = f(s.factor);
  const lowWavelen = f(s.originalMaxPositions / s.lowFreqFactor);
  const highWavelen = f(s.originalMaxPositions / s.highFreqFactor);
  const wavelen = f(f(1 / invFreq) * f(2 * Math.PI));
  // Wavelengths past the original context: divided by factor; shorter than high_freq_wavelen: kept.
  const scaled = wavelen > lowWavelen ? f(invFreq / factor) : invFreq;
  if (wavelen < highWavelen || wavelen > lowWavelen) return scaled;
  // In between: (1 − s)·inv/factor + s·inv with s = (old_context / wavelen − low) / (high − low).
  const smooth = f(
    f(f(f(1 / wavelen) * f(s.originalMaxPositions)) - f(s.lowFreqFactor)) /
      f(s.highFreqFactor - s.lowFreqFactor),
  );
  return f(f(f(f(1 - smooth) * scaled) / factor) + f(smooth * scaled));
}

function sameRange(a: BufferBinding, b: BufferBinding): boolean {
  const buffer = (x: BufferBinding) => ('buffer' in x ? x.buffer : x);
  const offset = (x: BufferBinding) => ('buffer' in x ? (x.offset ?? 0) : 0);
  return buffer(a) === buffer(b) && offset(a) === offset(b);
}

function rope(
  rec: CommandRecorder,
  out: TensorRef,
  x: TensorRef,
  dims: RopeDims,
  options: RopeOptions,
  sign: 1 | -1,
) {
  const kernel = sign > 0 ? 'ropeForward' : 'ropeBackward';
  const { B, T, H, D } = dims;
  for (const [name, value] of Object.entries({ B, T, H, D })) {
    if (!Number.isInteger(value) || value < 0)
      throw new RangeError(`${kernel}: ${name} must be a whole number ≥ 0`);
  }
  if (D % 2 !== 0 || D < 2 || D > ROPE_MAX_HEAD_DIM) {
    throw new RangeError(`${kernel}: D must be even and in [2, ${ROPE_MAX_HEAD_DIM}], got ${D}`);
  }
  const { theta, positionOffset = 0, inStride = H * D, outStride = H * D } = options;
  if (!(theta > 1)) throw new RangeError(`${kernel}: theta must be > 1, got ${theta}`);
  if (!Number.isInteger(positionOffset) || positionOffset < 0 || positionOffset + T > 2 ** 24) {
    // Positions become f32 in the kernel (as in HF): exact only below 2²⁴.
    throw new RangeError(`${kernel}: positionOffset must be a whole number with positionOffset + T ≤ 2²⁴`);
  }
  if (!Number.isInteger(inStride) || inStride < H * D)
    throw new RangeError(`${kernel}: inStride must be ≥ H·D`);
  const inPlace = sameRange(out.binding, x.binding);
  if (inPlace && out.dtype !== x.dtype) throw new TypeError(`${kernel}: in place needs one dtype`);
  if (!inPlace && (!Number.isInteger(outStride) || outStride < H * D)) {
    throw new RangeError(`${kernel}: outStride must be ≥ H·D`);
  }

  const params = uniforms()
    .u32(B * T * H * (D / 2))
    .u32(T)
    .u32(H)
    .u32(D / 2)
    .u32(inStride)
    .u32(inPlace ? inStride : outStride)
    .u32(positionOffset)
    .f32(sign);
  const invFreq = ropeInvFreq(D, theta);
  for (let i = 0; i < ROPE_MAX_HEAD_DIM / 2; i++) params.f32(i < invFreq.length ? invFreq[i] : 0);

  rec.dispatch(
    {
      name: inPlace ? 'rope_inplace' : 'rope',
      source: ropeAngleWgsl + ropeWgsl,
      entryPoint: inPlace ? 'rope_inplace' : 'rope',
      aliases: { x_t: x.dtype, out_t: out.dtype },
      overrides: { WG },
    },
    {
      uniforms: params,
      buffers: inPlace ? [x.binding] : [out.binding, x.binding],
      workgroups: grid1d(B * T * H * (D / 2), WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    },
  );
}

/**
 * out (B, T, H, D) = rope(x (B, T, H, D)) at positions positionOffset + t. Pass the same binding as out and x
 * to rotate in place (q and k need one launch each).
 */
export function ropeForward(
  rec: CommandRecorder,
  out: TensorRef,
  x: TensorRef,
  dims: RopeDims,
  options: RopeOptions,
): void {
  rope(rec, out, x, dims, options, 1);
}

/** dx = rope⁻¹(dy): the rotation by −angle. Overwrites dx (or rotates dy in place when dx is dy). */
export function ropeBackward(
  rec: CommandRecorder,
  dx: TensorRef,
  dy: TensorRef,
  dims: RopeDims,
  options: RopeOptions,
): void {
  rope(rec, dx, dy, dims, options, -1);
}
