// Cross-entropy over a vocabulary processed in chunks, so the (N, V) logits matrix never exists whole.
// The host computes one chunk of logits at a time, z (N, vc) = h (N, C) · W[v0 : v0+vc]ᵀ, into an f32 scratch and
// runs one workgroup per row over it. Each row keeps running statistics across chunks (the online softmax of
// Milakov & Gimelshein): the max m, the sum l of exp(z − m), and its target's logit.
//   ce_chunk (evaluation): m' = max(m, max_j z_j), l' = exp(m − m')·l + Σ_j exp(z_j − m').
//   ce_chunk_train (fused training): the same, and z becomes P = exp(z − m') in place, α = exp(m − m') is saved
//     for the host's G ← α∘G + P·W_chunk (one matmul, α its per-row β), and the target's row of W is copied out of the chunk's slice (the
//     finishing kernel then needs no binding of the whole W, which can exceed the storage binding limit).
//   On the last chunk both write lse = m + log l and the row loss lse − z_target (0 for ignored rows).
//   ce_grad: dh = scale · (G / l − W[target]), 0 on ignored rows.
//   ce_total: loss[0] (+)= scale · Σ row losses.
// ce_softmax_grad(_inplace) is the unfused backward: dlogits = (softmax − onehot)·scale from a saved lse.
// Row reductions (max and sum over a workgroup) come last in two versions: the host keeps one of them, the
// workgroup tree everywhere or the subgroup one (with `enable subgroups;`) where the device has the feature.
// Storage: logits `logit_t` (f32 for the chunk scratch), dlogits `dlogit_t`, W `w_t`, dh `dh_t`, everything
// else f32/i32; arithmetic in f32.

override WG: u32 = 256; // a power of two: the tree reduction halves it

