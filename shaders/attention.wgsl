// Causal self-attention with grouped-query heads, FlashAttention-2 style: the (T × T) score matrix is never
// stored; a workgroup holds one block of it (in registers, then workgroup memory) at a time.
//
// Tensors, storage type qkv_t (f16 or f32; all arithmetic in f32), read and written as vec4<qkv_t>:
//   q, out, dq, dout  query token (b, t), head h      at vec4 (b·Tq + t)·rs + co + h·HD4
//   k, v, dk, dv      key token (b, s), kv head g     at vec4 (b·kv_cap + s)·rs + co + g·HD4
// rs (row stride, between tokens) and co (column offset) come per tensor in the uniforms, in vec4s: packed
// (B, T, H, D) has rs = H·D/4 and co = 0; a fused row [q | k | v] of (H + 2·Hkv)·D elements has rs =
// (H + 2·Hkv)·D/4 for all three and co = 0, H·D/4, (H + Hkv)·D/4.
//   lse      (B, H, Tq) f32   logsumexp of each score row (forward output, backward input)
//   stats    f32 backward scratch: [SCRATCH_FREQ floats: copy of inv_freq][(B, H, Tq) delta = rowsum(dout∘out)]
//            and, on the spill path, [(B, Hkv, Tq·G, Tk) scale·dS], query row f of a kv head by key s
//
// Query rows of a kv head: the G = H/Hkv query heads sharing kv head g are packed as the rows f = t·G + j
// (h = g·G + j) of one (Tq·G × D) matrix, so each K/V block a workgroup loads serves all G heads (and a decode
// step with Tq = 1 still fills G rows). Query t sits at position q_offset + t and sees keys s ≤ that, s < Tk,
// with s > position − window (sliding-window attention, as Hugging Face's sliding_window masks: the last
// `window` keys; window = Tk for global causal attention). Every kernel walks only the key (or query) blocks
// its tile can see, so a window makes long sequences cheaper; entries of those blocks outside it are masked.
//
// Optional RoPE (override ROPE): q and k are rotated (HF rotate_half: pairs (i, i + D/2)) as they are loaded
// into workgroup memory, query t at position pos_base + q_offset + t and key s at pos_base + s; the backward
// rotates dq and dk back (the transpose) before storing them. inv_freq (D/2 f32) comes from the host.
//
// Tiles and threads. A workgroup owns NR "rows" (queries in the forward and dq kernels, keys in dk/dv) and
// walks over blocks of NC "columns" (keys; queries in dk/dv). WG threads take two layouts:
//   S (scores): thread (rg, tc) = (lid / TPR, lid % TPR) computes the 4 × CB block of dot products between rows
//     4rg..4rg+3 and columns tc, tc + TPR, …, tc + (CB−1)·TPR, reading 4 + CB vec4s per 4·CB dot4s. Columns
//     are strided so that neighbouring threads read neighbouring rows. S_THREADS = NR/4 · TPR ≤ WG threads
//     take part (the rest recompute a clamped block and store nothing).
//   O (accumulators): thread (og, oc) = (lid / OCT, lid % OCT), OCT = HD4/CO, owns rows 4og..4og+3 × vec4
//     columns oc, oc + OCT, … (CO of them) of the output in registers; WG = NR/4 · OCT exactly.
// Between them P (or dS) goes through workgroup memory as one vec4 per (column, row group) — the 4 rows of a
// group — which the S layout writes and the O layout reads with one access each.
//
// Workgroup memory: a pool `sh` of vec4<tile_t> for the D-long rows of q, k, v, dout (tile_t = f16 with f16
// data on GPUs: half the bytes, so twice the rows fit, and exact copies of what the unfused path would read;
// f32 otherwise), and a pool `shf` of vec4f for P, dS and row statistics. Rows are padded to RS = HD4 + 1
// vec4s: HD4 is even (D is a multiple of 8), so RS is odd and consecutive rows read at one column fall in
// different bank groups (no bank conflicts on K/V rows, for 16- and 8-byte vec4s alike). P tiles are padded
// to PS = NR/4 + 1 for the same reason. The host sizes NR/NC/… from the device's maxComputeWorkgroupStorageSize;
// attentionSharedBytes() in attention.ts mirrors the regions listed at the top of each kernel below.
//
// Loops over tile elements run to uniform bounds (p.hd4, p.nc, p.tpr, …), not to the override constants that
// equal them: LLVM-based drivers (lavapipe) fully unroll loops of known trip count, and then compile for
// seconds per pipeline. The small loops over the 4 rows / CB / CO entries of a thread are unrolled on purpose
// (their values live in registers).

// A finite "minus infinity": WGSL gives no guarantees for inf arithmetic, and exp(-1e30 - m) is exactly 0.
const NEG_BIG: f32 = -1.0e30;
// f32s at the start of the backward scratch that hold a copy of inv_freq (D/2 ≤ 128).
const SCRATCH_FREQ: u32 = 128u;

override HD4: u32 = 16u; // D / 4
override NR: u32 = 32u;  // rows per workgroup (multiple of 4)
override NC: u32 = 32u;  // columns per block (= TPR · CB)
override TPR: u32 = 16u; // S-layout threads per row group
override CB: u32 = 2u;   // S-layout columns per thread (≤ 4)
override CO: u32 = 1u;   // O-layout vec4 columns per thread (≤ 4)
override WG: u32 = 128u; // threads = NR/4 · HD4/CO
override SH: u32 = 1u;   // vec4s of the row pool `sh` (per kernel, see the region lists below)
override SHF: u32 = 1u;  // vec4s of the f32 pool `shf`
override NCS: u32 = 1u;  // entries of the per-column stats (dk/dv kernel: NC)
override ROPE: bool = false;

