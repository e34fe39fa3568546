// RMSNorm (Llama, Qwen2, SmolLM2): y = x / sqrt(mean(x²) + eps) · (w + w_offset), one workgroup per row of
// length C. w_offset is 0, or 1 for Gemma's (1 + w), added in f32 as Gemma3RMSNorm does.
// x (N, C) x_t, w (C) w_t (frozen), y (N, C) y_t; rstd (N) f32 is saved for the backward.
// Rows are read in packets (`pk`: VW elements as f32s) with a strided loop, so any C works; the host keeps one
// of two `width` sections (norm-width.wgsl): vec4 packets where C % 4 == 0, else single elements. Rows are summed
// by `wg_sum` (reductions.wgsl: a workgroup tree, or subgroups where the device has them).
// Everything is computed in f32. Rows can exceed 65535, so the launch is a 2-D grid: row = wid.x + wid.y · groups.x.

// 64 threads: C = 576 as vec4 is 144 packets, 2–3 per thread, where 256 threads would leave 112 idle and pay two
// more tree levels; a row's work is its loads (memory-bound), not its sum. (On lavapipe 64 ran the bench shapes
// up to 2× faster than 256, and faster than 128.) Several rows per workgroup would let subgroups straddle rows.
override WG: u32 = 64; // a power of two: the tree halves it
alias red_t = f32;

struct Params {
  N: u32,
  C: u32,
  eps: f32,
  accumulate: u32, // backward: 1 adds into dx (residual stream), 0 overwrites it
  w_offset: f32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// ---- forward ---------------------------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read_write> y: array<y_v>;    // (N, C)
@group(0) @binding(2) var<storage, read_write> rstd: array<f32>; // (N)
@group(0) @binding(3) var<storage, read> x: array<x_v>;          // (N, C)
@group(0) @binding(4) var<storage, read> w: array<w_v>;          // (C)

@compute @workgroup_size(WG)
fn rmsnorm_forward(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u,
                   @builtin(num_workgroups) groups: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * groups.x; // workgroup-uniform, so the early return keeps barriers uniform
  if (row >= p.N) { return; }
  let n = p.C / VW; // packets per row
  let base = row * n;
  var ss = 0.0;
  for (var c = lid; c < n; c += WG) {
    let v = pk(x[base + c]);
    ss += hsum(v * v);
  }
  let r = inverseSqrt(wg_sum(ss, lid) / f32(p.C) + p.eps);
  for (var c = lid; c < n; c += WG) {
    y[base + c] = y_v(pk(x[base + c]) * r * (pk(w[c]) + p.w_offset));
  }
  if (lid == 0u) { rstd[row] = r; }
}

// ---- backward --------------------------------------------------------------------------------------------
// With g = (w + w_offset) ⊙ dy and r = rstd:  dx = r · (g − x · r² · mean(g ⊙ x)).
@group(0) @binding(1) var<storage, read_write> dx: array<dx_v>;  // (N, C)
@group(0) @binding(2) var<storage, read> dy: array<dy_v>;        // (N, C)
@group(0) @binding(3) var<storage, read> xb: array<x_v>;         // (N, C) forward input
@group(0) @binding(4) var<storage, read> wb: array<w_v>;         // (C)
@group(0) @binding(5) var<storage, read> rstd_in: array<f32>;    // (N) saved by the forward

@compute @workgroup_size(WG)
fn rmsnorm_backward(@builtin(local_invocation_id) lid3: vec3u, @builtin(workgroup_id) wid: vec3u,
                    @builtin(num_workgroups) groups: vec3u) {
  let lid = lid3.x;
  let row = wid.x + wid.y * groups.x;
  if (row >= p.N) { return; }
  let n = p.C / VW;
  let base = row * n;
  var dot = 0.0;
  for (var c = lid; c < n; c += WG) {
    dot += hsum((pk(wb[c]) + p.w_offset) * pk(dy[base + c]) * pk(xb[base + c]));
  }
  let r = rstd_in[row];
  let k = r * r * wg_sum(dot, lid) / f32(p.C);
  for (var c = lid; c < n; c += WG) {
    var v = r * ((pk(wb[c]) + p.w_offset) * pk(dy[base + c]) - pk(xb[base + c]) * k);
    // accumulate = 0 must not read dx: it may hold garbage (or NaN).
    if (p.accumulate != 0u) { v += pk(dx[base + c]); }
    dx[base + c] = dx_v(v);
  }
}
