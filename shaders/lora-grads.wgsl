// Grouped LoRA weight gradients: every adapter of a block phase in one dispatch, f32 accumulation, ADDED to G.
// Each problem is one tall-skinny product over the N tokens, P (cols, r) = Σ_t X[t, :]ᵀ · R[t, col : col + r]:
//   dB (out, r) += s · dyᵀ · u            X = dy (N, out), R holds u; stored G[off + c·r + j]
//   dA (r, in)  += s · vᵀ · dropout(x)     X = x (N, in),   R holds v; stored G[off + j·in + c], x masked as loaded
// so both kinds are the same loop and differ only in where an output lands and in the mask.
//
// Work list (built on the host once per (problem list, N), src/engine/kernels/lora-grads.ts): the u32 table
// holds PROBLEM_WORDS words per problem, then 3 words per tile (problem, first column, first rank). A tile is
// 4·CT columns × 4·RV ranks of one problem. The tokens are cut into p.chunks chunks of p.chunk_tokens (the last
// may be shorter), and workgroup w takes tile w % tiles over chunk w / tiles: a dispatch has tiles × chunks
// workgroups instead of only ~tiles, each looping over a chunk rather than all N tokens (on a large GPU the
// unsplit loop is latency-bound: few workgroups, long serial loops).
//   chunks = 1: the workgroup adds s·sum into G itself (binding 6 is G); every output has exactly one writer.
//   chunks > 1: binding 6 is an f32 workspace of chunks × p.out_stride words; the workgroup stores its chunk's
//   partial sum at workspace[chunk·out_stride + ws_off + local], and shaders/lora-grads-reduce.wgsl then adds
//   the chunks in chunk order and s·sum into G. No atomics either way, so the result is the same run to run,
//   and the uniforms and bindings are the same every step.
//
// Inside the workgroup the chunk is split across S slices: thread (x, y) owns columns c0 + 4x .. + 3 and
// the tile's 4·RV ranks, and sums tokens t = y, y + S, y + 2S, ... of the chunk (neighbouring slices read
// neighbouring rows, and the CT threads of a slice read one row's consecutive columns). A token costs a thread
// one 4-column load of X (vec4 when the layout allows) and RV 4-rank loads of R (the same address for the whole
// slice) for 16·RV FMAs. At the end the S partial sums are added in slice order through workgroup memory:
// deterministic.

const THREADS: u32 = CT * S;
const PROBLEM_WORDS: u32 = 13u;

struct Params {
  tokens: u32, ldr: u32, tiles: u32, item_base: u32, // ldr: R's row stride; tiles from word item_base
  step_add: u32, grad_base: u32, stream_base: u32, chunks: u32, // step = rng[0] + step_add; G offsets + grad_base;
                                                                // dropout streams + stream_base (one plan, many layers)
  chunk_tokens: u32, out_stride: u32, pad0: u32, pad1: u32, // out_stride: workspace words per chunk
}

