// Causal self-attention with grouped-query heads, flash-attention style: the (T × T) score matrix is never
// stored; each workgroup holds one (BQ × BKV) block of it in workgroup memory at a time.
//
// Layouts (row-major, straight out of the q/k/v projections, so no transposes):
//   q, o, dq, dout   (B, Tq, H, D)        row (b, t, h) starts at ((b·Tq + t)·H + h)·D
//   k, v, dk, dv     (B, kv_cap, Hkv, D)  row (b, s, g) starts at ((b·kv_cap + s)·Hkv + g)·D
//   lse, delta       (B, H, Tq) f32       logsumexp of each score row; rowsum(dout ∘ o)
// Query head h reads kv head h / (H / Hkv). Query t sits at position q_offset + t and sees keys s ≤ that
// position (s < Tk); training has q_offset = 0 and Tk = Tq = kv_cap, a KV-cache decode step has Tq = 1.
//
// Storage type `qkv_t` (f16 or f32) for every tensor above except lse/delta; all arithmetic in f32.
// Every tensor is read and written as vec4<qkv_t>: D is a multiple of 4, so every row starts on a vec4.
//
// Thread layout: WG = 256 threads cover ROWS × (D/4), thread (r, c) owning one vec4 (4 dims) of row r of
// an accumulator in registers (o or dq: ROWS = BQ query rows; dk/dv: ROWS = BKV key rows). The host picks
// BQ·D = 1024 (forward, dq) or BKV·D = 1024 (dk/dv), and the other tile side so that all workgroup arrays
// fit in the 16 KiB every WebGPU device has.

const WG: u32 = 256u;
// A finite "minus infinity": WGSL gives no guarantees for inf arithmetic, and exp(-1e30 - m) is exactly 0.
const NEG_BIG: f32 = -1.0e30;

override HD4: u32 = 16u; // head dim / 4 (vec4s per row)
override BQ: u32 = 16u;  // query rows per tile
override BKV: u32 = 16u; // key rows per tile

