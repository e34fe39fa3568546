// Pointwise activations over flat arrays of n elements, forward and backward side by side, f32 arithmetic.
//   swiglu (Llama MLP):  out = silu(gate) · up,  silu(g) = g · σ(g)
//   gelu (GPT-2 gelu_new, tanh approximation): out = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
//   geglu (Gemma MLP, gelu_pytorch_tanh):  out = gelu(gate) · up
// Storage types: in_t (forward inputs), dy_t (upstream gradient), out_t (outputs and input gradients).
// Long arrays launch as a 2-D grid: i = gid.x + gid.y · num_workgroups.x · WG.

override WG: u32 = 256;

struct Params {
  n: u32,
  _pad0: u32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

fn flat_index(gid: vec3u, groups: vec3u) -> u32 {
  return gid.x + gid.y * groups.x * WG;
}

// σ(g) without overflow: exp of a non-positive number only.
fn sigmoid(g: f32) -> f32 {
  let e = exp(-abs(g));
  return select(e / (1.0 + e), 1.0 / (1.0 + e), g >= 0.0);
}

// ---- swiglu ----------------------------------------------------------------------------------------------
@group(0) @binding(1) var<storage, read_write> sw_out: array<out_t>; // (n)
@group(0) @binding(2) var<storage, read> sw_gate: array<in_t>;       // (n)
@group(0) @binding(3) var<storage, read> sw_up: array<in_t>;         // (n)

@compute @workgroup_size(WG)
fn swiglu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  let g = f32(sw_gate[i]);
  sw_out[i] = out_t(g * sigmoid(g) * f32(sw_up[i]));
}

// dgate = dy · up · σ(g)(1 + g(1 − σ(g))),  dup = dy · silu(g). Both overwritten.
@group(0) @binding(1) var<storage, read_write> swb_dgate: array<out_t>; // (n)
@group(0) @binding(2) var<storage, read_write> swb_dup: array<out_t>;   // (n)
@group(0) @binding(3) var<storage, read> swb_dy: array<dy_t>;           // (n)
@group(0) @binding(4) var<storage, read> swb_gate: array<in_t>;         // (n)
@group(0) @binding(5) var<storage, read> swb_up: array<in_t>;           // (n)

@compute @workgroup_size(WG)
fn swiglu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  let g = f32(swb_gate[i]);
  let dy = f32(swb_dy[i]);
  let s = sigmoid(g);
  swb_dgate[i] = out_t(dy * f32(swb_up[i]) * s * (1.0 + g * (1.0 - s)));
  swb_dup[i] = out_t(dy * g * s);
}

// ---- gelu (tanh approximation) ---------------------------------------------------------------------------
const GELU_SCALE: f32 = 0.7978845608028654; // √(2/π)
const GELU_CUBIC: f32 = 0.044715;

// tanh(u) with |u| clamped: tanh(±10) is ±1 in f32, and some drivers build tanh from exp(2u) and return
// NaN (inf/inf) for large |u|.
fn tanh_safe(u: f32) -> f32 {
  return tanh(clamp(u, -10.0, 10.0));
}

@group(0) @binding(1) var<storage, read_write> ge_out: array<out_t>; // (n)
@group(0) @binding(2) var<storage, read> ge_x: array<in_t>;          // (n)

fn gelu(x: f32) -> f32 {
  return 0.5 * x * (1.0 + tanh_safe(GELU_SCALE * (x + GELU_CUBIC * x * x * x)));
}

// gelu'(x) = ½(1 + t) + ½x(1 − t²)·√(2/π)(1 + 3·0.044715x²), t = tanh(u).
fn gelu_grad(x: f32) -> f32 {
  let t = tanh_safe(GELU_SCALE * (x + GELU_CUBIC * x * x * x));
  return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * x * x);
}

@compute @workgroup_size(WG)
fn gelu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  ge_out[i] = out_t(gelu(f32(ge_x[i])));
}

// dx = dy · gelu'(x). Overwritten.
@group(0) @binding(1) var<storage, read_write> geb_dx: array<out_t>; // (n)
@group(0) @binding(2) var<storage, read> geb_dy: array<dy_t>;        // (n)
@group(0) @binding(3) var<storage, read> geb_x: array<in_t>;         // (n)

@compute @workgroup_size(WG)
fn gelu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  geb_dx[i] = out_t(f32(geb_dy[i]) * gelu_grad(f32(geb_x[i])));
}

// ---- geglu (the swiglu bindings) -------------------------------------------------------------------------
@compute @workgroup_size(WG)
fn geglu_forward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  sw_out[i] = out_t(gelu(f32(sw_gate[i])) * f32(sw_up[i]));
}

// dgate = dy · up · gelu'(g),  dup = dy · gelu(g). Both overwritten.
@compute @workgroup_size(WG)
fn geglu_backward(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  let g = f32(swb_gate[i]);
  let dy = f32(swb_dy[i]);
  swb_dgate[i] = out_t(dy * f32(swb_up[i]) * gelu_grad(g));
  swb_dup[i] = out_t(dy * gelu(g));
}