// Words of a problem record, in this order.
struct Problem {
  kind: u32,      // 0: dB, stored (cols, r); 1: dA, stored (r, cols)
  input: u32,     // which of x0..x3 is X
  cols: u32,      // out (dB) or in (dA)
  r: u32,
  rank_col: u32,  // R[t, rank_col + j]
  grad_off: u32,  // element offset in G
  x_stride: u32,  // X[t, c] = x[t·x_stride + x_col + c]
  x_col: u32,
  scale: f32,     // s, times 1/(1 − p) when masked (kept values are scaled once, at the end)
  seed: u32,
  threshold: u32, // keep iff hash ≥ threshold; 0: no dropout
  stream: u32,
  ws_off: u32,    // first word of this problem's outputs in a chunk's workspace row (layout as in G)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(6) var<storage, read_write> dest: array<f32>; // G (chunks = 1) or the workspace
@group(0) @binding(7) var<storage, read> table: array<u32>;

var<workgroup> partials: array<vec4f, 4 * THREADS>; // 16 KiB at 256 threads

fn problem_at(i: u32) -> Problem {
  let w = i * PROBLEM_WORDS;
  return Problem(table[w], table[w + 1u], table[w + 2u], table[w + 3u], table[w + 4u], table[w + 5u],
                 table[w + 6u], table[w + 7u], bitcast<f32>(table[w + 8u]), table[w + 9u], table[w + 10u],
                 table[w + 11u], table[w + 12u]);
}

// acc[ci·RV + jv] holds ranks j0 + 4·jv .. + 3 of column c0 + ci, summed over this thread's tokens. A trip
// takes U tokens (t, t + S, ...): their loads are all issued before the FMAs that wait on them, so a GPU has U
// loads in flight per thread rather than one memory latency per token. Token order per thread is fixed.
// The thread's tokens run from `first` (its chunk's first token + its slice) to `end` (its chunk's end).
fn accumulate(pr: Problem, c0: u32, j0: u32, first: u32, end: u32, acc: ptr<function, array<vec4f, 4 * RV>>) {
  let key = dropout_key(pr);
  for (var t0 = first; t0 < end; t0 += S * U) {
    var xs: array<vec4f, U>;
    var rs: array<vec4f, U * RV>;
    for (var u = 0u; u < U; u++) {
      let t = t0 + u * S;
      // Zeros past the last token, stored every trip: on Dawn + lavapipe a var declared in the loop body kept the
      // previous trip's values instead of being zero-initialised again (the tail counted a token twice).
      let live = t < end;
      xs[u] = vec4f(0.0);
      if (live) { xs[u] = load_x(pr, t, c0) * keep(pr, key, t, c0); }
      for (var jv = 0u; jv < RV; jv++) {
        rs[u * RV + jv] = vec4f(0.0);
        if (live) { rs[u * RV + jv] = load_r(pr, t, j0 + 4u * jv); }
      }
    }
    for (var u = 0u; u < U; u++) {
      for (var jv = 0u; jv < RV; jv++) {
        for (var ci = 0u; ci < 4u; ci++) { (*acc)[ci * RV + jv] += xs[u][ci] * rs[u * RV + jv]; }
      }
    }
  }
}

@compute @workgroup_size(CT, S)
fn lora_grads(
  @builtin(local_invocation_id) lid: vec3u,
  @builtin(workgroup_id) wid: vec3u,
  @builtin(num_workgroups) groups: vec3u,
) {
  let item = wid.x + wid.y * groups.x;
  let tile = item % p.tiles;
  let chunk = item / p.tiles;
  if (chunk >= p.chunks) { return; } // the grid's last row may be longer than the list (same for the whole group)
  let at = p.item_base + 3u * tile;
  let pr = problem_at(table[at]);
  let table_c0 = table[at + 1u];
  let c0 = table_c0 + 4u * lid.x;
  let j0 = table[at + 2u];
  var acc: array<vec4f, 4 * RV>;
  let begin = chunk * p.chunk_tokens;
  let end = min(p.tokens, begin + p.chunk_tokens);
  if (c0 < pr.cols) { accumulate(pr, c0, j0, begin + lid.y, end, &acc); }

  // The S slices' partial sums, added in slice order (deterministic): per rank vec4 jv, every thread leaves its
  // 4 columns × 4 ranks in workgroup memory, then each thread sums and stores 16·CT / THREADS outputs. Few
  // barriers and one store per output keep the code small (LLVM compiles it for software drivers too).
  let me = lid.y * CT + lid.x;
  for (var jv = 0u; jv < RV; jv++) {
    for (var ci = 0u; ci < 4u; ci++) { partials[4u * me + ci] = acc[ci * RV + jv]; }
    workgroupBarrier();
    for (var o = me; o < 16u * CT; o += THREADS) { add_output(pr, table_c0, j0 + 4u * jv, o, chunk); }
    workgroupBarrier();
  }
}

// Output o of a 4·CT-column × 4-rank group: column-major for dA's (r, cols) rows, rank-major for dB's (cols, r),
// so neighbouring threads store to neighbouring words.
fn add_output(pr: Problem, tile_c0: u32, j4: u32, o: u32, chunk: u32) {
  var col = o / 4u;
  var e = o % 4u;
  if (pr.kind == 1u) {
    col = o % (4u * CT);
    e = o / (4u * CT);
  }
  let c = tile_c0 + col;
  let j = j4 + e;
  if (c >= pr.cols || j >= pr.r) { return; }
  // Partials of thread (col / 4, slice s) are at 4·(s·CT + col / 4) + col % 4.
  var sum = 0.0;
  for (var s = 0u; s < S; s++) { sum += partials[4u * (s * CT + col / 4u) + col % 4u][e]; }
  let local = select(c * pr.r + j, j * pr.cols + c, pr.kind == 1u);
  if (p.chunks == 1u) {
    let at = p.grad_base + pr.grad_off + local;
    dest[at] = pr.scale * sum + dest[at];
  } else {
    dest[chunk * p.out_stride + pr.ws_off + local] = sum; // scaled and added to G by the reduce
  }
}

// ---- x: vec4 ----
// Every problem's cols, row stride and first column are multiples of 4: one vec4 load per token and thread.
@group(0) @binding(1) var<storage, read> x0: array<vec4<in_t>>;
@group(0) @binding(2) var<storage, read> x1: array<vec4<in_t>>;
@group(0) @binding(3) var<storage, read> x2: array<vec4<in_t>>;
@group(0) @binding(4) var<storage, read> x3: array<vec4<in_t>>;

// X[t, c0 .. c0 + 3] (c0 < cols, so all four are inside the row).
fn load_x(pr: Problem, t: u32, c0: u32) -> vec4f {
  let i = (t * pr.x_stride + pr.x_col + c0) / 4u;
  switch pr.input {
    case 0u: { return vec4f(x0[i]); }
    case 1u: { return vec4f(x1[i]); }
    case 2u: { return vec4f(x2[i]); }
    default: { return vec4f(x3[i]); }
  }
}

// ---- x: scalar ----
@group(0) @binding(1) var<storage, read> x0: array<in_t>;
@group(0) @binding(2) var<storage, read> x1: array<in_t>;
@group(0) @binding(3) var<storage, read> x2: array<in_t>;
@group(0) @binding(4) var<storage, read> x3: array<in_t>;

fn x_at(input: u32, i: u32) -> f32 {
  switch input {
    case 0u: { return f32(x0[i]); }
    case 1u: { return f32(x1[i]); }
    case 2u: { return f32(x2[i]); }
    default: { return f32(x3[i]); }
  }
}

// X[t, c0 .. c0 + 3], zero past the problem's last column.
fn load_x(pr: Problem, t: u32, c0: u32) -> vec4f {
  let i = t * pr.x_stride + pr.x_col + c0;
  var v = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (c0 + e < pr.cols) { v[e] = x_at(pr.input, i + e); } }
  return v;
}