override OCT: u32 = HD4 / CO;
override RS: u32 = HD4 + 1u;
override PS: u32 = NR / 4u + 1u;
override S_THREADS: u32 = NR / 4u * TPR;
override H2: u32 = HD4 / 2u; // vec4s in half a row (the RoPE partner of column c is c + H2)

struct Params {
  Tq: u32,       // queries per sequence
  Tk: u32,       // keys per sequence (= q_offset + Tq)
  H: u32,        // query heads
  Hkv: u32,      // kv heads
  G: u32,        // H / Hkv
  rows: u32,     // Tq · G: query rows per (b, kv head)
  q_offset: u32, // position of query 0 among the keys
  kv_cap: u32,   // tokens per sequence in the k/v buffers (≥ Tk)
  pos_base: u32, // RoPE position of key 0
  scale: f32,    // 1/√D
  hd4: u32,      // = HD4, as a uniform loop bound
  nc: u32,       // = NC, as a uniform loop bound
  drows: u32,    // B · H · Tq (delta kernel)
  h2: u32,       // = H2 = HD4 / 2
  tpr: u32,      // = TPR
  window: u32,   // keys a query sees: positions pos − window < s ≤ pos (1 ≤ window ≤ Tk; Tk = global)
  // Row stride and column offset, in vec4s, of q, k, v, out, dout, dq, dk, dv.
  q_rs: u32, q_co: u32, k_rs: u32, k_co: u32, v_rs: u32, v_co: u32, o_rs: u32, o_co: u32,
  do_rs: u32, do_co: u32, dq_rs: u32, dq_co: u32, dk_rs: u32, dk_co: u32, dv_rs: u32, dv_co: u32,
}

// Each entry point names only the bindings it uses (at most 8 storage buffers: the WebGPU minimum). `freq` is
// named even without RoPE (dead code then): the host binds a read-only input in its place.
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<vec4<qkv_t>>;
@group(0) @binding(2) var<storage, read> k: array<vec4<qkv_t>>;
@group(0) @binding(3) var<storage, read> v: array<vec4<qkv_t>>;
@group(0) @binding(4) var<storage, read_write> o: array<vec4<qkv_t>>;
@group(0) @binding(5) var<storage, read_write> lse: array<f32>;
@group(0) @binding(6) var<storage, read> freq: array<vec4f>;            // inv_freq (D/2)
@group(0) @binding(7) var<storage, read> o_in: array<vec4<qkv_t>>;      // out, read by the delta kernel
@group(0) @binding(8) var<storage, read> dout: array<vec4<qkv_t>>;
@group(0) @binding(9) var<storage, read_write> stats: array<f32>;       // scratch: delta kernel; spilling, dS too
@group(0) @binding(10) var<storage, read> stats_in: array<f32>;         // scratch, read by dq and dk/dv
@group(0) @binding(11) var<storage, read> lse_in: array<f32>;
@group(0) @binding(12) var<storage, read_write> dq: array<vec4<qkv_t>>;
@group(0) @binding(13) var<storage, read_write> dk: array<vec4<qkv_t>>;
@group(0) @binding(14) var<storage, read_write> dv: array<vec4<qkv_t>>;
@group(0) @binding(15) var<storage, read_write> dkv: array<vec4<qkv_t>>; // dk and dv in one buffer

var<workgroup> sh: array<vec4<tile_t>, SH>;
var<workgroup> shf: array<vec4f, SHF>;
var<workgroup> freq_sh: array<vec4f, H2>;   // inv_freq, when ROPE
var<workgroup> col_stats: array<vec2f, NCS>; // dk/dv kernel: (lse, delta) of each query column

// Forward row statistics of the O layout's 4 rows, for the lse store by the entry point.
var<private> row_m: vec4f;
var<private> row_l: vec4f;

// ------------------------------------------------------------------------------------------ addressing

fn q_row(f: u32, b: u32, g: u32, rs: u32, co: u32) -> u32 {
  let t = f / p.G;
  let h = g * p.G + f % p.G;
  return (b * p.Tq + t) * rs + co + h * HD4;
}
fn k_row(s: u32, b: u32, g: u32, rs: u32, co: u32) -> u32 { return (b * p.kv_cap + s) * rs + co + g * HD4; }
fn q_pos(f: u32) -> u32 { return p.q_offset + f / p.G; }
// Index of (b, h, t) for query row f in lse and delta: (b·H + h)·Tq + t.
fn stat_index(f: u32, b: u32, g: u32) -> u32 { return (b * p.H + g * p.G + f % p.G) * p.Tq + f / p.G; }

// Rotates the pair (x1 = dims 4c..4c+3, x2 = dims 4c+D/2..) by `sign` · pos · inv_freq.
fn rope_pair(x1: vec4f, x2: vec4f, pos: u32, c: u32, sign: f32) -> array<vec4f, 2> {
  let cs = rope_cos_sin4(p.pos_base + pos, freq_sh[c]);
  let sn = sign * cs[1];
  return array<vec4f, 2>(x1 * cs[0] - x2 * sn, x2 * cs[0] + x1 * sn);
}

// ----------------------------------------------------------------------------------------------- loads
// Each loads `n` rows starting at row f0 (query rows) or s0 (keys) into sh[at..] with row stride RS; rows
// past the end load as 0 (so 0·P stays 0, never NaN from unwritten memory).

fn load_q(at: u32, f0: u32, n: u32, b: u32, g: u32, lid: u32) {
  if (ROPE) {
    for (var i = lid; i < n * p.h2; i += WG) {
      let r = i / H2;
      let c = i % H2;
      var x = array<vec4f, 2>();
      if (f0 + r < p.rows) {
        let a = q_row(f0 + r, b, g, p.q_rs, p.q_co) + c;
        x = rope_pair(vec4f(q[a]), vec4f(q[a + H2]), q_pos(f0 + r), c, 1.0);
      }
      sh[at + r * RS + c] = vec4<tile_t>(x[0]);
      sh[at + r * RS + c + H2] = vec4<tile_t>(x[1]);
    }
  } else {
    for (var i = lid; i < n * p.hd4; i += WG) {
      let r = i / HD4;
      var x = vec4<qkv_t>();
      if (f0 + r < p.rows) { x = q[q_row(f0 + r, b, g, p.q_rs, p.q_co) + i % HD4]; }
      sh[at + r * RS + i % HD4] = vec4<tile_t>(x);
    }
  }
}

