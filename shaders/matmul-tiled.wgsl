// Vectorised, register-tiled matmul with the fused-linear extras: C[b] = alpha · A[b]·B[b] (+ the extras), f32
// accumulation.
//
// One source, many variants: the tile (BM × BN, BK deep), the outputs per thread (TM × TN, multiples of 4) and
// the operand layouts are compile-time constants injected by the host (Program.consts), so register arrays
// have fixed sizes and the inner loops unroll.
//   A_K = 1: A is K-contiguous, A(m,k) = a[a_off + b·a_bs + m·lda + k]   (X in X·Wᵀ, dY in dY·W)
//   A_K = 0: A is M-contiguous, A(m,k) = a[a_off + b·a_bs + k·lda + m]   (Aᵀ·B: the LoRA gradient products)
//   B_K = 1: B is K-contiguous, B(k,n) = b[b_off + b·b_bs + n·ldb + k]   (W in X·Wᵀ, stored (out, in))
//   B_K = 0: B is N-contiguous, B(k,n) = b[b_off + b·b_bs + k·ldb + n]   (W in dY·W, X in Aᵀ·X)
// An operand is read as vec4 along its contiguous axis when that axis' length, the leading dimension, the
// offset and the batch stride are multiples of 4 (sections `a: vec4`, `b: vec4`), else with scalar loads.
//
// Shared tiles keep each operand's global orientation (no transposing stores): a K-contiguous tile is BM rows of
// BK/4 vec4 padded by one vec4 (an odd row stride, so 8 threads reading 8 consecutive rows hit 8 different
// 16-byte bank groups); an M- or N-contiguous tile is BK rows of BM/4 (BN/4) vec4, read along the row.
// Thread (tx, ty) of the WX × WY workgroup owns rows and columns strided across the tile (row ty + i·WY, or
// vec4 group ty + i·WY), so neighbouring threads read neighbouring shared words.
//
// The fused linear (model/linear.ts) adds, each a section below that the host keeps 'on' or 'off':
//   seg2       a second product over K2 (the LoRA up-projection as an extension of K): C += s2 · A2·B2, with A2,
//              B2 f32 (u and B, or v and A), read with scalar loads (K2 = r need not be a multiple of 4). It runs
//              first, so its partial sums can be scaled (and masked) alone before the main product adds to them.
//   mask_a     LoRA dropout on A as it is loaded: u = dropout(x)·Aᵀ with no dropped copy of x.
//   mask_b     the same on an N-contiguous B: the LoRA gradient dA = s·vᵀ·dropout(x).
//   mask_seg2  LoRA dropout's backward on seg2's result: dx = dy·W + mask ∘ (s·v·A) / (1 − p).
//   bias       C += bias[n];  residual  C = … + R (R laid out as C);  rowscale  C = … + rowscale[m]·C (β per row).
//   rng        the dropout hash; its step is a word of a storage buffer, so a step's uniforms never change.
// Split-K (tall-skinny products, K = batch·seq): workgroup z = batch·splits + split; `matmul_tiled_partial`
// writes raw f32 sums to a workspace and `matmul_tiled_reduce` adds the splits in a fixed order. No extras then.

const WX: u32 = BN / TN; // threads along n
const WY: u32 = BM / TM; // threads along m
const THREADS: u32 = WX * WY;
const TN4: u32 = TN / 4u;
const TM4: u32 = TM / 4u;
const BK4: u32 = BK / 4u;

// Shared tile shapes in vec4: rows × row stride.
const A_ROWS: u32 = select(BK, BM, A_K == 1u);
const A_STRIDE: u32 = select(BM / 4u, BK4 + 1u, A_K == 1u);
const B_ROWS: u32 = select(BK, BN, B_K == 1u);
const B_STRIDE: u32 = select(BN / 4u, BK4 + 1u, B_K == 1u);
const A_VECS: u32 = BM * BK / 4u; // vec4 of one A tile
const B_VECS: u32 = BN * BK / 4u;
const A_LOADS: u32 = (A_VECS + THREADS - 1u) / THREADS; // vec4 loads per thread per tile
const B_LOADS: u32 = (B_VECS + THREADS - 1u) / THREADS;

struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  lda: u32, ldb: u32, ldc: u32, splits: u32,
  a_bs: u32, b_bs: u32, c_bs: u32, k_chunk: u32, // batch strides (elements); K per split (a multiple of BK)
  a_off: u32, b_off: u32, c_off: u32, r_off: u32, // element offsets of A, B, C and the residual R
  alpha: f32, beta: f32, s2: f32, keep_scale: f32, // keep_scale = 1 / (1 − p)
  // seg2: A2(m,k) = a2[a2_off + b·a2_bs + m·a2_sm + k·a2_sk], B2(k,n) = b2[b2_off + b·b2_bs + k·b2_sk + n·b2_sn]
  K2: u32, a2_sm: u32, a2_sk: u32, a2_off: u32,
  b2_sk: u32, b2_sn: u32, b2_off: u32, mask_ld: u32, // mask_ld: row length of the masked tensor (index m·ld + k)
  a2_bs: u32, b2_bs: u32, seed: u32, threshold: u32, // dropout: keep iff hash ≥ threshold
  stream: u32, stream_bs: u32, step_add: u32, zero: u32, // stream + b·stream_bs; step = rng[0] + step_add; zero = 0
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(3) var<storage, read_write> c: array<c_t>;
@group(0) @binding(4) var<storage, read_write> ws: array<f32>;

var<workgroup> As: array<vec4f, A_ROWS * A_STRIDE>;
var<workgroup> Bs: array<vec4f, B_ROWS * B_STRIDE>;

// The shared slot of tile vec4 `idx`: K-contiguous tiles have padded rows.
fn a_slot(idx: u32) -> u32 {
  if (A_K == 1u) { return (idx / BK4) * A_STRIDE + idx % BK4; }
  return idx;
}

fn b_slot(idx: u32) -> u32 {
  if (B_K == 1u) { return (idx / BK4) * B_STRIDE + idx % BK4; }
  return idx;
}

// acc[i · TN4 + jv][e] is the output at (row i, column 4·jv + e) of this thread's TM × TN block.
fn multiply_tile(tx: u32, ty: u32, acc: ptr<function, array<vec4f, TM * TN4>>) {
  if (A_K == 1u && B_K == 1u) {
    // X·Wᵀ: both tiles K-contiguous; dot products of vec4 along k.
    for (var k4 = 0u; k4 < k_trips(BK4); k4++) {
      var av: array<vec4f, TM>;
      for (var i = 0u; i < TM; i++) { av[i] = As[(ty + i * WY) * A_STRIDE + k4]; }
      for (var j = 0u; j < TN; j++) {
        let bv = Bs[(tx + j * WX) * B_STRIDE + k4];
        for (var i = 0u; i < TM; i++) { (*acc)[i * TN4 + j / 4u][j % 4u] += dot(av[i], bv); }
      }
    }
  } else if (A_K == 1u) {
    // dY·W: A rows K-contiguous, B rows N-contiguous; A's four k values scale four B rows.
    for (var k4 = 0u; k4 < k_trips(BK4); k4++) {
      var av: array<vec4f, TM>;
      for (var i = 0u; i < TM; i++) { av[i] = As[(ty + i * WY) * A_STRIDE + k4]; }
      for (var kk = 0u; kk < 4u; kk++) {
        for (var jv = 0u; jv < TN4; jv++) {
          let bv = Bs[(4u * k4 + kk) * B_STRIDE + tx + jv * WX];
          for (var i = 0u; i < TM; i++) { (*acc)[i * TN4 + jv] += av[i][kk] * bv; }
        }
      }
    }
  } else {
    // Aᵀ·B: both tiles are k rows; an outer product of vec4 groups per k.
    for (var k = 0u; k < k_trips(BK); k++) {
      var bv: array<vec4f, TN4>;
      for (var jv = 0u; jv < TN4; jv++) { bv[jv] = Bs[k * B_STRIDE + tx + jv * WX]; }
      for (var iv = 0u; iv < TM4; iv++) {
        let av = As[k * A_STRIDE + ty + iv * WY];
        for (var e = 0u; e < 4u; e++) {
          for (var jv = 0u; jv < TN4; jv++) { (*acc)[(4u * iv + e) * TN4 + jv] += av[e] * bv[jv]; }
        }
      }
    }
  }
}

