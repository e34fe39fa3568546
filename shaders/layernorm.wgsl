// LayerNorm (GPT-2): y = (x − mean) · rstd · w + b with frozen w, b; one workgroup per row of length C.
// x (N, C) x_t, w (C) w_t, b (C) w_t, y (N, C) y_t; mean (N) and rstd (N) f32 are saved for the backward.
// The variance is a second pass over (x − mean)² (no E[x²] − mean² cancellation); biased, as PyTorch's.
// Rows can exceed 65535, so the launch is a 2-D grid: row = wid.x + wid.y · num_workgroups.x.

override WG: u32 = 256; // power of two: the tree halves it

struct Params {
  N: u32,
  C: u32,
  eps: f32,
  accumulate: u32, // backward: 1 adds into dx (residual stream), 0 overwrites it
}

@group(0) @binding(0) var<uniform> p: Params;

var<workgroup> tile: array<vec2f, WG>;

// Sums `v` (two quantities at once) over the workgroup; every thread gets the totals. Uniform control flow.
fn workgroup_sum(lid: u32, v: vec2f) -> vec2f {
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
@group(0) @binding(2) var<storage, read_write> mean: array<f32>; // (N)
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>; // (N)
@group(0) @binding(4) var<storage, read> x: array<x_t>;          // (N, C)
@group(0) @binding(5) var<storage, read> w: array<w_t>;          // (C)
@group(0) @binding(6) var<storage, read> b: array<w_t>;          // (C)

@compute @workgroup_size(WG)
fn layernorm_forward(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u,
                     @builtin(num_workgroups) groups: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * groups.x; // workgroup-uniform, so the early return keeps barriers uniform
  if (row >= p.N) { return; }
  let base = row * p.C;
  let n = f32(p.C);
  var s = 0.0;
  for (var c = lid; c < p.C; c += WG) { s += f32(x[base + c]); }
  let m = workgroup_sum(lid, vec2f(s, 0.0)).x / n;
  var ss = 0.0;
  for (var c = lid; c < p.C; c += WG) {
    let d = f32(x[base + c]) - m;
    ss += d * d;
  }
  let r = inverseSqrt(workgroup_sum(lid, vec2f(ss, 0.0)).x / n + p.eps);
  for (var c = lid; c < p.C; c += WG) {
    y[base + c] = y_t((f32(x[base + c]) - m) * r * f32(w[c]) + f32(b[c]));
  }
  if (lid == 0u) {
    mean[row] = m;
    rstd[row] = r;
  }
}

// ---- backward --------------------------------------------------------------------------------------------
// With g = w ⊙ dy and x̂ = (x − mean) · rstd:  dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))   (llm.c).
@group(0) @binding(1) var<storage, read_write> dx: array<dx_t>;  // (N, C)
@group(0) @binding(2) var<storage, read> dy: array<dy_t>;        // (N, C)
@group(0) @binding(3) var<storage, read> xb: array<x_t>;         // (N, C) forward input
@group(0) @binding(4) var<storage, read> wb: array<w_t>;         // (C)
@group(0) @binding(5) var<storage, read> mean_in: array<f32>;    // (N) saved by the forward
@group(0) @binding(6) var<storage, read> rstd_in: array<f32>;    // (N) saved by the forward

@compute @workgroup_size(WG)
fn layernorm_backward(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u,
                      @builtin(num_workgroups) groups: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * groups.x;
  if (row >= p.N) { return; }
  let base = row * p.C;
  let m = mean_in[row];
  let r = rstd_in[row];
  var sums = vec2f(0.0);
  for (var c = lid; c < p.C; c += WG) {
    let g = f32(wb[c]) * f32(dy[base + c]);
    sums += vec2f(g, g * (f32(xb[base + c]) - m) * r);
  }
  let means = workgroup_sum(lid, sums) / f32(p.C);
  for (var c = lid; c < p.C; c += WG) {
    let g = f32(wb[c]) * f32(dy[base + c]);
    let xhat = (f32(xb[base + c]) - m) * r;
    var v = r * (g - means.x - xhat * means.y);
    // accumulate = 0 must not read dx: it may hold garbage (or NaN).
    if (p.accumulate != 0u) { v += f32(dx[base + c]); }
    dx[base + c] = dx_t(v);
  }
}