fn load_dout(at: u32, f0: u32, n: u32, b: u32, g: u32, lid: u32) {
  for (var i = lid; i < n * p.hd4; i += WG) {
    let r = i / HD4;
    var x = vec4<qkv_t>();
    if (f0 + r < p.rows) { x = dout[q_row(f0 + r, b, g, p.do_rs, p.do_co) + i % HD4]; }
    sh[at + r * RS + i % HD4] = vec4<tile_t>(x);
  }
}

fn load_k(at: u32, s0: u32, n: u32, b: u32, g: u32, lid: u32) {
  if (ROPE) {
    for (var i = lid; i < n * p.h2; i += WG) {
      let r = i / H2;
      let c = i % H2;
      var x = array<vec4f, 2>();
      if (s0 + r < p.Tk) {
        let a = k_row(s0 + r, b, g, p.k_rs, p.k_co) + c;
        x = rope_pair(vec4f(k[a]), vec4f(k[a + H2]), s0 + r, c, 1.0);
      }
      sh[at + r * RS + c] = vec4<tile_t>(x[0]);
      sh[at + r * RS + c + H2] = vec4<tile_t>(x[1]);
    }
  } else {
    for (var i = lid; i < n * p.hd4; i += WG) {
      let r = i / HD4;
      var x = vec4<qkv_t>();
      if (s0 + r < p.Tk) { x = k[k_row(s0 + r, b, g, p.k_rs, p.k_co) + i % HD4]; }
      sh[at + r * RS + i % HD4] = vec4<tile_t>(x);
    }
  }
}

fn load_v(at: u32, s0: u32, n: u32, b: u32, g: u32, lid: u32) {
  for (var i = lid; i < n * p.hd4; i += WG) {
    let r = i / HD4;
    var x = vec4<qkv_t>();
    if (s0 + r < p.Tk) { x = v[k_row(s0 + r, b, g, p.v_rs, p.v_co) + i % HD4]; }
    sh[at + r * RS + i % HD4] = vec4<tile_t>(x);
  }
}

// ------------------------------------------------------------------------------------ the two matmuls

// The small per-thread loops below (the CB columns, the CO vec4 columns) are written out with literal
// indices: every compiler then keeps the 4·CB scores and 4·CO accumulators in registers, and none has to
// unroll a loop or index a private array dynamically (SwiftShader would build it in memory, slowly).

// S layout: column w = (rows 4rg..4rg+3 of the tile at a_at) · (row tc + w·TPR of the tile at b_at), w < CB.
fn block_dots(a_at: u32, b_at: u32, rg: u32, tc: u32) -> mat4x4f {
  var s0 = vec4f(0.0);
  var s1 = vec4f(0.0);
  var s2 = vec4f(0.0);
  var s3 = vec4f(0.0);
  let a = a_at + 4u * rg * RS;
  let b = b_at + tc * RS;
  for (var c = 0u; c < p.hd4; c++) {
    let a0 = vec4f(sh[a + c]);
    let a1 = vec4f(sh[a + RS + c]);
    let a2 = vec4f(sh[a + 2u * RS + c]);
    let a3 = vec4f(sh[a + 3u * RS + c]);
    let x0 = vec4f(sh[b + c]);
    s0 += vec4f(dot(a0, x0), dot(a1, x0), dot(a2, x0), dot(a3, x0));
    if (CB > 1u) {
      let x1 = vec4f(sh[b + TPR * RS + c]);
      s1 += vec4f(dot(a0, x1), dot(a1, x1), dot(a2, x1), dot(a3, x1));
    }
    if (CB > 2u) {
      let x2 = vec4f(sh[b + 2u * TPR * RS + c]);
      s2 += vec4f(dot(a0, x2), dot(a1, x2), dot(a2, x2), dot(a3, x2));
    }
    if (CB > 3u) {
      let x3 = vec4f(sh[b + 3u * TPR * RS + c]);
      s3 += vec4f(dot(a0, x3), dot(a1, x3), dot(a2, x3), dot(a3, x3));
    }
  }
  return mat4x4f(s0, s1, s2, s3);
}

// O-layout accumulators of a thread: vec4 column w (oc + w·OCT) of its rows 4og + u is c<w>[u], so adding an
// outer product or scaling a row needs no index at all.
struct Acc {
  c0: mat4x4f,
  c1: mat4x4f,
  c2: mat4x4f,
  c3: mat4x4f,
}

// The 4 rows' weights pr times one vec4 column x: column u is pr[u] · x.
fn outer(pr: vec4f, x: vec4f) -> mat4x4f { return mat4x4f(pr.x * x, pr.y * x, pr.z * x, pr.w * x); }

// O layout: acc rows 4og..4og+3 += Σ_j pr[j] ⊗ (row j of the tile at b_at), pr[j] = shf[p_at + j·PS + og].
fn accumulate(a: ptr<function, Acc>, p_at: u32, b_at: u32, og: u32, oc: u32) {
  for (var j = 0u; j < p.nc; j++) {
    let pr = shf[p_at + j * PS + og];
    let b = b_at + j * RS + oc;
    (*a).c0 += outer(pr, vec4f(sh[b]));
    if (CO > 1u) { (*a).c1 += outer(pr, vec4f(sh[b + OCT])); }
    if (CO > 2u) { (*a).c2 += outer(pr, vec4f(sh[b + 2u * OCT])); }
    if (CO > 3u) { (*a).c3 += outer(pr, vec4f(sh[b + 3u * OCT])); }
  }
}

