// Vectorised, register-tiled matmul: C[b] = alpha · A[b]·B[b] + beta · C[b], accumulated in f32.
//
// One source, many variants: the tile (BM × BN, BK deep), the outputs per thread (TM × TN, multiples of 4) and
// the operand layouts are compile-time constants injected by the host (Program.consts), so register arrays
// have fixed sizes and the inner loops unroll.
//   A_K = 1: A is K-contiguous, A(m,k) = a[b·a_bs + m·lda + k]   (X in X·Wᵀ, dY in dY·W)
//   A_K = 0: A is M-contiguous, A(m,k) = a[b·a_bs + k·lda + m]   (Aᵀ·B: the LoRA gradient products)
//   B_K = 1: B is K-contiguous, B(k,n) = b[b·b_bs + n·ldb + k]   (W in X·Wᵀ, stored (out, in))
//   B_K = 0: B is N-contiguous, B(k,n) = b[b·b_bs + k·ldb + n]   (W in dY·W, X in Aᵀ·X)
// Every operand is read as vec4 along its contiguous axis, so that axis' length, the leading dimension and the
// batch stride are multiples of 4 (the host checks, and uses the generic kernel in matmul.wgsl otherwise).
//
// Shared tiles keep each operand's global orientation (no transposing stores): a K-contiguous tile is BM rows of
// BK/4 vec4 padded by one vec4 (an odd row stride, so 8 threads reading 8 consecutive rows hit 8 different
// 16-byte bank groups); an M- or N-contiguous tile is BK rows of BM/4 (BN/4) vec4, read along the row.
// Thread (tx, ty) of the WX × WY workgroup owns rows and columns strided across the tile (row ty + i·WY, or
// vec4 group ty + i·WY), so neighbouring threads read neighbouring shared words.
// The next K tile is fetched into registers while the current one is multiplied (register double buffering).
// Split-K (tall-skinny products, K = batch·seq): workgroup z = batch·splits + split; `matmul_tiled_partial`
// writes raw f32 sums to a workspace and `matmul_tiled_reduce` adds the splits in a fixed order.

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
  alpha: f32, beta: f32, _pad0: u32, _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<a_t>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<b_t>>;
@group(0) @binding(3) var<storage, read_write> c: array<c_t>;
@group(0) @binding(4) var<storage, read_write> ws: array<f32>;

var<workgroup> As: array<vec4f, A_ROWS * A_STRIDE>;
var<workgroup> Bs: array<vec4f, B_ROWS * B_STRIDE>;

// Element `idx` (a vec4) of the A tile at (row0, kt): its shared slot and its global vec4, or 0 outside the matrix.
fn load_a(bi: u32, row0: u32, kt: u32, k1: u32, idx: u32) -> vec4f {
  if (idx >= A_VECS) { return vec4f(0.0); }
  if (A_K == 1u) {
    let m = row0 + idx / BK4;
    let k = kt + 4u * (idx % BK4);
    if (m >= p.M || k >= k1) { return vec4f(0.0); }
    return vec4f(a[(bi * p.a_bs + m * p.lda + k) / 4u]);
  }
  let k = kt + idx / (BM / 4u);
  let m = row0 + 4u * (idx % (BM / 4u));
  if (m >= p.M || k >= k1) { return vec4f(0.0); }
  return vec4f(a[(bi * p.a_bs + k * p.lda + m) / 4u]);
}

fn load_b(bi: u32, col0: u32, kt: u32, k1: u32, idx: u32) -> vec4f {
  if (idx >= B_VECS) { return vec4f(0.0); }
  if (B_K == 1u) {
    let n = col0 + idx / BK4;
    let k = kt + 4u * (idx % BK4);
    if (n >= p.N || k >= k1) { return vec4f(0.0); }
    return vec4f(b[(bi * p.b_bs + n * p.ldb + k) / 4u]);
  }
  let k = kt + idx / (BN / 4u);
  let n = col0 + 4u * (idx % (BN / 4u));
  if (n >= p.N || k >= k1) { return vec4f(0.0); }
  return vec4f(b[(bi * p.b_bs + k * p.ldb + n) / 4u]);
}

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
    for (var k4 = 0u; k4 < BK4; k4++) {
      var av: array<vec4f, TM>;
      for (var i = 0u; i < TM; i++) { av[i] = As[(ty + i * WY) * A_STRIDE + k4]; }
      for (var j = 0u; j < TN; j++) {
        let bv = Bs[(tx + j * WX) * B_STRIDE + k4];
        for (var i = 0u; i < TM; i++) { (*acc)[i * TN4 + j / 4u][j % 4u] += dot(av[i], bv); }
      }
    }
  } else if (A_K == 1u) {
    // dY·W: A rows K-contiguous, B rows N-contiguous; A's four k values scale four B rows.
    for (var k4 = 0u; k4 < BK4; k4++) {
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
    for (var k = 0u; k < BK; k++) {
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

// The dot products of this thread's block over k in [k0, k1).
fn tile_product(lid: vec2u, wid: vec2u, bi: u32, k0: u32, k1: u32) -> array<vec4f, TM * TN4> {
  var acc: array<vec4f, TM * TN4>;
  let t = lid.y * WX + lid.x;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  var a_next: array<vec4f, A_LOADS>;
  var b_next: array<vec4f, B_LOADS>;
  for (var l = 0u; l < A_LOADS; l++) { a_next[l] = load_a(bi, row0, k0, k1, t + l * THREADS); }
  for (var l = 0u; l < B_LOADS; l++) { b_next[l] = load_b(bi, col0, k0, k1, t + l * THREADS); }
  for (var kt = k0; kt < k1; kt += BK) {
    for (var l = 0u; l < A_LOADS; l++) {
      let idx = t + l * THREADS;
      if (idx < A_VECS) { As[a_slot(idx)] = a_next[l]; }
    }
    for (var l = 0u; l < B_LOADS; l++) {
      let idx = t + l * THREADS;
      if (idx < B_VECS) { Bs[b_slot(idx)] = b_next[l]; }
    }
    workgroupBarrier();
    // Fetch the next tile while this one is multiplied (out-of-range loads give 0 and are never stored).
    for (var l = 0u; l < A_LOADS; l++) { a_next[l] = load_a(bi, row0, kt + BK, k1, t + l * THREADS); }
    for (var l = 0u; l < B_LOADS; l++) { b_next[l] = load_b(bi, col0, kt + BK, k1, t + l * THREADS); }
    multiply_tile(lid.x, lid.y, &acc);
    workgroupBarrier();
  }
  return acc;
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
      let at = wid.z * p.c_bs + m * p.ldc + n;
      var v = p.alpha * acc[i * TN4 + j / 4u][j % 4u];
      // beta = 0 must not read C: it may hold garbage (or NaN) that 0·x would keep.
      if (p.beta != 0.0) { v += p.beta * f32(c[at]); }
      c[at] = c_t(v);
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

// One thread per output element: sums the splits in a fixed order (deterministic), applies alpha and beta.
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
  let at = bi * p.c_bs + m * p.ldc + n;
  var v = p.alpha * sum;
  if (p.beta != 0.0) { v += p.beta * f32(c[at]); }
  c[at] = c_t(v);
}