// Row of output row-slot i and column of column-slot j (j = 4·jv + e) of thread (tx, ty), relative to the tile.
fn row_of(ty: u32, i: u32) -> u32 {
  if (A_K == 1u) { return ty + i * WY; }
  return 4u * (ty + (i / 4u) * WY) + i % 4u;
}

fn col_of(tx: u32, j: u32) -> u32 {
  if (B_K == 1u) { return tx + j * WX; }
  return 4u * (tx + (j / 4u) * WX) + j % 4u;
}

// Tile vec4 `idx` at virtual depth vk: seg2's K2 (rounded up to whole tiles) comes first, then the main K.
fn load_a_at(bi: u32, row0: u32, vk: u32, k0: u32, k1: u32, k2_tiles: u32, idx: u32) -> vec4f {
  if (vk < k2_tiles) { return seg2_load_a(bi, row0, vk, idx); }
  return load_a(bi, row0, vk - k2_tiles + k0, k1, idx);
}

fn load_b_at(bi: u32, col0: u32, vk: u32, k0: u32, k1: u32, k2_tiles: u32, idx: u32) -> vec4f {
  if (vk < k2_tiles) { return seg2_load_b(bi, col0, vk, idx); }
  return load_b(bi, col0, vk - k2_tiles + k0, k1, idx);
}

// The dot products of this thread's block over seg2's K2 (scaled and masked on their own), then k in [k0, k1).
fn tile_product(lid: vec2u, wid: vec2u, bi: u32, k0: u32, k1: u32) -> array<vec4f, TM * TN4> {
  var acc: array<vec4f, TM * TN4>;
  let t = lid.y * WX + lid.x;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let k2_tiles = seg2_depth();
  let depth = k2_tiles + (k1 - k0 + BK - 1u) / BK * BK;
  for (var vk = 0u; ; vk += BK) {
    if (vk == k2_tiles) { seg2_finish(bi, wid.xy, lid, &acc); } // acc holds seg2's product alone here
    if (vk >= depth) { break; }
    for (var l = 0u; l < A_LOADS; l++) {
      let idx = t + l * THREADS;
      if (idx < A_VECS) { As[a_slot(idx)] = load_a_at(bi, row0, vk, k0, k1, k2_tiles, idx); }
    }
    for (var l = 0u; l < B_LOADS; l++) {
      let idx = t + l * THREADS;
      if (idx < B_VECS) { Bs[b_slot(idx)] = load_b_at(bi, col0, vk, k0, k1, k2_tiles, idx); }
    }
    workgroupBarrier();
    multiply_tile(lid.x, lid.y, &acc);
    workgroupBarrier();
  }
  return acc;
}

// alpha·acc plus the epilogue's terms, for output (m, n) of batch bi stored at `at`.
fn finish(bi: u32, m: u32, n: u32, at: u32, acc: f32) -> f32 {
  var v = p.alpha * acc + bias_at(n) + residual_at(at);
  let beta = beta_at(m);
  // beta = 0 must not read C: it may hold garbage (or NaN) that 0·x would keep.
  if (beta != 0.0) { v += beta * f32(c[at]); }
  return v;
}

@compute @workgroup_size(WX, WY)
fn matmul_tiled(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let acc = tile_product(lid.xy, wid.xy, wid.z, 0u, p.K);
  for (var i = 0u; i < TM; i++) {
    let m = wid.y * BM + row_of(lid.y, i);
    if (m >= p.M) { continue; }
    for (var j = 0u; j < TN; j++) {
      let n = wid.x * BN + col_of(lid.x, j);
      if (n >= p.N) { continue; }
      let at = p.c_off + wid.z * p.c_bs + m * p.ldc + n;
      c[at] = c_t(finish(wid.z, m, n, at, acc[i * TN4 + j / 4u][j % 4u]));
    }
  }
}