fn scale_cols(m: mat4x4f, f: vec4f) -> mat4x4f { return mat4x4f(m[0] * f.x, m[1] * f.y, m[2] * f.z, m[3] * f.w); }

// Rescales the accumulator rows: row u by f[u].
fn scale_rows(a: ptr<function, Acc>, f: vec4f) {
  (*a).c0 = scale_cols((*a).c0, f);
  (*a).c1 = scale_cols((*a).c1, f);
  (*a).c2 = scale_cols((*a).c2, f);
  (*a).c3 = scale_cols((*a).c3, f);
}

// Writes one vec4 column m (its 4 rows, row u scaled by mul[u]) at column c of rows 4og.. of the tile at `at`.
fn stage_col(m: mat4x4f, at: u32, og: u32, c: u32, mul: vec4f) {
  let x = at + 4u * og * RS + c;
  sh[x] = vec4<tile_t>(m[0] * mul.x);
  sh[x + RS] = vec4<tile_t>(m[1] * mul.y);
  sh[x + 2u * RS] = vec4<tile_t>(m[2] * mul.z);
  sh[x + 3u * RS] = vec4<tile_t>(m[3] * mul.w);
}

// Writes the O-layout accumulator, row u scaled by mul[u], as rows of the tile at `at` for the stores (in the
// storage type: the value stored, or for RoPE the value the unfused path would rotate).
fn stage(a: ptr<function, Acc>, at: u32, og: u32, oc: u32, mul: vec4f) {
  stage_col((*a).c0, at, og, oc, mul);
  if (CO > 1u) { stage_col((*a).c1, at, og, oc + OCT, mul); }
  if (CO > 2u) { stage_col((*a).c2, at, og, oc + 2u * OCT, mul); }
  if (CO > 3u) { stage_col((*a).c3, at, og, oc + 3u * OCT, mul); }
}

// Keys at `keys` seen from query position `pos`: causal and inside the window (pos − s wraps when s > pos,
// which the first test already excludes).
fn in_window(pos: vec4u, keys: vec4u) -> vec4<bool> {
  return (keys <= pos) & (pos - keys < vec4u(p.window));
}

// Visibility of column key s for the 4 query rows f0..f0+3 (forward and dq kernels).
fn visible_rows(f0: u32, s: u32) -> vec4<bool> {
  let f = vec4u(f0) + vec4u(0u, 1u, 2u, 3u);
  let pos = vec4u(p.q_offset) + f / vec4u(p.G);
  return (f < vec4u(p.rows)) & in_window(pos, vec4u(s)) & vec4<bool>(s < p.Tk);
}

// The first key block a query-row tile starting at row f0 sees: the window of its first row starts there.
fn first_key_block(f0: u32) -> u32 {
  let pos = q_pos(f0);
  return select(0u, (pos + 1u - p.window) / NC, pos + 1u > p.window);
}

fn load_freq_fwd(lid: u32) {
  if (ROPE) {
    for (var i = lid; i < H2; i += WG) { freq_sh[i] = freq[i]; }
    workgroupBarrier();
  }
}

fn load_freq_bwd(lid: u32) {
  if (ROPE) {
    for (var i = lid; i < H2; i += WG) {
      freq_sh[i] = vec4f(scratch(4u * i), scratch(4u * i + 1u), scratch(4u * i + 2u), scratch(4u * i + 3u));
    }
    workgroupBarrier();
  }
}

// Column w of a forward S block, scaled and masked (NEG_BIG where not visible, and for w ≥ CB).
fn fwd_scores(sw: vec4f, w: u32, fr: u32, col: u32) -> vec4f {
  if (w >= CB) { return vec4f(NEG_BIG); }
  return select(vec4f(NEG_BIG), sw * p.scale, visible_rows(fr, col));
}

// P of column w (0 for masked entries: exp(NEG_BIG − m) = 0), stored for the O layout; returns it for the
// row sums. `at` is the P slot of column 0 of this thread.
fn put_p(sw: vec4f, w: u32, m: vec4f, at: u32, s_on: bool) -> vec4f {
  if (w >= CB) { return vec4f(0.0); }
  let pr = exp(sw - m);
  if (s_on) { shf[at + w * TPR * PS] = pr; }
  return pr;
}

// -------------------------------------------------------------------------------------------- forward
// Workgroup (kv head g, b, row tile): the row tiles of the longest causal reach start first (z counts down),
// so heavy and light workgroups interleave over the whole launch. Online softmax over the key blocks up to
// the causal limit of the tile: running row max m and row sum l in f32; when the max grows, the
// accumulators and l are rescaled by exp(m_old − m_new). Each S thread keeps its own partial l (over its
// columns) and the partials are summed once at the end; only the max is reduced every block (row_max).
// With a window a row may see nothing of the tile's first blocks: its max stays NEG_BIG and its P entries are
// exp(0) = 1, but the block of its first visible key rescales l and the accumulators by exp(NEG_BIG − m) = 0.
//
// Regions (vec4s): sh: Q [NR·RS] | K [NC·RS] | V [NC·RS];  shf: P [NC·PS] | M [NR/4] | RED [S_THREADS].

