// RMSNorm (Llama, Qwen2, SmolLM2): y = x / sqrt(mean(x²) + eps) · w, one workgroup per row of length C.
// x (N, C) x_t, w (C) w_t (frozen), y (N, C) y_t; rstd (N) f32 is saved for the backward.
// Rows are reduced with a strided loop (any C) and a tree in workgroup memory; everything in f32.
// Rows can exceed 65535, so the launch is a 2-D grid: row = wid.x + wid.y · num_workgroups.x.

override WG: u32 = 256; // power of two: the tree halves it

struct Params {
  N: u32,
  C: u32,
  eps: f32,
  accumulate: u32, // backward: 1 adds into dx (residual stream), 0 overwrites it
}

@group(0) @binding(0) var<uniform> p: Params;

var<workgroup> tile: array<f32, WG>;

// Sums `v` over the workgroup; every thread gets the total. Call from uniform control flow.
fn workgroup_sum(lid: u32, v: f32) -> f32 {
  tile[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { tile[lid] += tile[lid + s]; }
    workgroupBarrier();
  }
  let total = tile[0];
  workgroupBarrier(); // the tile is reused by the next sum
  return total;
}

// ---- forward ---------------------------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read_write> y: array<y_t>;    // (N, C)
@group(0) @binding(2) var<storage, read_write> rstd: array<f32>; // (N)
@group(0) @binding(3) var<storage, read> x: array<x_t>;          // (N, C)
@group(0) @binding(4) var<storage, read> w: array<w_t>;          // (C)

@compute @workgroup_size(WG)
fn rmsnorm_forward(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u,
                   @builtin(num_workgroups) groups: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * groups.x; // workgroup-uniform, so the early return keeps barriers uniform
  if (row >= p.N) { return; }
  let base = row * p.C;
  var ss = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let v = f32(x[base + c]);
    ss += v * v;
  }
  let r = inverseSqrt(workgroup_sum(lid, ss) / f32(p.C) + p.eps);
  for (var c = lid; c < p.C; c += WG) {
    y[base + c] = y_t(f32(x[base + c]) * r * f32(w[c]));
  }
  if (lid == 0u) { rstd[row] = r; }
}

// ---- backward --------------------------------------------------------------------------------------------
// With g = w ⊙ dy and r = rstd:  dx = r · (g − x · r² · mean(g ⊙ x)).
@group(0) @binding(1) var<storage, read_write> dx: array<dx_t>;  // (N, C)
@group(0) @binding(2) var<storage, read> dy: array<dy_t>;        // (N, C)
@group(0) @binding(3) var<storage, read> xb: array<x_t>;         // (N, C) forward input
@group(0) @binding(4) var<storage, read> wb: array<w_t>;         // (C)
@group(0) @binding(5) var<storage, read> rstd_in: array<f32>;    // (N) saved by the forward

@compute @workgroup_size(WG)
fn rmsnorm_backward(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u,
                    @builtin(num_workgroups) groups: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * groups.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  var dot = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    dot += f32(wb[c]) * f32(dy[base + c]) * f32(xb[base + c]);
  }
  let r = rstd_in[row];
  let k = r * r * workgroup_sum(lid, dot) / f32(p.C);
  for (var c = lid; c < p.C; c += WG) {
    var v = r * (f32(wb[c]) * f32(dy[base + c]) - f32(xb[base + c]) * k);
    // accumulate = 0 must not read dx: it may hold garbage (or NaN).
    if (p.accumulate != 0u) { v += f32(dx[base + c]); }
    dx[base + c] = dx_t(v);
  }
}
