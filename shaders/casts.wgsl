// Weight casts from bf16 (safetensors), bit-exact and independent of `shader-f16`: the bf16 source is read as
// packed u32 words (two elements each, element j in the low half when j is even, little-endian) and results
// are written as raw bits, so NaN payloads survive and no device float conversion (whose rounding WGSL leaves
// open) is involved.
//   cast_bf16_f32: exact, bits << 16.
//   cast_bf16_f16: round to nearest even; like scaleCast (scale.wgsl) it saturates at ±65504, turns NaN into
//                  0 and adds every element that did not fit (inf, NaN, |x| ≥ 65536) to overflow[0].
// `first` is the source element the tensor starts at, so a bf16 tensor may begin mid-word.

override WG: u32 = 256;

struct Params {
  n: u32,      // elements
  first: u32,  // source element offset
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;              // bf16 pairs
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;        // f32 bits, or f16 pairs
@group(0) @binding(3) var<storage, read_write> overflow: array<atomic<u32>>;

fn bf16_at(i: u32) -> u32 {
  let j = p.first + i;
  let word = src[j >> 1u];
  return select(word & 0xffffu, word >> 16u, (j & 1u) == 1u);
}

fn flat_index(gid: vec3u, groups: vec3u) -> u32 {
  return gid.x + gid.y * groups.x * WG;
}

@compute @workgroup_size(WG)
fn cast_bf16_f32(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  dst[i] = bf16_at(i) << 16u;
}

// bf16 bits → (f16 bits, 1 if it overflowed). bf16 = 1 sign, 8 exponent (bias 127), 7 mantissa bits;
// f16 = 1, 5 (bias 15), 10: normal f16 values hold every bf16 mantissa exactly, so only f16's subnormal range
// (bf16 exponent field 110..112 → exact, below → rounded) and overflow need care.
fn bf16_to_f16(x: u32) -> vec2u {
  let sign = (x & 0x8000u);
  let e = (x >> 7u) & 0xffu;
  let mant = x & 0x7fu;
  if (e == 0xffu && mant != 0u) { return vec2u(0u, 1u); }  // NaN → 0, as scaleCast
  if (e >= 143u) { return vec2u(sign | 0x7bffu, 1u); }      // |x| ≥ 2¹⁶ or inf → ±65504 (no bf16 lies in (65504, 65536))
  if (e >= 113u) { return vec2u(sign | ((e - 112u) << 10u) | (mant << 3u), 0u); } // f16 normal: exact
  if (e == 0u) { return vec2u(sign, 0u); }                  // ±0 and bf16 subnormals (< 2⁻¹²⁶) → ±0
  // value = full · 2^(e − 134); in units of f16's subnormal step 2⁻²⁴ that is full · 2^(e − 110)
  let full = mant | 0x80u;
  if (e >= 110u) { return vec2u(sign | (full << (e - 110u)), 0u); }
  let sh = 110u - e;
  if (sh > 8u) { return vec2u(sign, 0u); } // full < 2⁸ < half a step: rounds to 0
  var half = full >> sh;
  let rem = full & ((1u << sh) - 1u);
  let mid = 1u << (sh - 1u);
  if (rem > mid || (rem == mid && (half & 1u) == 1u)) { half += 1u; }
  return vec2u(sign | half, 0u);
}

// One thread per output word (two f16). The last word of an odd-length tensor keeps its upper half: it may
// belong to the next tensor of a packed buffer.
@compute @workgroup_size(WG)
fn cast_bf16_f16(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let w = flat_index(gid, groups);
  let i = 2u * w;
  if (i >= p.n) { return; }
  let lo = bf16_to_f16(bf16_at(i));
  var bad = lo.y;
  if (i + 1u < p.n) {
    let hi = bf16_to_f16(bf16_at(i + 1u));
    bad += hi.y;
    dst[w] = lo.x | (hi.x << 16u);
  } else {
    dst[w] = (dst[w] & 0xffff0000u) | lo.x;
  }
  if (bad != 0u) { atomicAdd(&overflow[0], bad); }
}
