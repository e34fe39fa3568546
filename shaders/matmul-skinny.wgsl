// Skinny matmul: C[b] = alpha · A[b]·B[b] + beta · C[b] for few output columns (N ≤ NMAX ≤ 64), the LoRA rank-r
// side products u = dropout(x)·Aᵀ (forward) and v = dy·B (backward), f32 accumulation.
//
// The tiled kernel gives such a product only M/BM workgroups, each walking all of K: the GPU idles. Here K is
// split inside the workgroup instead: LANES threads share one row of C, lane l reading A's vec4 l, l + LANES, …
// along K (LANES consecutive vec4 of a row per step: coalesced reads of X), each keeping NMAX partial dot
// products; then the lanes' partials are summed through workgroup memory in a fixed order (deterministic).
// A workgroup holds ROWS rows of C; the grid is (ceil(M / ROWS), 1, batch).
//   A is K-contiguous and read as vec4 (K, lda, the offset and the batch stride multiples of 4):
//     A(m,k) = a[a_off + b·a_bs + m·lda + k]
//   B_K = 1: B(k,n) = b[b_off + b·b_bs + n·ldb + k]   (A of the adapter, (r, in) rows: x·Aᵀ)
//   B_K = 0: B(k,n) = b[b_off + b·b_bs + k·ldb + n]   (B of the adapter, (out, r): dy·B)
// B is small (K × N) and every row of a workgroup reads the same B, so it is read straight from global memory
// (cache hits), as vec4 along its contiguous axis where it can (section `b: vec4`), else with scalar loads.
// Columns n ≥ N read B's last column (clamped, so in bounds and branch-free) and are never stored.
// `mask_a: on` drops elements of A as it is loaded, exactly as matmul-tiled.wgsl's mask_a: the same hash of
// (seed, step, stream + b·stream_bs) at index m·mask_ld + k, kept values scaled by keep_scale = 1 / (1 − p).

const NV: u32 = NMAX / 4u; // accumulator vec4 per thread
// The lanes' partials are summed CH columns at a time: ROWS · CH slots of LANES floats, padded by one so the
// lanes of a row write consecutive words and the summing threads (one slot each) read different banks.
const CH: u32 = 8u;
const SLOT: u32 = LANES + 1u;

