// Global gradient norm, clipping factor and non-finite flag, entirely on the GPU so the optimizer can apply
// (or skip) the step without a CPU round trip.
//   gradnorm_partial (many workgroups): partials[w] = Σ (g·inv_loss_scale)² over a strided slice, and
//                     partials[GROUPS_MAX + w] = 1 if any g in it was inf/NaN.
//   gradnorm_finalize (one workgroup):  folds the partials into the step control words
//     control[0] f32  grad_scale = inv_loss_scale · min(1, max_norm / (norm + 1e-6)); 0 when non-finite
//     control[1] u32  non_finite: 1 when any gradient (or the extra overflow counter) was inf/NaN
//     control[2] f32  norm of the unscaled gradient, before clipping
//     control[3] u32  steps skipped so far (incremented on every non-finite step; never reset here)
// The norm is of g/lossScale: scaling before squaring also keeps (scaled g)² from overflowing f32.
// Non-finite inputs are detected from the exponent bits, not from NaN arithmetic that a compiler may assume
// away; a finite sum that overflows to inf counts as non-finite too.

override WG: u32 = 256;
const GROUPS_MAX: u32 = 256u; // = GRADNORM_PARTIALS in gradnorm.ts

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

var<workgroup> wsum: array<f32, WG>;
var<workgroup> wbad: array<u32, WG>;

fn is_non_finite(x: f32) -> bool {
  return (bitcast<u32>(x) & 0x7f800000u) == 0x7f800000u;
}

@compute @workgroup_size(WG)
fn gradnorm_partial(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
                    @builtin(num_workgroups) groups: vec3u) {
  let stride = groups.x * WG;
  var acc = 0.0;
  var bad = 0u;
  for (var i = wid.x * WG + lid.x; i < p.n; i += stride) {
    let g = grads[i];
    bad |= select(0u, 1u, is_non_finite(g));
    let u = g * p.inv_loss_scale;
    acc += u * u;
  }
  wsum[lid.x] = acc;
  wbad[lid.x] = bad;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      wsum[lid.x] += wsum[lid.x + s];
      wbad[lid.x] |= wbad[lid.x + s];
    }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    partials[wid.x] = wsum[0];
    partials[GROUPS_MAX + wid.x] = f32(wbad[0]);
  }
}

fn finalize(lid: u32, extra_bad: bool) {
  var acc = 0.0;
  var bad = 0u;
  for (var i = lid; i < p.n; i += WG) {
    acc += partials[i];
    bad |= select(0u, 1u, partials[GROUPS_MAX + i] != 0.0);
  }
  wsum[lid] = acc;
  wbad[lid] = bad;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      wsum[lid] += wsum[lid + s];
      wbad[lid] |= wbad[lid + s];
    }
    workgroupBarrier();
  }
  if (lid != 0u) { return; }
  let total = wsum[0];
  let norm = sqrt(total);
  let non_finite = wbad[0] != 0u || is_non_finite(total) || extra_bad;
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
