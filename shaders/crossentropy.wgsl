// Cross-entropy over a vocabulary processed in chunks, so the (N, V) logits matrix never exists whole.
// The host computes one chunk of logits at a time, (N, vc) = h (N, C) · W[v0 : v0+vc]ᵀ, into an f32 scratch and
// calls `ce_chunk` on it; each row keeps a running (max, sumexp) (the online log-sum-exp of Milakov & Gimelshein)
// and the logit of its target. After the last chunk, `ce_chunk` writes lse (N) and the per-row loss
// lse − logit[target] (0 for rows whose target is the ignore index), and `ce_total` folds the row losses into
// one scalar times 1/normaliser. Backward recomputes each chunk of logits and turns it, in place, into
// dlogits = (softmax − onehot)·scale from the saved lse (`ce_softmax_grad_inplace`); `ce_softmax_grad` is the
// same for a logits matrix that is given whole (small vocabularies), writing a separate dlogits.
// Storage: logits `logit_t` (f32 for the chunk scratch), dlogits `dlogit_t`, everything else f32/i32;
// arithmetic in f32.

override WG: u32 = 256;

struct Params {
  N: u32,          // rows (tokens)
  V: u32,          // whole vocabulary: targets are in [0, V) or the ignore index
  v0: u32,         // first vocabulary entry of this chunk
  vc: u32,         // entries in this chunk
  row_stride: u32, // elements between rows of `logits` (vc for the chunk scratch, V for whole logits)
  first: u32,      // 1 on the first chunk: start the running statistics
  last: u32,       // 1 on the last chunk: write lse and the row losses
  ignore_index: i32,
  scale: f32,      // ce_total: 1/normaliser; softmax_grad: lossScale/normaliser
  accumulate: u32, // ce_total: 1 adds into loss[0] (micro-batches), 0 overwrites
  _pad0: u32,
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> targets: array<i32>;          // (N)
// read_write although only read: the chunk scratch holds the logits and `running` in one buffer, and WebGPU
// forbids read-only and writable bindings of one buffer in one dispatch (two writable ones are allowed).
@group(0) @binding(2) var<storage, read_write> logits: array<logit_t>; // (N, row_stride), columns v0..v0+vc
@group(0) @binding(3) var<storage, read_write> running: array<f32>;    // (N, 3): max, sumexp, target logit
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;        // (N)
@group(0) @binding(5) var<storage, read_write> losses: array<f32>;     // (N)
@group(0) @binding(6) var<storage, read_write> loss: array<f32>;       // (1)
@group(0) @binding(7) var<storage, read_write> dlogits: array<dlogit_t>; // (N, row_stride)
@group(0) @binding(8) var<storage, read_write> dchunk: array<f32>;     // (N, vc), in place

const NEG_INF: f32 = -3.4028234663852886e38; // finite stand-in: inf − inf would give NaN in the merge

var<workgroup> wmax: array<f32, WG>;
var<workgroup> wsum: array<f32, WG>;

fn row_of(wid: vec3u, groups: vec3u) -> u32 {
  return wid.x + wid.y * groups.x;
}

// Merges two (max, sumexp) pairs: the sums are rescaled to the larger max.
fn merge(a: vec2f, b: vec2f) -> vec2f {
  let m = max(a.x, b.x);
  return vec2f(m, a.y * exp(a.x - m) + b.y * exp(b.x - m));
}

// One workgroup per row: each thread runs an online (max, sumexp) over a strided slice of the chunk, then a
// tree merges the threads' pairs and thread 0 merges the result into the row's running statistics.
@compute @workgroup_size(WG)
fn ce_chunk(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
            @builtin(num_workgroups) groups: vec3u) {
  let row = row_of(wid, groups);
  if (row >= p.N) { return; } // uniform per workgroup, so the barriers below stay uniform
  let base = row * p.row_stride;
  var acc = vec2f(NEG_INF, 0.0);
  for (var j = lid.x; j < p.vc; j += WG) {
    let x = f32(logits[base + j]);
    if (x > acc.x) {
      acc = vec2f(x, acc.y * exp(acc.x - x) + 1.0);
    } else {
      acc.y += exp(x - acc.x);
    }
  }
  wmax[lid.x] = acc.x;
  wsum[lid.x] = acc.y;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) {
      let m = merge(vec2f(wmax[lid.x], wsum[lid.x]), vec2f(wmax[lid.x + s], wsum[lid.x + s]));
      wmax[lid.x] = m.x;
      wsum[lid.x] = m.y;
    }
    workgroupBarrier();
  }
  if (lid.x != 0u) { return; }
  var state = vec2f(wmax[0], wsum[0]);
  var target_logit = 0.0;
  if (p.first == 0u) {
    state = merge(vec2f(running[3u * row], running[3u * row + 1u]), state);
    target_logit = running[3u * row + 2u];
  }
  let t = targets[row];
  if (t != p.ignore_index && t >= i32(p.v0) && t < i32(p.v0 + p.vc)) {
    target_logit = f32(logits[base + u32(t) - p.v0]);
  }
  running[3u * row] = state.x;
  running[3u * row + 1u] = state.y;
  running[3u * row + 2u] = target_logit;
  if (p.last == 1u) {
    let row_lse = state.x + log(state.y);
    lse[row] = row_lse;
    if (t == p.ignore_index) {
      losses[row] = 0.0;
    } else if (t < 0 || t >= i32(p.V)) {
      // A target outside the vocabulary is a data bug: make it loud (non-finite loss) rather than silent.
      var nan_bits = 0x7fc00000u; // a var: a constant NaN is a WGSL compile error
      losses[row] = bitcast<f32>(nan_bits);
    } else {
      losses[row] = row_lse - target_logit;
    }
  }
}

var<workgroup> wtot: array<f32, WG>;

// One workgroup: loss[0] (+)= scale · Σ losses, summed in a fixed order (deterministic).
@compute @workgroup_size(WG)
fn ce_total(@builtin(local_invocation_id) lid: vec3u) {
  var acc = 0.0;
  for (var i = lid.x; i < p.N; i += WG) { acc += losses[i]; }
  wtot[lid.x] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) { wtot[lid.x] += wtot[lid.x + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u) {
    var total = p.scale * wtot[0];
    if (p.accumulate == 1u) { total += loss[0]; }
    loss[0] = total;
  }
}

// d = (exp(x − lse) − [v == target]) · scale for one element; 0 for ignored rows.
fn softmax_grad(row: u32, j: u32, x: f32) -> f32 {
  let t = targets[row];
  if (t == p.ignore_index) { return 0.0; }
  let onehot = select(0.0, 1.0, i32(p.v0 + j) == t);
  return (exp(x - lse[row]) - onehot) * p.scale;
}

// Whole logits given: dlogits (N, V) = softmax_grad(logits); one thread per element of the (N, vc) block.
@compute @workgroup_size(WG)
fn ce_softmax_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.N * p.vc) { return; }
  let row = i / p.vc;
  let j = i % p.vc;
  let at = row * p.row_stride + j;
  dlogits[at] = dlogit_t(softmax_grad(row, j, f32(logits[at])));
}

// Chunked path: the f32 logits chunk (N, vc) becomes dlogits in place (no second scratch).
@compute @workgroup_size(WG)
fn ce_softmax_grad_inplace(@builtin(global_invocation_id) gid: vec3u,
                           @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.N * p.vc) { return; }
  let row = i / p.vc;
  let j = i % p.vc;
  dchunk[i] = softmax_grad(row, j, dchunk[i]);
}
