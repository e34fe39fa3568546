// Bias add in place (Qwen2's q/k/v projections): y[n, c] += b[c] for y (N, C) with `row_stride` elements
// between rows (C for a dense tensor, more for a slice of a fused row). The bias is frozen: no backward, the
// gradient passes through unchanged. One thread per element; 2-D grid of 1-D workgroups.

override WG: u32 = 256;

struct Params {
  N: u32,
  C: u32,
  row_stride: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<y_t>; // (N, row_stride)
@group(0) @binding(2) var<storage, read> b: array<b_t>;       // (C)

@compute @workgroup_size(WG)
fn bias_add(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.N * p.C) { return; }
  let c = i % p.C;
  let at = (i / p.C) * p.row_stride + c;
  y[at] = y_t(f32(y[at]) + f32(b[c]));
}