fn forward_tile(lid: u32, wid: vec3u) -> u32 {
  let K_AT = NR * RS;
  let V_AT = K_AT + NC * RS;
  let P_AT = 0u;
  let M_AT = NC * PS;
  let RED_AT = M_AT + NR / 4u;
  let g = wid.x;
  let b = wid.y;
  let f0 = ((p.rows + NR - 1u) / NR - 1u - wid.z) * NR;

  load_freq_fwd(lid);
  load_q(0u, f0, NR, b, g, lid);
  let f_last = min(f0 + NR, p.rows) - 1u;
  let blocks = (min(q_pos(f_last) + 1u, p.Tk) + NC - 1u) / NC;

  let s_on = lid < S_THREADS;
  let rg = min(lid / TPR, NR / 4u - 1u);
  let tc = lid % TPR;
  let og = lid / OCT;
  let oc = lid % OCT;
  var m_s = vec4f(NEG_BIG); // S layout: running max of rows 4rg.. (the same values the O layout sees)
  var l_s = vec4f(0.0);     // S layout: partial row sums over this thread's columns
  var m_o = vec4f(NEG_BIG); // O layout: running max of rows 4og..
  var acc = Acc();          // O layout: rows 4og.. × vec4 columns oc + w·OCT
  for (var kb = first_key_block(f0); kb < blocks; kb++) {
    let k0 = kb * NC;
    load_k(K_AT, k0, NC, b, g, lid);
    load_v(V_AT, k0, NC, b, g, lid);
    workgroupBarrier();
    let s = block_dots(0u, K_AT, rg, tc);
    let fr = f0 + 4u * rg;
    let c0 = k0 + tc;
    let s0 = fwd_scores(s[0], 0u, fr, c0);
    let s1 = fwd_scores(s[1], 1u, fr, c0 + TPR);
    let s2 = fwd_scores(s[2], 2u, fr, c0 + 2u * TPR);
    let s3 = fwd_scores(s[3], 3u, fr, c0 + 3u * TPR);
    let m_new = max(m_s, row_max(max(max(s0, s1), max(s2, s3)), lid, RED_AT));
    l_s *= exp(m_s - m_new);
    m_s = m_new;
    let at = P_AT + tc * PS + rg;
    l_s += put_p(s0, 0u, m_new, at, s_on) + put_p(s1, 1u, m_new, at, s_on);
    l_s += put_p(s2, 2u, m_new, at, s_on) + put_p(s3, 3u, m_new, at, s_on);
    if (s_on && tc == 0u) { shf[M_AT + rg] = m_new; }
    workgroupBarrier();
    let m_o_new = shf[M_AT + og];
    let alpha = exp(m_o - m_o_new); // 0 on the first block (m_o = NEG_BIG)
    m_o = m_o_new;
    scale_rows(&acc, alpha);
    accumulate(&acc, P_AT, V_AT, og, oc);
    workgroupBarrier();
  }
  // Row sums: the TPR partials of each row group, added in a fixed order (deterministic).
  if (s_on) { shf[RED_AT + lid] = l_s; }
  workgroupBarrier();
  var l = vec4f(0.0);
  for (var i = 0u; i < p.tpr; i++) { l += shf[RED_AT + og * TPR + i]; }
  row_m = m_o;
  row_l = l;
  // l ≥ 1 for every real row (its max contributes exp(0)); padding rows are not stored.
  stage(&acc, 0u, og, oc, 1.0 / l);
  workgroupBarrier();
  for (var i = lid; i < NR * p.hd4; i += WG) {
    let f = f0 + i / HD4;
    if (f < p.rows) { o[q_row(f, b, g, p.o_rs, p.o_co) + i % HD4] = vec4<qkv_t>(sh[(i / HD4) * RS + i % HD4]); }
  }
  return f0;
}

@compute @workgroup_size(WG)
fn attention_forward(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let f0 = forward_tile(lid, wid);
  if (lid % OCT == 0u) {
    let stat = row_m + log(row_l);
    for (var u = 0u; u < 4u; u++) {
      let f = f0 + 4u * (lid / OCT) + u;
      if (f < p.rows) { lse[stat_index(f, wid.y, wid.x)] = stat[u]; }
    }
  }
}

// Inference (KV-cache decode or prefill): the same tile, no logsumexp saved (so no lse binding).
@compute @workgroup_size(WG)
fn attention_forward_infer(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  forward_tile(lid, wid);
}

// -------------------------------------------------------------------------------------------- backward
// FlashAttention-2: delta = rowsum(dout ∘ out); then P = exp(s − lse) is recomputed from q, k and lse, and
//   dv = Pᵀ·dout,  dP = dout·vᵀ,  dS = P ∘ (dP − delta),  dq = scale·dS·k,  dk = scale·dSᵀ·q.
// Two kernels recompute P and dP: dq per query tile, dk/dv per key tile (no float atomics, fixed summation
// order: deterministic). dq, dk and dv are overwritten. Training layout only: q_offset = 0, Tk = Tq.
// The spill path computes S and dP once: dk/dv runs first and also stores scale·dS in the scratch (f32: dS is
// P·(dP − delta), up to T times smaller than the dq it sums to, so f16 would flush it into subnormals), and a
// light dq kernel sums dq = (scale·dS)·k over the causal key blocks. The host keeps one of the two sections.

//#if recompute
fn scratch(i: u32) -> f32 { return stats_in[i]; }
fn put_ds(f: u32, keys: vec4u, b: u32, g: u32, x: vec4f) {}
//#endif
//#if spill
// The scratch bound read_write (binding 9): the dk/dv kernel then has 8 storage bindings, the WebGPU minimum.
fn scratch(i: u32) -> f32 { return stats[i]; }

// scale·dS of query row f and the 4 keys `keys` (consecutive), those in range. Literal indices, as in
// block_dots: no dynamic vector indexing.
fn put_ds(f: u32, keys: vec4u, b: u32, g: u32, x: vec4f) {
  if (f >= p.rows) { return; }
  let at = ds_index(f, keys.x, b, g);
  if (keys.x < p.Tk) { stats[at] = x.x; }
  if (keys.y < p.Tk) { stats[at + 1u] = x.y; }
  if (keys.z < p.Tk) { stats[at + 2u] = x.z; }
  if (keys.w < p.Tk) { stats[at + 3u] = x.w; }
}
//#endif

