// Rotary position embedding as Hugging Face applies it (rotate_half): within each head of dim D the pairs are
// (i, i + D/2), rotated by angle = pos · inv_freq[i] with pos = pos_offset + t:
//   out[i]       = x[i] · cos − x[i + D/2] · sin
//   out[i + D/2] = x[i + D/2] · cos + x[i] · sin
// x is (B, T, H, D) with `x_stride` elements between tokens (a q or k slice of a fused qkv row works).
// The backward is the rotation by −angle (`sign` = −1): the rotation is orthogonal, so its transpose.
// inv_freq comes in the uniforms, computed on the host exactly as HF does in f32 (a GPU pow() is allowed
// several ulp of error, which pos · inv_freq would amplify); the angle is then the same f32 product HF forms
// (rope-angle.wgsl, shared with the fused RoPE of attention.wgsl).
// One thread per pair; long launches as a 2-D grid: k = gid.x + gid.y · num_workgroups.x · WG.

override WG: u32 = 256;

struct Params {
  pairs: u32,      // B · T · H · D/2
  T: u32,
  H: u32,
  half: u32,       // D / 2 ≤ 128
  x_stride: u32,   // elements between consecutive tokens of x
  out_stride: u32, // elements between consecutive tokens of out (out-of-place only)
  pos_offset: u32, // position of t = 0 (the cache length when decoding)
  sign: f32,       // +1 forward, −1 backward
  inv_freq: array<vec4f, 32>, // (D/2) f32, padded to 128
}

@group(0) @binding(0) var<uniform> p: Params;

// rope_cos_sin (the f32 angle and its reduction) comes from rope-angle.wgsl, prepended by the loader.
fn cos_sin(pair: u32) -> vec2f {
  let i = pair % p.half;
  let t = (pair / (p.half * p.H)) % p.T;
  let cs = rope_cos_sin(p.pos_offset + t, p.inv_freq[i / 4u][i % 4u]);
  return vec2f(cs.x, p.sign * cs.y);
}

// Element offset of the first member of `pair` in a tensor with `stride` elements between tokens.
fn offset(pair: u32, stride: u32) -> u32 {
  let i = pair % p.half;
  let head = pair / p.half; // token · H + h
  return (head / p.H) * stride + (head % p.H) * 2u * p.half + i;
}

@group(0) @binding(1) var<storage, read_write> out: array<out_t>;
@group(0) @binding(2) var<storage, read> x: array<x_t>;

@compute @workgroup_size(WG)
fn rope(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let k = gid.x + gid.y * groups.x * WG;
  if (k >= p.pairs) { return; }
  let cs = cos_sin(k);
  let xa = offset(k, p.x_stride);
  let oa = offset(k, p.out_stride);
  let a = f32(x[xa]);
  let b = f32(x[xa + p.half]);
  out[oa] = out_t(a * cs.x - b * cs.y);
  out[oa + p.half] = out_t(b * cs.x + a * cs.y);
}

// In place: one read_write binding (WebGPU forbids binding a buffer twice when one use is writable).
@group(0) @binding(1) var<storage, read_write> xio: array<x_t>;

@compute @workgroup_size(WG)
fn rope_inplace(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let k = gid.x + gid.y * groups.x * WG;
  if (k >= p.pairs) { return; }
  let cs = cos_sin(k);
  let xa = offset(k, p.x_stride);
  let a = f32(xio[xa]);
  let b = f32(xio[xa + p.half]);
  xio[xa] = x_t(a * cs.x - b * cs.y);
  xio[xa + p.half] = x_t(b * cs.x + a * cs.y);
}