@compute @workgroup_size(WX, WY)
fn matmul_tiled_partial(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let bi = wid.z / p.splits;
  let split = wid.z % p.splits;
  let k0 = split * p.k_chunk;
  let k1 = min(p.K, k0 + p.k_chunk);
  let acc = tile_product(lid.xy, wid.xy, bi, k0, k1);
  let base = (split * p.batch + bi) * p.M * p.N;
  for (var i = 0u; i < TM; i++) {
    let m = wid.y * BM + row_of(lid.y, i);
    if (m >= p.M) { continue; }
    for (var j = 0u; j < TN; j++) {
      let n = wid.x * BN + col_of(lid.x, j);
      if (n < p.N) { ws[base + m * p.N + n] = acc[i * TN4 + j / 4u][j % 4u]; }
    }
  }
}

// One thread per output element: sums the splits in a fixed order (deterministic), then the epilogue.
@compute @workgroup_size(256)
fn matmul_tiled_reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 256u;
  let per_batch = p.M * p.N;
  if (i >= per_batch * p.batch) { return; }
  var sum = 0.0;
  for (var s = 0u; s < p.splits; s++) { sum += ws[s * per_batch * p.batch + i]; }
  let bi = i / per_batch;
  let m = (i % per_batch) / p.N;
  let n = i % p.N;
  let at = p.c_off + bi * p.c_bs + m * p.ldc + n;
  c[at] = c_t(finish(bi, m, n, at, sum));
}

// ---- kloop: unrolled ----
// The depth loop of a tile: a constant bound, unrolled by the compiler.
fn k_trips(n: u32) -> u32 { return n; }

// ---- kloop: rolled ----
// For software drivers (LLVM compiles the unrolled tile loops for seconds per pipeline): a bound it cannot see
// through (p.zero is 0), so the loop stays a loop; the register tile is still indexed by constants.
fn k_trips(n: u32) -> u32 { return n + p.zero; }

// ---- seg2: off ----
fn seg2_depth() -> u32 { return 0u; }
fn seg2_load_a(bi: u32, row0: u32, kt: u32, idx: u32) -> vec4f { return vec4f(0.0); }
fn seg2_load_b(bi: u32, col0: u32, kt: u32, idx: u32) -> vec4f { return vec4f(0.0); }

// ---- seg2: on ----
// A2 (u or v, (N, r)) and B2 (B (out, r) or A (r, in), in either orientation) are read through strides with
// scalar loads: r is often not a multiple of 4, and seg2 is a small share of the work.
@group(0) @binding(5) var<storage, read> a2: array<f32>;
@group(0) @binding(6) var<storage, read> b2: array<f32>;

fn seg2_depth() -> u32 { return (p.K2 + BK - 1u) / BK * BK; }

fn seg2_load_a(bi: u32, row0: u32, kt: u32, idx: u32) -> vec4f {
  var v = vec4f(0.0);
  if (idx >= A_VECS) { return v; }
  let m = row0 + idx / BK4;
  let k = kt + 4u * (idx % BK4);
  if (m >= p.M) { return v; }
  let base = p.a2_off + bi * p.a2_bs + m * p.a2_sm;
  for (var e = 0u; e < 4u; e++) { if (k + e < p.K2) { v[e] = a2[base + (k + e) * p.a2_sk]; } }
  return v * seg2_a_scale();
}

// The four elements of tile vec4 `idx` of B2, placed as B's tile keeps them (along k or along n).
fn seg2_load_b(bi: u32, col0: u32, kt: u32, idx: u32) -> vec4f {
  var v = vec4f(0.0);
  if (idx >= B_VECS) { return v; }
  let base = p.b2_off + bi * p.b2_bs;
  if (B_K == 1u) {
    let n = col0 + idx / BK4;
    let k = kt + 4u * (idx % BK4);
    if (n >= p.N) { return v; }
    for (var e = 0u; e < 4u; e++) { if (k + e < p.K2) { v[e] = b2[base + (k + e) * p.b2_sk + n * p.b2_sn]; } }
    return v;
  }
  let k = kt + idx / (BN / 4u);
  let n = col0 + 4u * (idx % (BN / 4u));
  if (k >= p.K2) { return v; }
  for (var e = 0u; e < 4u; e++) { if (n + e < p.N) { v[e] = b2[base + k * p.b2_sk + (n + e) * p.b2_sn]; } }
  return v;
}