// Where dS of query row f and key s of (b, kv head g) sits in the scratch (after inv_freq and delta).
fn ds_index(f: u32, s: u32, b: u32, g: u32) -> u32 {
  return SCRATCH_FREQ + p.drows + ((b * p.Hkv + g) * p.rows + f) * p.Tk + s;
}

// One thread per (b, h, t) row, flat index (b·H + h)·Tq + t, the layout of lse and delta; the first H2
// threads also copy inv_freq into the scratch, so that dq and dk/dv need no binding of their own for it.
@compute @workgroup_size(WG)
fn attention_backward_delta(@builtin(global_invocation_id) gid: vec3u,
                            @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (ROPE && i < H2) {
    let f = freq[i];
    for (var c = 0u; c < 4u; c++) { stats[4u * i + c] = f[c]; }
  }
  if (i >= p.drows) { return; }
  let t = i % p.Tq;
  let h = (i / p.Tq) % p.H;
  let b = i / (p.Tq * p.H);
  let ao = (b * p.Tq + t) * p.o_rs + p.o_co + h * HD4;
  let ad = (b * p.Tq + t) * p.do_rs + p.do_co + h * HD4;
  var sum = 0.0;
  for (var c = 0u; c < p.hd4; c++) { sum += dot(vec4f(dout[ad + c]), vec4f(o_in[ao + c])); }
  stats[SCRATCH_FREQ + i] = sum;
}

// dS of column w (key k0 + tc + w·TPR) of a dq S block: P = exp(s·scale − lse) where visible, else 0, then
// P ∘ (dP − delta); stored at ds_at + col·PS for the O layout.
fn dq_ds(sw: vec4f, dpw: vec4f, w: u32, l4: vec4f, d4: vec4f, fr: u32, k0: u32, tc: u32, ds_at: u32) {
  if (w >= CB) { return; }
  let col = tc + w * TPR;
  let pr = select(vec4f(0.0), exp(sw * p.scale - l4), visible_rows(fr, k0 + col));
  shf[ds_at + col * PS] = pr * (dpw - d4);
}

// Workgroup (kv head g, b, row tile), longest causal reach first. Thread (og, oc) accumulates dq of its rows.
// Regions (vec4s): sh: Q [NR·RS] | dO [NR·RS] | K [NC·RS] | V [NC·RS];  shf: dS [NC·PS] | lse [NR/4] | delta [NR/4].
@compute @workgroup_size(WG)
fn attention_backward_dq(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let DO_AT = NR * RS;
  let K_AT = 2u * NR * RS;
  let V_AT = K_AT + NC * RS;
  let DS_AT = 0u;
  let LSE_AT = NC * PS;
  let DELTA_AT = LSE_AT + NR / 4u;
  let g = wid.x;
  let b = wid.y;
  let f0 = ((p.rows + NR - 1u) / NR - 1u - wid.z) * NR;

  load_freq_bwd(lid);
  load_q(0u, f0, NR, b, g, lid);
  load_dout(DO_AT, f0, NR, b, g, lid);
  for (var i = lid; i < NR / 4u; i += WG) { // rows past the end get lse = delta = 0 (never stored)
    var l4 = vec4f(0.0);
    var d4 = vec4f(0.0);
    for (var u = 0u; u < 4u; u++) {
      let f = f0 + 4u * i + u;
      if (f < p.rows) {
        let at = stat_index(f, b, g);
        l4[u] = lse_in[at];
        d4[u] = scratch(SCRATCH_FREQ + at);
      }
    }
    shf[LSE_AT + i] = l4;
    shf[DELTA_AT + i] = d4;
  }
  let f_last = min(f0 + NR, p.rows) - 1u;
  let blocks = (min(q_pos(f_last) + 1u, p.Tk) + NC - 1u) / NC;

  let s_on = lid < S_THREADS;
  let rg = min(lid / TPR, NR / 4u - 1u);
  let tc = lid % TPR;
  let og = lid / OCT;
  let oc = lid % OCT;
  var acc = Acc(); // O layout: dq of rows 4og.. × vec4 columns oc + w·OCT
  for (var kb = first_key_block(f0); kb < blocks; kb++) {
    let k0 = kb * NC;
    load_k(K_AT, k0, NC, b, g, lid);
    load_v(V_AT, k0, NC, b, g, lid);
    workgroupBarrier();
    let s = block_dots(0u, K_AT, rg, tc);
    let dp = block_dots(DO_AT, V_AT, rg, tc);
    let l4 = shf[LSE_AT + rg];
    let d4 = shf[DELTA_AT + rg];
    if (s_on) {
      let fr = f0 + 4u * rg;
      dq_ds(s[0], dp[0], 0u, l4, d4, fr, k0, tc, DS_AT + rg);
      dq_ds(s[1], dp[1], 1u, l4, d4, fr, k0, tc, DS_AT + rg);
      dq_ds(s[2], dp[2], 2u, l4, d4, fr, k0, tc, DS_AT + rg);
      dq_ds(s[3], dp[3], 3u, l4, d4, fr, k0, tc, DS_AT + rg);
    }
    workgroupBarrier();
    accumulate(&acc, DS_AT, K_AT, og, oc);
    workgroupBarrier();
  }
  stage(&acc, 0u, og, oc, vec4f(p.scale));
  workgroupBarrier();
  store_dq(f0, b, g, lid);
}