struct Params {
  M: u32, N: u32, K: u32, batch: u32,
  lda: u32, ldb: u32, ldc: u32, mask_ld: u32,
  a_bs: u32, b_bs: u32, c_bs: u32, seed: u32, // batch strides (elements)
  a_off: u32, b_off: u32, c_off: u32, threshold: u32, // element offsets; dropout keeps iff hash ≥ threshold
  alpha: f32, beta: f32, keep_scale: f32, stream: u32,
  stream_bs: u32, step_add: u32, pad0: u32, pad1: u32, // stream + b·stream_bs; step = rng[0] + step_add
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4<a_t>>;
@group(0) @binding(3) var<storage, read_write> c: array<c_t>;

var<workgroup> partials: array<f32, ROWS * CH * SLOT>;

@compute @workgroup_size(LANES, ROWS)
fn matmul_skinny(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u) {
  let lane = lid.x;
  let row = lid.y;
  let bi = wid.z;
  let m = wid.x * ROWS + row;
  // acc[jv][e]: this lane's share of C(m, 4·jv + e).
  var acc: array<vec4f, NV>;
  if (m < p.M) {
    let a_row = (p.a_off + bi * p.a_bs + m * p.lda) / 4u;
    let key = mask_key(bi);
    for (var k4 = lane; k4 < p.K / 4u; k4 += LANES) {
      let av = vec4f(a[a_row + k4]) * mask_a(key, m * p.mask_ld + 4u * k4);
      accumulate(&acc, av, bi, 4u * k4);
    }
  }
  let t = row * LANES + lane;
  for (var c0 = 0u; c0 < NMAX; c0 += CH) {
    if (c0 >= p.N) { break; } // uniform: p.N is the same for the whole workgroup
    for (var j = 0u; j < CH; j++) {
      partials[(row * CH + j) * SLOT + lane] = acc[(c0 + j) / 4u][(c0 + j) % 4u];
    }
    workgroupBarrier();
    if (t < ROWS * CH) {
      let out_row = wid.x * ROWS + t / CH;
      let n = c0 + t % CH;
      var sum = 0.0;
      for (var l = 0u; l < LANES; l++) { sum += partials[t * SLOT + l]; }
      if (out_row < p.M && n < p.N) {
        let at = p.c_off + bi * p.c_bs + out_row * p.ldc + n;
        var v = p.alpha * sum;
        // beta = 0 must not read C: it may hold garbage (or NaN) that 0·x would keep.
        if (p.beta != 0.0) { v += p.beta * f32(c[at]); }
        c[at] = c_t(v);
      }
    }
    workgroupBarrier();
  }
}

// acc += av (A(m, k..k+3)) times B(k..k+3, 0..NMAX).
fn accumulate(acc: ptr<function, array<vec4f, NV>>, av: vec4f, bi: u32, k: u32) {
  if (B_K == 1u) {
    // B's rows are K-contiguous: one dot product of vec4 along k per column.
    for (var n = 0u; n < NMAX; n++) { (*acc)[n / 4u][n % 4u] += dot(av, b_along_k(bi, k, n)); }
  } else {
    // B's rows are N-contiguous: A's four k values scale four rows of B.
    for (var e = 0u; e < 4u; e++) {
      for (var jv = 0u; jv < NV; jv++) { (*acc)[jv] += av[e] * b_along_n(bi, k + e, jv); }
    }
  }
}

// ---- b: vec4 ----
@group(0) @binding(2) var<storage, read> b: array<vec4<b_t>>;

// B(k..k+3, n) of a K-contiguous B (B_K = 1).
fn b_along_k(bi: u32, k: u32, n: u32) -> vec4f {
  let col = min(n, p.N - 1u);
  return vec4f(b[(p.b_off + bi * p.b_bs + col * p.ldb + k) / 4u]);
}

// B(k, 4·jv..4·jv+3) of an N-contiguous B (B_K = 0; N a multiple of 4 here).
fn b_along_n(bi: u32, k: u32, jv: u32) -> vec4f {
  let col4 = min(jv, p.N / 4u - 1u);
  return vec4f(b[(p.b_off + bi * p.b_bs + k * p.ldb) / 4u + col4]);
}

// ---- b: scalar ----
@group(0) @binding(2) var<storage, read> b: array<b_t>;

fn b_along_k(bi: u32, k: u32, n: u32) -> vec4f {
  let at = p.b_off + bi * p.b_bs + min(n, p.N - 1u) * p.ldb + k;
  return vec4f(f32(b[at]), f32(b[at + 1u]), f32(b[at + 2u]), f32(b[at + 3u]));
}

fn b_along_n(bi: u32, k: u32, jv: u32) -> vec4f {
  let row = p.b_off + bi * p.b_bs + k * p.ldb;
  let last = p.N - 1u;
  let n = 4u * jv;
  return vec4f(
    f32(b[row + min(n, last)]),
    f32(b[row + min(n + 1u, last)]),
    f32(b[row + min(n + 2u, last)]),
    f32(b[row + min(n + 3u, last)]),
  );
}

// ---- mask_a: off ----
fn mask_key(bi: u32) -> u32 { return 0u; }
fn mask_a(key: u32, at: u32) -> vec4f { return vec4f(1.0); }

// ---- mask_a: on ----
// The dropout hash of dropout-hash.wgsl (appended by the host). The step is rng[0] + step_add: the host writes
// the step's base once per step and a micro-batch adds its index, so the uniforms are the same every step.
@group(0) @binding(4) var<storage, read> rng: array<u32>;

fn mask_key(bi: u32) -> u32 {
  return hash_key(p.seed, rng[0] + p.step_add, p.stream + bi * p.stream_bs);
}

// Elements at..at+3 of the masked tensor kept (keep_scale) or dropped (0), as matmul-tiled.wgsl's mask_a.
fn mask_a(key: u32, at: u32) -> vec4f {
  var v: vec4f;
  for (var e = 0u; e < 4u; e++) { v[e] = select(0.0, p.keep_scale, hash_index(at + e, key) >= p.threshold); }
  return v;
}