struct Params {
  N: u32,          // rows (tokens)
  V: u32,          // whole vocabulary: targets are in [0, V) or the ignore index
  v0: u32,         // first vocabulary entry of this chunk
  vc: u32,         // entries in this chunk
  row_stride: u32, // elements between rows of `logits` (vc for the chunk scratch, V for whole logits)
  first: u32,      // 1 on the first chunk: start the running statistics (the scratch holds garbage)
  last: u32,       // 1 on the last chunk: write lse and the row losses
  ignore_index: i32,
  scale: f32,      // ce_total: 1/normaliser; softmax_grad, ce_grad: lossScale/normaliser
  accumulate: u32, // ce_total: 1 adds into loss[0] (micro-batches), 0 overwrites
  C: u32,          // hidden size (ce_chunk_train, ce_grad)
  stat_stride: u32, // elements between the statistics arrays in `stats`
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> targets: array<i32>;          // (N)
// read_write although ce_chunk only reads it: the chunk scratch holds the logits and `stats` in one buffer, and
// WebGPU forbids read-only and writable bindings of one buffer in one dispatch (two writable ones are allowed).
@group(0) @binding(2) var<storage, read_write> logits: array<logit_t>; // (N, row_stride), columns v0..v0+vc
// Four (N) arrays stat_stride apart: 0 max m, 1 sum l, 2 target logit, 3 α of the last chunk (training only).
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;
@group(0) @binding(4) var<storage, read_write> lse: array<f32>;        // (N)
@group(0) @binding(5) var<storage, read_write> losses: array<f32>;     // (N)
@group(0) @binding(6) var<storage, read_write> loss: array<f32>;       // (1)
@group(0) @binding(7) var<storage, read_write> dlogits: array<dlogit_t>; // (N, row_stride)
@group(0) @binding(8) var<storage, read_write> dchunk: array<f32>;     // (N, vc), in place
@group(0) @binding(9) var<storage, read> w_chunk: array<w_t>;          // (vc, C): W[v0 : v0+vc]
@group(0) @binding(10) var<storage, read_write> grad: array<f32>;      // (2, N, C): G, then W[target] rows
@group(0) @binding(11) var<storage, read_write> dh: array<dh_t>;       // (N, C)

const NEG_INF: f32 = -3.4028234663852886e38; // finite stand-in: inf − inf would give NaN in exp(m − m')
const STAT_MAX = 0u;
const STAT_SUM = 1u;
const STAT_TARGET = 2u;
const STAT_ALPHA = 3u;

var<workgroup> red: array<f32, WG>;   // the reductions' partials
var<workgroup> target_logit: f32;     // handed from the thread that reads it to thread 0

fn row_of(wid: vec3u, groups: vec3u) -> u32 {
  return wid.x + wid.y * groups.x;
}

fn stat(k: u32, row: u32) -> u32 {
  return k * p.stat_stride + row;
}

fn in_chunk(t: i32) -> bool {
  return t != p.ignore_index && t >= i32(p.v0) && t < i32(p.v0 + p.vc);
}

// The new running max m' of `row` over the previous chunks and this one (a workgroup reduction: every thread
// gets it). The thread that reads the target's logit hands it to thread 0 through `target_logit`: reading it
// there, rather than in thread 0, orders the read before that same thread overwrites it with P.
fn chunk_max(row: u32, base: u32, lid: u32) -> f32 {
  var x = NEG_INF;
  if (lid == 0u && p.first == 0u) { x = stats[stat(STAT_MAX, row)]; }
  let t = targets[row];
  let jt = select(p.vc, u32(t - i32(p.v0)), in_chunk(t));
  for (var j = lid; j < p.vc; j += WG) {
    let z = f32(logits[base + j]);
    if (j == jt) { target_logit = z; }
    x = max(x, z);
  }
  return wg_max(x, lid);
}

// Thread 0 only: folds this chunk's Σ exp(z − m') into the row's statistics; on the last chunk writes lse and the
// row loss. Returns α = exp(m − m'), the factor the previous chunks' sums (and G) are rescaled by.
fn update_stats(row: u32, m_new: f32, chunk_sum: f32) -> f32 {
  var m_old = NEG_INF;
  var l_old = 0.0;
  var z_t = 0.0;
  if (p.first == 0u) {
    m_old = stats[stat(STAT_MAX, row)];
    l_old = stats[stat(STAT_SUM, row)];
    z_t = stats[stat(STAT_TARGET, row)];
  }
  let t = targets[row];
  if (in_chunk(t)) { z_t = target_logit; }
  let a = exp(m_old - m_new);
  let l_new = a * l_old + chunk_sum;
  stats[stat(STAT_MAX, row)] = m_new;
  stats[stat(STAT_SUM, row)] = l_new;
  stats[stat(STAT_TARGET, row)] = z_t;
  if (p.last == 1u) {
    let row_lse = m_new + log(l_new);
    lse[row] = row_lse;
    if (t == p.ignore_index) {
      losses[row] = 0.0;
    } else if (t < 0 || t >= i32(p.V)) {
      // A target outside the vocabulary is a data bug: make it loud (non-finite loss) rather than silent.
      var nan_bits = 0x7fc00000u; // a var: a constant NaN is a WGSL compile error
      losses[row] = bitcast<f32>(nan_bits);
    } else {
      losses[row] = row_lse - z_t;
    }
  }
  return a;
}

// Evaluation: one workgroup per row updates (m, l, target logit); the logits are only read.
@compute @workgroup_size(WG)
fn ce_chunk(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
            @builtin(num_workgroups) groups: vec3u) {
  let row = row_of(wid, groups);
  if (row >= p.N) { return; } // uniform per workgroup, so the barriers below stay uniform
  let base = row * p.row_stride;
  let m_new = chunk_max(row, base, lid.x);
  var s = 0.0;
  for (var j = lid.x; j < p.vc; j += WG) { s += exp(f32(logits[base + j]) - m_new); }
  let chunk_sum = wg_sum(s, lid.x);
  if (lid.x == 0u) { _ = update_stats(row, m_new, chunk_sum); }
}

// Fused training: as ce_chunk, and the logits become P = exp(z − m') in place (the A operand of the host's
// G += P·W_chunk), α is saved for G's rescale, and the target's row of W is copied to grad[N·C + row·C ..].
@compute @workgroup_size(WG)
fn ce_chunk_train(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
                  @builtin(num_workgroups) groups: vec3u) {
  let row = row_of(wid, groups);
  if (row >= p.N) { return; }
  let base = row * p.row_stride;
  let m_new = chunk_max(row, base, lid.x);
  var s = 0.0;
  for (var j = lid.x; j < p.vc; j += WG) {
    let e = exp(f32(logits[base + j]) - m_new);
    logits[base + j] = logit_t(e);
    s += e;
  }
  let chunk_sum = wg_sum(s, lid.x);
  let t = targets[row];
  if (in_chunk(t)) {
    let src = u32(t - i32(p.v0)) * p.C;
    for (var c = lid.x; c < p.C; c += WG) { grad[p.N * p.C + row * p.C + c] = f32(w_chunk[src + c]); }
  }
  if (lid.x == 0u) { stats[stat(STAT_ALPHA, row)] = update_stats(row, m_new, chunk_sum); }
}

// dh (N, C) = scale · (G / l − W[target]): softmax·W is G/l, onehot·W the target's row. Ignored rows get 0;
// a target outside the vocabulary (its loss is NaN) gets G/l alone, as the unfused backward gives.
@compute @workgroup_size(WG)
fn ce_grad(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.N * p.C) { return; }
  let row = i / p.C;
  let t = targets[row];
  var d = 0.0;
  if (t != p.ignore_index) {
    d = grad[i] / stats[stat(STAT_SUM, row)];
    if (t >= 0 && t < i32(p.V)) { d -= grad[p.N * p.C + i]; }
    d *= p.scale;
  }
  dh[i] = dh_t(d);
}