struct Params {
  Tq: u32,       // queries per sequence
  Tk: u32,       // keys per sequence (= q_offset + Tq)
  H: u32,        // query heads
  Hkv: u32,      // kv heads, H % Hkv == 0
  q_offset: u32, // position of query 0
  kv_cap: u32,   // tokens per sequence in the k/v buffers (≥ Tk)
  rows: u32,     // B·H·Tq (delta launch)
  scale: f32,    // 1/√D
  // Loop trip counts, equal to the override constants HD4, BQ and BKV. Read from a uniform so that
  // LLVM-based drivers (lavapipe) do not fully unroll every loop: that cost ~10 s of compile per pipeline.
  hd4: u32,
  bq: u32,
  bkv: u32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;

// ---------------------------------------------------------------------------------------------- forward
// Workgroup (query tile, h, b). Online softmax over key blocks up to the causal limit: running row max m
// and row sum l in f32; when the max grows, o and l are rescaled by exp(m_old − m_new).

@group(0) @binding(1) var<storage, read> q: array<vec4<qkv_t>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<qkv_t>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<qkv_t>>;
@group(0) @binding(4) var<storage, read_write> o: array<vec4<qkv_t>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;

var<workgroup> q_tile: array<vec4f, BQ * HD4>;   // (BQ, D) queries of this tile
var<workgroup> kv_tile: array<vec4f, BKV * HD4>; // (BKV, D) keys, then values, of the current block
var<workgroup> s_tile: array<f32, BQ * BKV>;     // (BQ, BKV) scores, then probabilities
var<workgroup> row_m: array<f32, BQ>;
var<workgroup> row_l: array<f32, BQ>;
var<workgroup> row_alpha: array<f32, BQ>;

fn q_row(b: u32, t: u32, h: u32) -> u32 { return ((b * p.Tq + t) * p.H + h) * HD4; }
fn kv_row(b: u32, s: u32, g: u32) -> u32 { return ((b * p.kv_cap + s) * p.Hkv + g) * HD4; }
fn visible(t: u32, s: u32) -> bool { return t < p.Tq && s < p.Tk && s <= p.q_offset + t; }

// Keys (or values) [k0, k0 + BKV) of kv head g into kv_tile; rows past Tk load as 0.
fn load_kv(src_is_v: bool, b: u32, g: u32, k0: u32, lid: u32) {
  for (var i = lid; i < BKV * HD4; i += WG) {
    let s = k0 + i / HD4;
    var x = vec4f(0.0);
    if (s < p.Tk) {
      let at = kv_row(b, s, g) + i % HD4;
      if (src_is_v) { x = vec4f(v[at]); } else { x = vec4f(k[at]); }
    }
    kv_tile[i] = x;
  }
}

fn dot_rows(a: u32, b: u32) -> f32 { // q_tile row a · kv_tile row b
  var acc = 0.0;
  for (var c = 0u; c < p.hd4; c++) { acc += dot(q_tile[a * HD4 + c], kv_tile[b * HD4 + c]); }
  return acc;
}

// Runs the whole tile; leaves o (normalised) written and the row stats in row_m / row_l.
fn forward_tile(lid: u32, wid: vec3u) {
  let q0 = wid.x * BQ;
  let h = wid.y;
  let b = wid.z;
  let g = h / (p.H / p.Hkv);
  let r = lid / HD4;
  let c = lid % HD4;

  for (var i = lid; i < BQ * HD4; i += WG) {
    let t = q0 + i / HD4;
    var x = vec4f(0.0);
    if (t < p.Tq) { x = vec4f(q[q_row(b, t, h) + i % HD4]); }
    q_tile[i] = x;
  }
  if (lid < BQ) {
    row_m[lid] = NEG_BIG;
    row_l[lid] = 0.0;
  }
  // Keys up to the last query of the tile: blocks past the causal limit are skipped entirely.
  let last = p.q_offset + min(q0 + BQ, p.Tq) - 1u;
  let blocks = (min(last + 1u, p.Tk) + BKV - 1u) / BKV;
  var acc = vec4f(0.0);
  for (var kb = 0u; kb < blocks; kb++) {
    let k0 = kb * BKV;
    load_kv(false, b, g, k0, lid);
    workgroupBarrier();
    for (var e = lid; e < BQ * BKV; e += WG) {
      let i = e / BKV;
      let j = e % BKV;
      var s = NEG_BIG;
      if (visible(q0 + i, k0 + j)) { s = dot_rows(i, j) * p.scale; }
      s_tile[e] = s;
    }
    workgroupBarrier();
    load_kv(true, b, g, k0, lid); // scores are done with the keys: reuse the tile for values
    if (lid < BQ) {
      // One thread per row: BKV is small, and this keeps the max/sum order fixed (deterministic).
      let m_old = row_m[lid];
      var m_new = m_old;
      for (var j = 0u; j < p.bkv; j++) { m_new = max(m_new, s_tile[lid * BKV + j]); }
      var sum = 0.0;
      for (var j = 0u; j < p.bkv; j++) {
        let e = lid * BKV + j;
        let pr = select(0.0, exp(s_tile[e] - m_new), visible(q0 + lid, k0 + j));
        s_tile[e] = pr;
        sum += pr;
      }
      let alpha = exp(m_old - m_new); // 0 on the first block (m_old = NEG_BIG)
      row_alpha[lid] = alpha;
      row_l[lid] = row_l[lid] * alpha + sum;
      row_m[lid] = m_new;
    }
    workgroupBarrier();
    acc *= row_alpha[r];
    for (var j = 0u; j < p.bkv; j++) { acc += s_tile[r * BKV + j] * kv_tile[j * HD4 + c]; }
    workgroupBarrier();
  }
  let t = q0 + r;
  if (t < p.Tq) {
    // l ≥ 1: the row max contributes exp(0), and key 0 is visible to every query.
    o[q_row(b, t, h) + c] = vec4<qkv_t>(acc / row_l[r]);
  }
}

@compute @workgroup_size(WG)
fn attention_forward(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  forward_tile(lid, wid);
  let t = wid.x * BQ + lid;
  if (lid < BQ && t < p.Tq) {
    lse[(wid.z * p.H + wid.y) * p.Tq + t] = row_m[lid] + log(row_l[lid]);
  }
}

// Inference (KV-cache decode or prefill): the same tile, no logsumexp saved (so no lse binding).
@compute @workgroup_size(WG)
fn attention_forward_infer(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  forward_tile(lid, wid);
}

// --------------------------------------------------------------------------------------------- backward
// FlashAttention-2: delta = rowsum(dout ∘ o); then P = exp(s − lse) is recomputed from q, k and lse, and
//   dv = Pᵀ·dout,  dP = dout·vᵀ,  dS = P ∘ (dP − delta),  dq = scale·dS·k,  dk = scale·dSᵀ·q.
// dq, dk and dv are overwritten (q, k and v are activations). Training layout only: q_offset = 0, Tk = Tq.

@group(0) @binding(6) var<storage, read> dout: array<vec4<qkv_t>>;
@group(0) @binding(7) var<storage, read_write> delta: array<f32>;
@group(0) @binding(8) var<storage, read_write> dq: array<vec4<qkv_t>>;
@group(0) @binding(9) var<storage, read_write> dk: array<vec4<qkv_t>>;
@group(0) @binding(10) var<storage, read_write> dv: array<vec4<qkv_t>>;

// One thread per (b, h, t) row; the flat row index is (b·H + h)·Tq + t, the layout of delta itself.
@compute @workgroup_size(WG)
fn attention_backward_delta(@builtin(global_invocation_id) gid: vec3u,
                            @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.rows) { return; }
  let t = i % p.Tq;
  let h = (i / p.Tq) % p.H;
  let b = i / (p.Tq * p.H);
  let at = q_row(b, t, h);
  var acc = 0.0;
  for (var c = 0u; c < p.hd4; c++) { acc += dot(vec4f(dout[at + c]), vec4f(o[at + c])); }
  delta[i] = acc;
}