// ---- r: vec4 ----
// R's row stride and every rank_col are multiples of 4. Lanes past r read a neighbour's ranks (or padding):
// their sums are never stored. A whole group past r is not read (it could run past the buffer's end).
@group(0) @binding(5) var<storage, read> rk: array<vec4f>;

fn load_r(pr: Problem, t: u32, j: u32) -> vec4f {
  if (j >= pr.r) { return vec4f(0.0); }
  return rk[(t * p.ldr + pr.rank_col + j) / 4u];
}

// ---- r: scalar ----
@group(0) @binding(5) var<storage, read> rk: array<f32>;

fn load_r(pr: Problem, t: u32, j: u32) -> vec4f {
  let i = t * p.ldr + pr.rank_col + j;
  var v = vec4f(0.0);
  for (var e = 0u; e < 4u; e++) { if (j + e < pr.r) { v[e] = rk[i + e]; } }
  return v;
}

// ---- rng: off ----
fn dropout_key(pr: Problem) -> u32 { return 0u; }
fn keep(pr: Problem, key: u32, t: u32, c0: u32) -> vec4f { return vec4f(1.0); }

// ---- rng: on ----
// LoRA dropout on x exactly as shaders/matmul-tiled.wgsl's mask_b applies it in the per-adapter product (and
// test/reference/dropout.ts computes it): element (t, c) of the adapter's x, index t·cols + c, is kept iff
// hash(seed, step, stream, index) ≥ threshold (dropout-hash.wgsl, appended by the host). The step is
// rng[0] + step_add, so uniforms never change per step.
@group(0) @binding(8) var<storage, read> rng: array<u32>;

fn dropout_key(pr: Problem) -> u32 {
  return hash_key(pr.seed, rng[0] + p.step_add, pr.stream + p.stream_base);
}

fn kept(key: u32, threshold: u32, i: u32) -> bool {
  return hash_index(i, key) >= threshold;
}

// 1 or 0 per column; the 1/(1 − p) of kept values is in the problem's scale.
fn keep(pr: Problem, key: u32, t: u32, c0: u32) -> vec4f {
  if (pr.threshold == 0u) { return vec4f(1.0); }
  let i = t * pr.cols + c0;
  var v: vec4f;
  for (var e = 0u; e < 4u; e++) { v[e] = select(0.0, 1.0, kept(key, pr.threshold, i + e)); }
  return v;
}