// One workgroup: loss[0] (+)= scale · Σ losses, summed in a fixed order (deterministic).
@compute @workgroup_size(WG)
fn ce_total(@builtin(local_invocation_id) lid: vec3u) {
  var acc = 0.0;
  for (var i = lid.x; i < p.N; i += WG) { acc += losses[i]; }
  let sum = wg_sum(acc, lid.x);
  if (lid.x == 0u) {
    var total = p.scale * sum;
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

// Unfused chunked backward: the f32 logits chunk (N, vc) becomes dlogits in place (no second scratch).
@compute @workgroup_size(WG)
fn ce_softmax_grad_inplace(@builtin(global_invocation_id) gid: vec3u,
                           @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.N * p.vc) { return; }
  let row = i / p.vc;
  let j = i % p.vc;
  dchunk[i] = softmax_grad(row, j, dchunk[i]);
}

// ---- reductions: workgroup tree ----
// wg_max / wg_sum: every thread passes its partial and gets the workgroup's result. Call from uniform control
// flow. The trailing barrier lets the next reduction reuse `red`.

fn wg_max(x: f32, lid: u32) -> f32 {
  red[lid] = x;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] = max(red[lid], red[lid + s]); }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

fn wg_sum(x: f32, lid: u32) -> f32 {
  red[lid] = x;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[0];
  workgroupBarrier();
  return r;
}

// ---- reductions: subgroups ----
// Each subgroup reduces in registers, its first active lane posts the result in its own slot of `red` (every
// other slot gets the identity), and after one barrier every subgroup folds all WG slots, its lanes striding by
// the subgroup size. Lane numbers and sizes come from subgroupExclusiveAdd / subgroupAdd rather than from how
// the device lays subgroups out over the workgroup, which WGSL does not promise.

fn wg_max(x: f32, lid: u32) -> f32 {
  let lane = subgroupExclusiveAdd(1u);
  let size = subgroupAdd(1u);
  let s = subgroupMax(x);
  red[lid] = select(NEG_INF, s, lane == 0u);
  workgroupBarrier();
  var y = NEG_INF;
  for (var i = lane; i < WG; i += size) { y = max(y, red[i]); }
  let r = subgroupMax(y);
  workgroupBarrier();
  return r;
}

fn wg_sum(x: f32, lid: u32) -> f32 {
  let lane = subgroupExclusiveAdd(1u);
  let size = subgroupAdd(1u);
  let s = subgroupAdd(x);
  red[lid] = select(0.0, s, lane == 0u);
  workgroupBarrier();
  var y = 0.0;
  for (var i = lane; i < WG; i += size) { y += red[i]; }
  let r = subgroupAdd(y);
  workgroupBarrier();
  return r;
}