var<workgroup> do_tile: array<vec4f, BQ * HD4>;  // (BQ, D) dout rows of the query tile
var<workgroup> v_tile: array<vec4f, BKV * HD4>;  // (BKV, D) values (dk/dv kernel; keys live in kv_tile)
var<workgroup> ds_tile: array<f32, BQ * BKV>;    // (BQ, BKV) dS (s_tile holds P in the dk/dv kernel)
var<workgroup> row_lse: array<f32, BQ>;
var<workgroup> row_delta: array<f32, BQ>;

fn do_dot_kv(a: u32, b: u32) -> f32 { // do_tile row a · kv_tile row b
  var acc = 0.0;
  for (var c = 0u; c < p.hd4; c++) { acc += dot(do_tile[a * HD4 + c], kv_tile[b * HD4 + c]); }
  return acc;
}

fn load_q_do(b: u32, h: u32, q0: u32, lid: u32) {
  for (var i = lid; i < BQ * HD4; i += WG) {
    let t = q0 + i / HD4;
    var x = vec4f(0.0);
    var y = vec4f(0.0);
    if (t < p.Tq) {
      let at = q_row(b, t, h) + i % HD4;
      x = vec4f(q[at]);
      y = vec4f(dout[at]);
    }
    q_tile[i] = x;
    do_tile[i] = y;
  }
  if (lid < BQ) {
    let t = q0 + lid;
    let at = (b * p.H + h) * p.Tq + min(t, p.Tq - 1u);
    row_lse[lid] = select(0.0, lse[at], t < p.Tq);
    row_delta[lid] = select(0.0, delta[at], t < p.Tq);
  }
}