// Stores the dq rows staged at sh[0..] (NR rows from f0).
fn store_dq(f0: u32, b: u32, g: u32, lid: u32) {
  if (ROPE) { // dq of the unrotated q: rotate back by −angle (pairs c, c + H2)
    for (var i = lid; i < NR * p.h2; i += WG) {
      let r = i / H2;
      let c = i % H2;
      if (f0 + r < p.rows) {
        let x = rope_pair(vec4f(sh[r * RS + c]), vec4f(sh[r * RS + c + H2]), q_pos(f0 + r), c, -1.0);
        let a = q_row(f0 + r, b, g, p.dq_rs, p.dq_co) + c;
        dq[a] = vec4<qkv_t>(x[0]);
        dq[a + H2] = vec4<qkv_t>(x[1]);
      }
    }
  } else {
    for (var i = lid; i < NR * p.hd4; i += WG) {
      let f = f0 + i / HD4;
      if (f < p.rows) { dq[q_row(f, b, g, p.dq_rs, p.dq_co) + i % HD4] = vec4<qkv_t>(sh[(i / HD4) * RS + i % HD4]); }
    }
  }
}

// Spill path, after dk/dv: dq = Σ (scale·dS)·k over the key blocks the tile sees, one product per block.
// Workgroup and tile as attention_backward_dq (whose pools it takes; the Q and dO regions stay unused).
// Regions (vec4s): sh: dq staging [NR·RS] | unused [NR·RS] | K [NC·RS];  shf: dS [NC·PS].
@compute @workgroup_size(WG)
fn attention_backward_dq_spill(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let K_AT = 2u * NR * RS;
  let g = wid.x;
  let b = wid.y;
  let f0 = ((p.rows + NR - 1u) / NR - 1u - wid.z) * NR;

  load_freq_bwd(lid);
  let f_last = min(f0 + NR, p.rows) - 1u;
  let blocks = (min(q_pos(f_last) + 1u, p.Tk) + NC - 1u) / NC;
  let og = lid / OCT;
  let oc = lid % OCT;
  var acc = Acc(); // O layout: dq of rows 4og.. × vec4 columns oc + w·OCT
  for (var kb = first_key_block(f0); kb < blocks; kb++) {
    let k0 = kb * NC;
    load_k(K_AT, k0, NC, b, g, lid);
    load_ds(f0, k0, b, g, lid);
    workgroupBarrier();
    accumulate(&acc, 0u, K_AT, og, oc);
    workgroupBarrier();
  }
  stage(&acc, 0u, og, oc, vec4f(1.0));
  workgroupBarrier();
  store_dq(f0, b, g, lid);
}

// The scratch's dS of rows f0.. × keys k0.. into the P layout (one vec4 per column and row group). Entries
// the causal mask or the window hides, which the dk/dv kernel may not have written, and padding load as 0.
fn load_ds(f0: u32, k0: u32, b: u32, g: u32, lid: u32) {
  for (var i = lid; i < p.nc * (NR / 4u); i += WG) {
    let col = i % p.nc;
    let fr = f0 + 4u * (i / p.nc);
    let vis = visible_rows(fr, k0 + col);
    let at = ds_index(fr, k0 + col, b, g); // rows fr + u at at + u·Tk
    var x = vec4f(0.0);
    if (vis.x) { x.x = scratch(at); }
    if (vis.y) { x.y = scratch(at + p.Tk); }
    if (vis.z) { x.z = scratch(at + 2u * p.Tk); }
    if (vis.w) { x.w = scratch(at + 3u * p.Tk); }
    shf[col * PS + i / p.nc] = x;
  }
}

// Workgroup (kv head g, b, key tile of NR keys), the first key tiles (which the most queries see) first.
// It walks over the query rows of all G heads of its group that see its keys (t ≥ first key), so the group
// sum of dk/dv happens in registers. Rows here are keys and columns are query rows.
// Regions (vec4s): sh: K [NR·RS] | V [NR·RS] | Q [NC·RS] | dO [NC·RS];  shf: P [NC·PS] | dS [NC·PS].
fn dkdv_tile(lid: u32, wid: vec3u) -> u32 {
  let V_AT = NR * RS;
  let Q_AT = 2u * NR * RS;
  let DO_AT = Q_AT + NC * RS;
  let P_AT = 0u;
  let DS_AT = NC * PS;
  let g = wid.x;
  let b = wid.y;
  let s0 = wid.z * NR;

  load_freq_bwd(lid);
  load_k(0u, s0, NR, b, g, lid);
  load_v(V_AT, s0, NR, b, g, lid);
  let s_on = lid < S_THREADS;
  let rg = min(lid / TPR, NR / 4u - 1u);
  let tc = lid % TPR;
  let og = lid / OCT;
  let oc = lid % OCT;
  let keys = vec4u(s0 + 4u * rg) + vec4u(0u, 1u, 2u, 3u);
  var acc = Acc();  // O layout: dk of keys 4og.. × vec4 columns oc + w·OCT
  var acc2 = Acc(); // the same for dv
  // Query rows f whose position q_offset + f/G reaches key s0: f ≥ (s0 − q_offset)·G; and whose window still
  // holds the last key s_last: position < s_last + window, f < (s_last + window − q_offset)·G.
  let c_start = select(0u, (s0 - p.q_offset) * p.G, s0 > p.q_offset);
  let reach = min(s0 + NR, p.Tk) - 1u + p.window;
  let c_end = min(p.rows, select(0u, (reach - p.q_offset) * p.G, reach > p.q_offset));
  let blocks = select(0u, (c_end - c_start + NC - 1u) / NC, c_end > c_start);
  for (var cb = 0u; cb < blocks; cb++) {
    let c0 = c_start + cb * NC;
    load_q(Q_AT, c0, NC, b, g, lid);
    load_dout(DO_AT, c0, NC, b, g, lid);
    for (var i = lid; i < p.nc; i += WG) {
      var st = vec2f(0.0);
      if (c0 + i < p.rows) {
        let at = stat_index(c0 + i, b, g);
        st = vec2f(lse_in[at], scratch(SCRATCH_FREQ + at));
      }
      col_stats[i] = st;
    }
    workgroupBarrier();
    let s = block_dots(0u, Q_AT, rg, tc);
    let dp = block_dots(V_AT, DO_AT, rg, tc);
    if (s_on) {
      dkdv_p_ds(s[0], dp[0], 0u, keys, c0, tc, rg, b, g);
      dkdv_p_ds(s[1], dp[1], 1u, keys, c0, tc, rg, b, g);
      dkdv_p_ds(s[2], dp[2], 2u, keys, c0, tc, rg, b, g);
      dkdv_p_ds(s[3], dp[3], 3u, keys, c0, tc, rg, b, g);
    }
    workgroupBarrier();
    accumulate(&acc2, P_AT, DO_AT, og, oc); // dv += Pᵀ·dout
    accumulate(&acc, DS_AT, Q_AT, og, oc);  // dk += dSᵀ·q
    workgroupBarrier();
  }
  stage(&acc, 0u, og, oc, vec4f(p.scale));
  stage(&acc2, V_AT, og, oc, vec4f(1.0));
  workgroupBarrier();
  return s0;
}

