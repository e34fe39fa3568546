// Batched, strided matmul: C[b] = alpha · A[b]·B[b] + beta · C[b], accumulated in f32.
// Any operand layout is a choice of strides (uniforms), so A·B, A·Bᵀ and Aᵀ·B share one kernel:
//   A(m,k) = a[b·a_bs + m·a_rs + k·a_cs],  B(k,n) = b[b·b_bs + k·b_rs + n·b_cs],  C(m,n) = c[b·c_bs + m·c_rs + n].
// Register blocking: a 16×16 workgroup computes a 64×64 tile of C, each thread a 4×4 block whose rows and
// columns are 16 apart (so neighbouring threads read neighbouring words of the shared tiles).
// Split-K (for tall-skinny products such as LoRA dA/dB, where K = batch·seq): workgroup z = batch·splits;
// `matmul_partial` writes each split's raw dot products to an f32 workspace and `splitk_reduce` sums them.

const BM: u32 = 64u;
const BN: u32 = 64u;
const BK: u32 = 16u;
const WG: u32 = 16u; // threads per side; each covers BM / WG = 4 rows and BN / WG = 4 columns

struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  a_rs: u32, a_cs: u32, a_bs: u32, splits: u32,
  b_rs: u32, b_cs: u32, b_bs: u32, k_chunk: u32,
  c_rs: u32, c_bs: u32, alpha: f32, beta: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<a_t>;
@group(0) @binding(2) var<storage, read> b: array<b_t>;
@group(0) @binding(3) var<storage, read_write> c: array<c_t>;
@group(0) @binding(4) var<storage, read_write> ws: array<f32>;

var<workgroup> As: array<f32, BK * BM>; // As[k * BM + m]
var<workgroup> Bs: array<f32, BK * BN>; // Bs[k * BN + n]

// Accumulates the dot products of this thread's 4×4 block over k in [k0, k1).
fn tile_product(lid: vec2u, wid: vec2u, bi: u32, k0: u32, k1: u32) -> array<vec4f, 4> {
  var acc: array<vec4f, 4>;
  let row0 = wid.y * BM;
  let col0 = wid.x * BN;
  let t = lid.y * WG + lid.x;
  for (var kt = k0; kt < k1; kt += BK) {
    // 256 threads load 1024 elements of each tile, 4 each; out-of-range elements load as 0.
    for (var j = 0u; j < 4u; j++) {
      let idx = t + j * WG * WG;
      let am = idx / BK;
      let ak = idx % BK;
      let gm = row0 + am;
      let gk = kt + ak;
      var av = 0.0;
      if (gm < p.M && gk < k1) { av = f32(a[bi * p.a_bs + gm * p.a_rs + gk * p.a_cs]); }
      As[ak * BM + am] = av;
      let bk = idx / BN;
      let bn = idx % BN;
      let gk2 = kt + bk;
      let gn = col0 + bn;
      var bv = 0.0;
      if (gk2 < k1 && gn < p.N) { bv = f32(b[bi * p.b_bs + gk2 * p.b_rs + gn * p.b_cs]); }
      Bs[bk * BN + bn] = bv;
    }
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let av = vec4f(As[k * BM + lid.y], As[k * BM + lid.y + 16u], As[k * BM + lid.y + 32u],
                     As[k * BM + lid.y + 48u]);
      let bv = vec4f(Bs[k * BN + lid.x], Bs[k * BN + lid.x + 16u], Bs[k * BN + lid.x + 32u],
                     Bs[k * BN + lid.x + 48u]);
      acc[0] += av.x * bv;
      acc[1] += av.y * bv;
      acc[2] += av.z * bv;
      acc[3] += av.w * bv;
    }
    workgroupBarrier();
  }
  return acc;
}

@compute @workgroup_size(WG, WG)
fn matmul(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let acc = tile_product(lid.xy, wid.xy, wid.z, 0u, p.K);
  for (var i = 0u; i < 4u; i++) {
    let m = wid.y * BM + lid.y + 16u * i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = wid.x * BN + lid.x + 16u * j;
      if (n >= p.N) { continue; }
      let at = wid.z * p.c_bs + m * p.c_rs + n;
      var v = p.alpha * acc[i][j];
      // beta = 0 must not read C: it may hold garbage (or NaN) that 0·x would keep.
      if (p.beta != 0.0) { v += p.beta * f32(c[at]); }
      c[at] = c_t(v);
    }
  }
}

@compute @workgroup_size(WG, WG)
fn matmul_partial(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let bi = wid.z / p.splits;
  let split = wid.z % p.splits;
  let k0 = split * p.k_chunk;
  let k1 = min(p.K, k0 + p.k_chunk);
  let acc = tile_product(lid.xy, wid.xy, bi, k0, k1);
  let base = (split * p.batch + bi) * p.M * p.N;
  for (var i = 0u; i < 4u; i++) {
    let m = wid.y * BM + lid.y + 16u * i;
    if (m >= p.M) { continue; }
    for (var j = 0u; j < 4u; j++) {
      let n = wid.x * BN + lid.x + 16u * j;
      if (n < p.N) { ws[base + m * p.N + n] = acc[i][j]; }
    }
  }
}

// One thread per output element: sums the splits in a fixed order (deterministic), applies alpha and beta.
@compute @workgroup_size(256)
fn splitk_reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * 256u;
  let per_batch = p.M * p.N;
  if (i >= per_batch * p.batch) { return; }
  var sum = 0.0;
  for (var s = 0u; s < p.splits; s++) { sum += ws[s * per_batch * p.batch + i]; }
  let bi = i / per_batch;
  let m = (i % per_batch) / p.N;
  let n = i % p.N;
  let at = bi * p.c_bs + m * p.c_rs + n;
  var v = p.alpha * sum;
  if (p.beta != 0.0) { v += p.beta * f32(c[at]); }
  c[at] = c_t(v);
}

// M = 1 (decode): a 64×4 workgroup computes 4 outputs, each a 64-lane strided dot product over K folded by a
// tree in workgroup memory. The tiled kernel would waste 63 of its 64 rows here.
var<workgroup> partial: array<f32, 256>;

@compute @workgroup_size(64, 4)
fn matvec(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let n = wid.x * 4u + lid.y;
  let bi = wid.z;
  var acc = 0.0;
  if (n < p.N) {
    for (var k = lid.x; k < p.K; k += 64u) {
      acc += f32(a[bi * p.a_bs + k * p.a_cs]) * f32(b[bi * p.b_bs + k * p.b_rs + n * p.b_cs]);
    }
  }
  let slot = lid.y * 64u + lid.x;
  partial[slot] = acc;
  workgroupBarrier();
  for (var s = 32u; s > 0u; s >>= 1u) {
    if (lid.x < s) { partial[slot] += partial[slot + s]; }
    workgroupBarrier();
  }
  if (lid.x == 0u && n < p.N) {
    let at = bi * p.c_bs + n;
    var v = p.alpha * partial[slot];
    if (p.beta != 0.0) { v += p.beta * f32(c[at]); }
    c[at] = c_t(v);
  }
}
