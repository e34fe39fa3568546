// LayerNorm (GPT-2): y = (x − mean) · rstd · w + b with frozen w, b; one workgroup per row of length C.
// x (N, C) x_t, w (C) w_t, b (C) w_t, y (N, C) y_t; mean (N) and rstd (N) f32 are saved for the backward.
// The variance is a second pass over (x − mean)² (no E[x²] − mean² cancellation); biased, as PyTorch's.
// Packets (norm-width.wgsl) and `wg_sum` (reductions.wgsl) as in rmsnorm.wgsl; here `wg_sum` adds two
// quantities at once. Rows can exceed 65535, so the launch is a 2-D grid.

override WG: u32 = 64; // a power of two: the tree halves it (64: see rmsnorm.wgsl)
alias red_t = vec2f;

struct Params {
  N: u32,
  C: u32,
  eps: f32,
  accumulate: u32, // backward: 1 adds into dx (residual stream), 0 overwrites it
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- forward ---------------------------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read_write> y: array<y_v>;    // (N, C)
@group(0) @binding(2) var<storage, read_write> mean: array<f32>; // (N)
@group(0) @binding(3) var<storage, read_write> rstd: array<f32>; // (N)
@group(0) @binding(4) var<storage, read> x: array<x_v>;          // (N, C)
@group(0) @binding(5) var<storage, read> w: array<w_v>;          // (C)
@group(0) @binding(6) var<storage, read> b: array<w_v>;          // (C)

@compute @workgroup_size(WG)
fn layernorm_forward(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u,
                     @builtin(num_workgroups) groups: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * groups.x; // workgroup-uniform, so the early return keeps barriers uniform
  if (row >= p.N) { return; }
  let n = p.C / VW; // packets per row
  let base = row * n;
  var s = 0.0;
  for (var c = lid; c < n; c += WG) { s += hsum(pk(x[base + c])); }
  let m = wg_sum(vec2f(s, 0.0), lid).x / f32(p.C);
  var ss = 0.0;
  for (var c = lid; c < n; c += WG) {
    let d = pk(x[base + c]) - m;
    ss += hsum(d * d);
  }
  let r = inverseSqrt(wg_sum(vec2f(ss, 0.0), lid).x / f32(p.C) + p.eps);
  for (var c = lid; c < n; c += WG) {
    y[base + c] = y_v((pk(x[base + c]) - m) * r * pk(w[c]) + pk(b[c]));
  }
  if (lid == 0u) {
    mean[row] = m;
    rstd[row] = r;
  }
}

// ---- backward --------------------------------------------------------------------------------------------
// With g = w ⊙ dy and x̂ = (x − mean) · rstd:  dx = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂))   (llm.c).
@group(0) @binding(1) var<storage, read_write> dx: array<dx_v>;  // (N, C)
@group(0) @binding(2) var<storage, read> dy: array<dy_v>;        // (N, C)
@group(0) @binding(3) var<storage, read> xb: array<x_v>;         // (N, C) forward input
@group(0) @binding(4) var<storage, read> wb: array<w_v>;         // (C)
@group(0) @binding(5) var<storage, read> mean_in: array<f32>;    // (N) saved by the forward
@group(0) @binding(6) var<storage, read> rstd_in: array<f32>;    // (N) saved by the forward

@compute @workgroup_size(WG)
fn layernorm_backward(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u,
                      @builtin(num_workgroups) groups: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * groups.x;
  if (row >= p.N) { return; }
  let n = p.C / VW;
  let base = row * n;
  let m = mean_in[row];
  let r = rstd_in[row];
  var sums = vec2f(0.0);
  for (var c = lid; c < n; c += WG) {
    let g = pk(wb[c]) * pk(dy[base + c]);
    sums += vec2f(hsum(g), hsum(g * (pk(xb[base + c]) - m) * r));
  }
  let means = wg_sum(sums, lid) / f32(p.C);
  for (var c = lid; c < n; c += WG) {
    let g = pk(wb[c]) * pk(dy[base + c]);
    let xhat = (pk(xb[base + c]) - m) * r;
    var v = r * (g - means.x - xhat * means.y);
    // accumulate = 0 must not read dx: it may hold garbage (or NaN).
    if (p.accumulate != 0u) { v += pk(dx[base + c]); }
    dx[base + c] = dx_v(v);
  }
}