// ---- mask_seg2: off ----
// s2 scales A2 as it is loaded; nothing to do between seg2 and the main product.
fn seg2_a_scale() -> f32 { return p.s2; }
fn seg2_finish(bi: u32, wid: vec2u, lid: vec2u, acc: ptr<function, array<vec4f, TM * TN4>>) {}

// ---- mask_seg2: on ----
// After seg2's tiles acc holds A2·B2 alone: scale and mask it before the main product adds on.
fn seg2_a_scale() -> f32 { return 1.0; }

fn seg2_finish(bi: u32, wid: vec2u, lid: vec2u, acc: ptr<function, array<vec4f, TM * TN4>>) {
  let key = dropout_key(p.stream + bi * p.stream_bs);
  for (var i = 0u; i < TM; i++) {
    let m = wid.y * BM + row_of(lid.y, i);
    for (var j = 0u; j < TN; j++) {
      let n = wid.x * BN + col_of(lid.x, j);
      var scale = 0.0;
      if (m < p.M && n < p.N && kept(key, m * p.mask_ld + n)) {
        scale = p.s2 * p.keep_scale;
      }
      (*acc)[i * TN4 + j / 4u][j % 4u] *= scale;
    }
  }
}

// ---- mask_a: off ----
fn mask_a(bi: u32, m: u32, k: u32) -> vec4f { return vec4f(1.0); }

// ---- mask_a: on ----
// A(m, k..k+3) of a K-contiguous A (x, (N, in) rows) kept or dropped as the dropout kernel would.
fn mask_a(bi: u32, m: u32, k: u32) -> vec4f {
  let key = dropout_key(p.stream + bi * p.stream_bs);
  let at = m * p.mask_ld + k;
  var v: vec4f;
  for (var e = 0u; e < 4u; e++) { v[e] = select(0.0, p.keep_scale, kept(key, at + e)); }
  return v;
}

// ---- mask_b: off ----
fn mask_b(bi: u32, k: u32, n: u32) -> vec4f { return vec4f(1.0); }

// ---- mask_b: on ----
// B(k, n..n+3) of an N-contiguous B (x in the LoRA gradient vᵀ·dropout(x)) kept or dropped as in the forward.
fn mask_b(bi: u32, k: u32, n: u32) -> vec4f {
  let key = dropout_key(p.stream + bi * p.stream_bs);
  let at = k * p.mask_ld + n;
  var v: vec4f;
  for (var e = 0u; e < 4u; e++) { v[e] = select(0.0, p.keep_scale, kept(key, at + e)); }
  return v;
}

// ---- rng: off ----

// ---- rng: on ----
// The counter-based hash of dropout-hash.wgsl (appended by the host; test/reference/dropout.ts mirrors it): element i of (seed, step,
// stream) is kept iff hash ≥ threshold. The step is rng[0] + step_add: the host writes the step's base once per
// step and a micro-batch adds its index, so the uniforms are the same every step.
@group(0) @binding(9) var<storage, read> rng: array<u32>;

fn dropout_key(stream: u32) -> u32 {
  return hash_key(p.seed, rng[0] + p.step_add, stream);
}

fn kept(key: u32, i: u32) -> bool {
  return hash_index(i, key) >= p.threshold;
}

// ---- bias: off ----
fn bias_at(n: u32) -> f32 { return 0.0; }

// ---- bias: on ----
@group(0) @binding(7) var<storage, read> epi: array<e_t>;
fn bias_at(n: u32) -> f32 { return f32(epi[n]); }

// ---- rowscale: off ----
fn beta_at(m: u32) -> f32 { return p.beta; }

// ---- rowscale: on ----
// C = alpha·acc + rowscale[m]·C: the cross-entropy's running rescale of G by exp(m_old − m_new) per row.
@group(0) @binding(7) var<storage, read> epi: array<e_t>;
fn beta_at(m: u32) -> f32 { return f32(epi[m]); }

// ---- residual: off ----
fn residual_at(at: u32) -> f32 { return 0.0; }

// ---- residual: on ----
// C = … + R, with R laid out as C (offset r_off instead of c_off): x' = x + y without copying x first.
@group(0) @binding(8) var<storage, read> res: array<c_t>;
fn residual_at(at: u32) -> f32 { return f32(res[at - p.c_off + p.r_off]); }

