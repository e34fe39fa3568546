// Global gradient norm, clipping factor and non-finite flag, entirely on the GPU so the optimizer can apply
// (or skip) the step without a CPU round trip.
//   gradnorm_partial (many workgroups): partials[w] = Σ (g·inv_loss_scale)² over a strided slice, and
//                     partials[GROUPS_MAX + w] = how many g in it were inf/NaN.
//   gradnorm_finalize (one workgroup):  folds the partials into the step control words
//     control[0] f32  grad_scale = inv_loss_scale · min(1, max_norm / (norm + 1e-6)); 0 when non-finite
//     control[1] u32  non_finite: 1 when any gradient (or the extra overflow counter) was inf/NaN
//     control[2] f32  norm of the unscaled gradient, before clipping
//     control[3] u32  steps skipped so far (incremented on every non-finite step; never reset here)
// The norm is of g/lossScale: scaling before squaring also keeps (scaled g)² from overflowing f32.
// Non-finite inputs are detected from the exponent bits, not from NaN arithmetic that a compiler may assume
// away; a finite sum that overflows to inf counts as non-finite too. The sum of squares and the count of
// non-finite values travel together through `wg_sum` (reductions.wgsl): a sum of
// non-negative counts is non-zero exactly when one of them is, in f32 at any size.

override WG: u32 = 256;
const GROUPS_MAX: u32 = 256u; // = GRADNORM_PARTIALS in gradnorm.ts
alias red_t = vec2f; // (sum of squares, non-finite count)

struct Params {
  n: u32,               // gradient elements (partial) / partial count (finalize)
  inv_loss_scale: f32,
  max_norm: f32,        // ≤ 0: no clipping
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> grads: array<f32>;            // (n)
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;   // (2·GROUPS_MAX)
@group(0) @binding(3) var<storage, read_write> control: array<u32>;    // (4)
@group(0) @binding(4) var<storage, read_write> overflow: array<u32>;   // (1) extra non-finite count, e.g. f16 casts

fn is_non_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

@compute @workgroup_size(WG)
fn gradnorm_partial(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
                    @builtin(num_workgroups) groups: vec3u) {
  let stride = groups.x * WG;
  var acc = vec2f(0.0);
  for (var i = wid.x * WG + lid.x; i < p.n; i += stride) {
    let g = grads[i];
    let u = g * p.inv_loss_scale;
    acc += vec2f(u * u, select(0.0, 1.0, is_non_finite(g)));
  }
  let total = wg_sum(acc, lid.x);
  if (lid.x == 0u) {
    partials[wid.x] = total.x;
    partials[GROUPS_MAX + wid.x] = total.y;
  }
}

fn finalize(lid: u32, extra_bad: bool) {
  var acc = vec2f(0.0);
  for (var i = lid; i < p.n; i += WG) { acc += vec2f(partials[i], partials[GROUPS_MAX + i]); }
  let total = wg_sum(acc, lid);
  if (lid != 0u) { return; }
  let norm = sqrt(total.x);
  let non_finite = total.y != 0.0 || is_non_finite(total.x) || extra_bad;
  var clip = 1.0;
  if (p.max_norm > 0.0) { clip = min(1.0, p.max_norm / (norm + 1e-6)); }
  control[0] = bitcast<u32>(select(p.inv_loss_scale * clip, 0.0, non_finite));
  control[1] = select(0u, 1u, non_finite);
  control[2] = bitcast<u32>(norm);
  control[3] += select(0u, 1u, non_finite);
}

@compute @workgroup_size(WG)
fn gradnorm_finalize(@builtin(local_invocation_id) lid: vec3u) {
  finalize(lid.x, false);
}

// The same, also treating a non-zero overflow counter (e.g. from saturating f16 casts) as non-finite.
@compute @workgroup_size(WG)
fn gradnorm_finalize_overflow(@builtin(local_invocation_id) lid: vec3u) {
  finalize(lid.x, overflow[0] != 0u);
}