// P and dS of column w (query row c0 + tc + w·TPR) of a dk/dv S block over keys `keys`, stored for the O
// layout (pool regions as in dkdv_tile), and scale·dS in the scratch on the spill path.
fn dkdv_p_ds(sw: vec4f, dpw: vec4f, w: u32, keys: vec4u, c0: u32, tc: u32, rg: u32, b: u32, g: u32) {
  if (w >= CB) { return; }
  let col = tc + w * TPR;
  let f = c0 + col;
  let st = col_stats[col];
  let vis = vec4<bool>(f < p.rows) & in_window(vec4u(q_pos(f)), keys) & (keys < vec4u(p.Tk));
  let pr = select(vec4f(0.0), exp(sw * p.scale - st.x), vis);
  let ds = pr * (dpw - st.y);
  shf[col * PS + rg] = pr;        // P region at 0
  shf[(NC + col) * PS + rg] = ds; // dS region at NC·PS
  put_ds(f, keys, b, g, ds * p.scale);
}

// The pair (c, c + H2) of dk of key row r (staged at sh[r·RS]), rotated back by key position s when ROPE.
fn dk_value(r: u32, s: u32, c: u32) -> array<vec4<qkv_t>, 2> {
  var x = array<vec4f, 2>(vec4f(sh[r * RS + c]), vec4f(sh[r * RS + c + H2]));
  if (ROPE) { x = rope_pair(x[0], x[1], s, c, -1.0); }
  return array<vec4<qkv_t>, 2>(vec4<qkv_t>(x[0]), vec4<qkv_t>(x[1]));
}

@compute @workgroup_size(WG)
fn attention_backward_dkdv(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let s0 = dkdv_tile(lid, wid);
  for (var i = lid; i < NR * p.h2; i += WG) {
    let r = i / H2;
    let c = i % H2;
    let s = s0 + r;
    if (s < p.Tk) {
      let x = dk_value(r, s, c);
      let ak = k_row(s, wid.y, wid.x, p.dk_rs, p.dk_co) + c;
      dk[ak] = x[0];
      dk[ak + H2] = x[1];
      let av = k_row(s, wid.y, wid.x, p.dv_rs, p.dv_co) + c;
      dv[av] = vec4<qkv_t>(sh[(NR + r) * RS + c]);
      dv[av + H2] = vec4<qkv_t>(sh[(NR + r) * RS + c + H2]);
    }
  }
}

// The same, for dk and dv in one buffer (a fused dqkv row): one binding, since WebGPU refuses two writable
// bindings of overlapping ranges.
@compute @workgroup_size(WG)
fn attention_backward_dkdv_one(@builtin(local_invocation_index) lid: u32, @builtin(workgroup_id) wid: vec3u) {
  let s0 = dkdv_tile(lid, wid);
  for (var i = lid; i < NR * p.h2; i += WG) {
    let r = i / H2;
    let c = i % H2;
    let s = s0 + r;
    if (s < p.Tk) {
      let x = dk_value(r, s, c);
      let ak = k_row(s, wid.y, wid.x, p.dk_rs, p.dk_co) + c;
      dkv[ak] = x[0];
      dkv[ak + H2] = x[1];
      let av = k_row(s, wid.y, wid.x, p.dv_rs, p.dv_co) + c;
      dkv[av] = vec4<qkv_t>(sh[(NR + r) * RS + c]);
      dkv[av + H2] = vec4<qkv_t>(sh[(NR + r) * RS + c + H2]);
    }
  }
}

// ----------------------------------------------------------------------------------- row max (forward)
// The max of each row over the TPR threads of its row group. Two variants, one of which the host keeps
// (the other is cut out of the source): workgroup memory (all threads write, barrier, each reads the TPR
// partials of its group in order), or subgroup shuffles when TPR is a power of two that divides the
// subgroup size (no workgroup memory, no barrier). max is exact, so both give the same bits. The shuffles
// assume subgroups are runs of consecutive local_invocation_index with lane = index mod subgroup size, as
// GPUs lay out 1-D workgroups (lavapipe included, where the test compares both variants).

//#if shared
fn row_max(x: vec4f, lid: u32, red_at: u32) -> vec4f {
  if (lid < S_THREADS) { shf[red_at + lid] = x; }
  workgroupBarrier();
  let base = red_at + min(lid / TPR, NR / 4u - 1u) * TPR;
  var m = shf[base];
  for (var i = 1u; i < p.tpr; i++) { m = max(m, shf[base + i]); }
  return m;
}
//#endif
//#if subgroup
fn row_max(x: vec4f, lid: u32, red_at: u32) -> vec4f {
  var m = x;
  for (var lane = 1u; lane < TPR; lane <<= 1u) { m = max(m, subgroupShuffleXor(m, lane)); }
  return m;
}
//#endif