// Workgroup (query tile, h, b); thread (r, c) accumulates dq[r][4c..4c+4) over the key blocks it sees.
// Keys and values share kv_tile: values first (dP), then keys (P and dS, then dq += dS·k).
@compute @workgroup_size(WG)
fn attention_backward_dq(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let q0 = wid.x * BQ;
  let h = wid.y;
  let b = wid.z;
  let g = h / (p.H / p.Hkv);
  let r = lid / HD4;
  let c = lid % HD4;
  load_q_do(b, h, q0, lid);
  let blocks = (min(q0 + BQ, p.Tq) + BKV - 1u) / BKV;
  var acc = vec4f(0.0);
  for (var kb = 0u; kb < blocks; kb++) {
    let k0 = kb * BKV;
    load_kv(true, b, g, k0, lid);
    workgroupBarrier();
    for (var e = lid; e < BQ * BKV; e += WG) { ds_tile[e] = do_dot_kv(e / BKV, e % BKV); }
    workgroupBarrier();
    load_kv(false, b, g, k0, lid);
    workgroupBarrier();
    for (var e = lid; e < BQ * BKV; e += WG) { // each thread rewrites only the entries it wrote above
      let i = e / BKV;
      let j = e % BKV;
      var ds = 0.0;
      if (visible(q0 + i, k0 + j)) {
        let pr = exp(dot_rows(i, j) * p.scale - row_lse[i]);
        ds = pr * (ds_tile[e] - row_delta[i]);
      }
      ds_tile[e] = ds;
    }
    workgroupBarrier();
    for (var j = 0u; j < p.bkv; j++) { acc += ds_tile[r * BKV + j] * kv_tile[j * HD4 + c]; }
    workgroupBarrier();
  }
  let t = q0 + r;
  if (t < p.Tq) { dq[q_row(b, t, h) + c] = vec4<qkv_t>(acc * p.scale); }
}

// Workgroup (key tile, kv head g, b): loops over the H/Hkv query heads of its group and every query tile
// at or after its keys, so the group sum of dk/dv happens in registers — no float atomics, and a fixed
// order (deterministic). Thread (j, c) accumulates dk[j][4c..4c+4) and dv[j][4c..4c+4).
@compute @workgroup_size(WG)
fn attention_backward_dkdv(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let k0 = wid.x * BKV;
  let g = wid.y;
  let b = wid.z;
  let group = p.H / p.Hkv;
  let j = lid / HD4;
  let c = lid % HD4;
  load_kv(false, b, g, k0, lid);
  for (var i = lid; i < BKV * HD4; i += WG) {
    let s = k0 + i / HD4;
    var x = vec4f(0.0);
    if (s < p.Tk) { x = vec4f(v[kv_row(b, s, g) + i % HD4]); }
    v_tile[i] = x;
  }
  var acc_k = vec4f(0.0);
  var acc_v = vec4f(0.0);
  let tiles = (p.Tq + BQ - 1u) / BQ;
  for (var hi = 0u; hi < group; hi++) {
    let h = g * group + hi;
    for (var qt = k0 / BQ; qt < tiles; qt++) { // earlier query tiles cannot see these keys
      let q0 = qt * BQ;
      workgroupBarrier(); // the previous tile's P and dS have been consumed
      load_q_do(b, h, q0, lid);
      workgroupBarrier();
      for (var e = lid; e < BQ * BKV; e += WG) {
        let i = e / BKV;
        let jj = e % BKV;
        var pr = 0.0;
        var ds = 0.0;
        if (visible(q0 + i, k0 + jj)) {
          pr = exp(dot_rows(i, jj) * p.scale - row_lse[i]);
          var dp = 0.0;
          for (var cc = 0u; cc < p.hd4; cc++) { dp += dot(do_tile[i * HD4 + cc], v_tile[jj * HD4 + cc]); }
          ds = pr * (dp - row_delta[i]);
        }
        s_tile[e] = pr;
        ds_tile[e] = ds;
      }
      workgroupBarrier();
      for (var i = 0u; i < p.bq; i++) {
        acc_v += s_tile[i * BKV + j] * do_tile[i * HD4 + c];
        acc_k += ds_tile[i * BKV + j] * q_tile[i * HD4 + c];
      }
    }
  }
  let s = k0 + j;
  if (s < p.Tk) {
    let at = kv_row(b, s, g) + c;
    dk[at] = vec4<qkv_t>(acc_k * p.scale);
    dv[at] = vec4<qkv_t>(acc_v);
  }
}
