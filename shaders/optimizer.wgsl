// Optimizer updates over one flat f32 buffer of all LoRA master parameters (n), one thread per element.
// Per-tensor learning-rate (and weight-decay) multipliers come from a segment table: segment s covers
// [segs[s-1].end, segs[s].end); each thread finds its segment by binary search (≤ 9 probes for the ~420 LoRA
// tensors of SmolLM2, served from cache since a workgroup's threads hit one or two segments), so every tensor is
// updated in ONE dispatch instead of one per tensor.
// The gradient scale (1/lossScale · clip factor) and the skip flag are read from the step control words that
// gradnorm.wgsl writes; when the flag is set the update is a no-op, decided on the GPU.
// AdamW's bias corrections 1 − βᵗ use the count of APPLIED steps (skipped steps do not count, as with PyTorch's
// GradScaler); `adamw_prepare` (one thread) advances that count and computes them once per step.

override WG: u32 = 256;

struct Params {
  n: u32,
  segments: u32,
  nesterov: u32,  // SGD
  _pad: u32,
  lr: f32,
  beta1: f32,     // AdamW; SGD: momentum
  beta2: f32,
  eps: f32,
  weight_decay: f32,
  _pad1: u32,
  _pad2: u32,
  _pad3: u32,
}

struct Segment {
  end: u32,       // one past the last element of this tensor
  lr_mult: f32,   // layer-wise LR decay etc.
  wd_mult: f32,   // 0 exempts a tensor from weight decay
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> params: array<f32>; // (n) master weights
@group(0) @binding(2) var<storage, read> grads: array<f32>;        // (n) raw (loss-scaled) gradients
@group(0) @binding(3) var<storage, read_write> m: array<f32>;      // (n) AdamW first moment / SGD momentum
@group(0) @binding(4) var<storage, read_write> v: array<f32>;      // (n) AdamW second moment
@group(0) @binding(5) var<storage, read> segs: array<Segment>;     // (segments)
@group(0) @binding(6) var<storage, read> control: array<u32>;      // (4) see gradnorm.wgsl
// AdamW state: [0] u32 applied steps t, [1] f32 1 − β1ᵗ, [2] f32 1 − β2ᵗ, [3] unused
@group(0) @binding(7) var<storage, read_write> adam_step: array<u32>;
@group(0) @binding(8) var<storage, read> adam_step_ro: array<u32>;

fn segment_of(i: u32) -> Segment {
  var lo = 0u;
  var hi = p.segments - 1u;
  while (lo < hi) {
    let mid = (lo + hi) / 2u;
    if (segs[mid].end > i) { hi = mid; } else { lo = mid + 1u; }
  }
  return segs[lo];
}

fn flat_index(gid: vec3u, groups: vec3u) -> u32 {
  return gid.x + gid.y * groups.x * WG;
}

// ln β for β in (0, 1). For β ≥ 0.5, x = 1 − β is exact in f32 (Sterbenz) and −ln(1 − x) = Σ xᵏ/k is summed
// directly: log(0.999) itself would carry an absolute error of a few ulps of 1, i.e. 1e-4 relative.
fn log_beta(beta: f32) -> f32 {
  if (beta < 0.5) { return log(beta); }
  let x = 1.0 - beta;
  var term = x;
  var sum = 0.0;
  for (var k = 1u; k <= 40u; k++) { // x ≤ 0.5: 0.5⁴⁰ is far below f32 resolution
    sum += term / f32(k);
    term *= x;
  }
  return -sum;
}

// 1 − βᵗ to a few f32 ulps for every t. 1 − pow(β, t) cancels (β2 = 0.999, t = 1: 1e-3 relative error), and
// powering by squaring multiplies β's rounding by t. Instead y = t·ln β, then 1 − eʸ = −expm1(y) by its series
// when |y| < 0.5 (no cancellation: the first term dominates) and 1 − exp(y) otherwise (eʸ < 0.61).
fn one_minus_pow(beta: f32, t: u32) -> f32 {
  if (beta == 0.0) { return 1.0; }
  let y = f32(t) * log_beta(beta);
  if (y > -0.5) {
    var term = y;
    var sum = 0.0;
    for (var k = 1u; k <= 16u; k++) {
      sum += term;
      term *= y / f32(k + 1u);
    }
    return -sum;
  }
  return 1.0 - exp(y);
}

@compute @workgroup_size(1)
fn adamw_prepare() {
  if (control[1] != 0u) { return; }
  let t = adam_step[0] + 1u;
  adam_step[0] = t;
  adam_step[1] = bitcast<u32>(one_minus_pow(p.beta1, t));
  adam_step[2] = bitcast<u32>(one_minus_pow(p.beta2, t));
}

// PyTorch AdamW: p ← p − lr·wd·p; m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
// p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε), with lr and wd times the tensor's multipliers.
@compute @workgroup_size(WG)
fn adamw_update(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  if (control[1] != 0u) { return; }
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  let seg = segment_of(i);
  let lr = p.lr * seg.lr_mult;
  let g = grads[i] * bitcast<f32>(control[0]);
  var w = params[i];
  w -= lr * p.weight_decay * seg.wd_mult * w;
  let mi = p.beta1 * m[i] + (1.0 - p.beta1) * g;
  let vi = p.beta2 * v[i] + (1.0 - p.beta2) * g * g;
  m[i] = mi;
  v[i] = vi;
  let bc1 = bitcast<f32>(adam_step_ro[1]);
  let bc2 = bitcast<f32>(adam_step_ro[2]);
  w -= (lr / bc1) * mi / (sqrt(vi) / sqrt(bc2) + p.eps);
  params[i] = w;
}

// PyTorch SGD (dampening 0): g ← g + wd·p (coupled L2, as torch.optim.SGD); b ← μ b + g;
// step = g + μ b (Nesterov) or b; p ← p − lr·step.
fn sgd_grad(i: u32, seg: Segment) -> f32 {
  return grads[i] * bitcast<f32>(control[0]) + p.weight_decay * seg.wd_mult * params[i];
}

@compute @workgroup_size(WG)
fn sgd_update(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  if (control[1] != 0u) { return; }
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  let seg = segment_of(i);
  let g = sgd_grad(i, seg);
  let b = p.beta1 * m[i] + g;
  m[i] = b;
  let step = select(b, g + p.beta1 * b, p.nesterov == 1u);
  params[i] -= p.lr * seg.lr_mult * step;
}

// Momentum 0: a separate entry point that never binds a momentum buffer.
@compute @workgroup_size(WG)
fn sgd_plain_update(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  if (control[1] != 0u) { return; }
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  let seg = segment_of(i);
  params[i] -= p.lr * seg.lr_mult * sgd_grad(i, seg);
}
