// RoPE angles, shared by rope.wgsl and attention.wgsl (whose fused RoPE must match the rope kernel): the
// angle is the f32 product pos · inv_freq that Hugging Face forms (inv_freq computed on the host, see
// ropeInvFreq in src/engine/kernels/rope.ts), then reduced to [−π, π] before cos/sin.
//
// Angles reach pos · 1 radian (thousands). GPUs' sin/cos are only specified on [−π, π] (some reduce by
// multiplying with 1/2π, losing ~|a|·2⁻²⁴ absolute), so reduce first: Cody–Waite with 2π = C1 + C2 + C3,
// C1 and C2 of 8 significant bits so k · C1 and k · C2 are exact for k < 2¹⁶ (|a| < 4·10⁵).
const ROPE_C1: f32 = 6.28125;
const ROPE_C2: f32 = 0.0019378662109375;
const ROPE_C3: f32 = -2.559031372584286e-06;
const ROPE_INV_TWO_PI: f32 = 0.15915494309189535;

// (cos, sin) of pos · inv_freq.
fn rope_cos_sin(pos: u32, inv_freq: f32) -> vec2f {
  let angle = f32(pos) * inv_freq;
  let k = round(angle * ROPE_INV_TWO_PI);
  let r = ((angle - k * ROPE_C1) - k * ROPE_C2) - k * ROPE_C3;
  return vec2f(cos(r), sin(r));
}

// The same for four frequencies at once (component-wise the same operations).
fn rope_cos_sin4(pos: u32, inv_freq: vec4f) -> array<vec4f, 2> {
  let angle = f32(pos) * inv_freq;
  let k = round(angle * ROPE_INV_TWO_PI);
  let r = ((angle - k * ROPE_C1) - k * ROPE_C2) - k * ROPE_C3;
  return array<vec4f, 2>(cos(r), sin(r));
}