// ---- a: vec4 ----
@group(0) @binding(1) var<storage, read> a: array<vec4<a_t>>;

// Tile vec4 `idx` of A at (row0, kt), or 0 outside the matrix (k ≥ k1).
fn load_a(bi: u32, row0: u32, kt: u32, k1: u32, idx: u32) -> vec4f {
  if (idx >= A_VECS) { return vec4f(0.0); }
  if (A_K == 1u) {
    let m = row0 + idx / BK4;
    let k = kt + 4u * (idx % BK4);
    if (m >= p.M || k >= k1) { return vec4f(0.0); }
    return vec4f(a[(p.a_off + bi * p.a_bs + m * p.lda + k) / 4u]) * mask_a(bi, m, k);
  }
  let k = kt + idx / (BM / 4u);
  let m = row0 + 4u * (idx % (BM / 4u));
  if (m >= p.M || k >= k1) { return vec4f(0.0); }
  return vec4f(a[(p.a_off + bi * p.a_bs + k * p.lda + m) / 4u]);
}

// ---- a: scalar ----
@group(0) @binding(1) var<storage, read> a: array<a_t>;

fn load_a(bi: u32, row0: u32, kt: u32, k1: u32, idx: u32) -> vec4f {
  var v = vec4f(0.0);
  if (idx >= A_VECS) { return v; }
  if (A_K == 1u) {
    let m = row0 + idx / BK4;
    let k = kt + 4u * (idx % BK4);
    if (m >= p.M) { return v; }
    let base = p.a_off + bi * p.a_bs + m * p.lda;
    for (var e = 0u; e < 4u; e++) { if (k + e < k1) { v[e] = f32(a[base + k + e]); } }
    return v * mask_a(bi, m, k);
  }
  let k = kt + idx / (BM / 4u);
  let m = row0 + 4u * (idx % (BM / 4u));
  if (k >= k1) { return v; }
  let base = p.a_off + bi * p.a_bs + k * p.lda;
  for (var e = 0u; e < 4u; e++) { if (m + e < p.M) { v[e] = f32(a[base + m + e]); } }
  return v;
}

// ---- b: vec4 ----
@group(0) @binding(2) var<storage, read> b: array<vec4<b_t>>;

fn load_b(bi: u32, col0: u32, kt: u32, k1: u32, idx: u32) -> vec4f {
  if (idx >= B_VECS) { return vec4f(0.0); }
  if (B_K == 1u) {
    let n = col0 + idx / BK4;
    let k = kt + 4u * (idx % BK4);
    if (n >= p.N || k >= k1) { return vec4f(0.0); }
    return vec4f(b[(p.b_off + bi * p.b_bs + n * p.ldb + k) / 4u]);
  }
  let k = kt + idx / (BN / 4u);
  let n = col0 + 4u * (idx % (BN / 4u));
  if (n >= p.N || k >= k1) { return vec4f(0.0); }
  return vec4f(b[(p.b_off + bi * p.b_bs + k * p.ldb + n) / 4u]) * mask_b(bi, k, n);
}

// ---- b: scalar ----
@group(0) @binding(2) var<storage, read> b: array<b_t>;

fn load_b(bi: u32, col0: u32, kt: u32, k1: u32, idx: u32) -> vec4f {
  var v = vec4f(0.0);
  if (idx >= B_VECS) { return v; }
  if (B_K == 1u) {
    let n = col0 + idx / BK4;
    let k = kt + 4u * (idx % BK4);
    if (n >= p.N) { return v; }
    let base = p.b_off + bi * p.b_bs + n * p.ldb;
    for (var e = 0u; e < 4u; e++) { if (k + e < k1) { v[e] = f32(b[base + k + e]); } }
    return v;
  }
  let k = kt + idx / (BN / 4u);
  let n = col0 + 4u * (idx % (BN / 4u));
  if (k >= k1) { return v; }
  let base = p.b_off + bi * p.b_bs + k * p.ldb;
  for (var e = 0u; e < 4u; e++) { if (n + e < p.N) { v[e] = f32(b[base + n + e]); } }
  return v * mask_b(bi, k, n);
}
