// Copies a column block of a row-major matrix: dst[n, dst_col + c] = src[n, src_col + c] for c < C, with
// independent row strides. GPT-2's fused c_attn output (N, 3C) is split into q, k, v (N, C) this way, and
// dq, dk, dv are gathered back into d(qkv). One thread per element, 2-D grid of 1-D workgroups.

override WG: u32 = 256;

struct Params {
  N: u32,
  C: u32,
  src_stride: u32,
  src_col: u32,
  dst_stride: u32,
  dst_col: u32,
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<t>;
@group(0) @binding(2) var<storage, read_write> dst: array<t>;

@compute @workgroup_size(WG)
fn copy2d(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.N * p.C) { return; }
  let n = i / p.C;
  let c = i % p.C;
  dst[n * p.dst_stride + p.dst_col + c] = src[n * p.src_stride + p.src_col + c];
}
