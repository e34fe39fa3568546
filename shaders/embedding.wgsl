// Embedding gather: out[n, :] = wte[tokens[n], :] (+ wpe[pos_offset + n mod T, :] for GPT-2's learned
// positions), tokens (N) u32, wte (V, C), wpe (P, C), out (N, C); the sum is formed in f32, rounded once.
// The token row is multiplied by `scale` (Gemma's √C, which the host has rounded to w_t as HF rounds
// embed_scale to the weight's dtype; 1 elsewhere): a product of two f16 values is exact in f32, so out is that
// product rounded once, as torch computes it in the weight's dtype.
// An id ≥ V must not read out of bounds: its row is written as zeros and it is recorded in `errors`
// = [count, firstIndex, firstId] u32 (the caller zeroes it; counts add up over launches, first stays first).
// The check is done by workgroup 0 alone, scanning all N ids with a tree reduction: no atomics, and the
// recorded first error is deterministic. One thread per output element; 2-D grid of 1-D workgroups.

override WG: u32 = 256; // power of two: the tree halves it

struct Params {
  N: u32,
  C: u32,
  V: u32,
  T: u32,          // tokens per sequence: position of token n is pos_offset + n mod T
  pos_offset: u32,
  scale: f32,
  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<out_t>; // (N, C)
@group(0) @binding(2) var<storage, read_write> errors: array<u32>; // [count, firstIndex, firstId]
@group(0) @binding(3) var<storage, read> tokens: array<u32>;      // (N)
@group(0) @binding(4) var<storage, read> wte: array<w_t>;         // (V, C)
@group(0) @binding(5) var<storage, read> wpe: array<w_t>;         // (P, C), embedding_pos only

var<workgroup> bad_count: array<u32, WG>;
var<workgroup> bad_first: array<u32, WG>;

// Called by every thread of workgroup 0 (uniform control flow: it holds barriers).
fn check_tokens(lid: u32) {
  var count = 0u;
  var first = 0xffffffffu;
  for (var n = lid; n < p.N; n += WG) {
    if (tokens[n] >= p.V) {
      count += 1u;
      first = min(first, n);
    }
  }
  bad_count[lid] = count;
  bad_first[lid] = first;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      bad_count[lid] += bad_count[lid + s];
      bad_first[lid] = min(bad_first[lid], bad_first[lid + s]);
    }
    workgroupBarrier();
  }
  if (lid == 0u && bad_count[0] > 0u) {
    let previous = errors[0];
    if (previous == 0u) {
      errors[1] = bad_first[0];
      errors[2] = tokens[bad_first[0]];
    }
    errors[0] = previous + bad_count[0];
  }
}

@compute @workgroup_size(WG)
fn embedding(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
             @builtin(num_workgroups) groups: vec3u) {
  let group = wid.x + wid.y * groups.x; // workgroup-uniform
  if (group == 0u) { check_tokens(lid.x); }
  let i = group * WG + lid.x;
  if (i >= p.N * p.C) { return; }
  let id = tokens[i / p.C];
  var v = 0.0;
  if (id < p.V) { v = f32(wte[id * p.C + i % p.C]) * p.scale; }
  out[i] = out_t(v);
}

@compute @workgroup_size(WG)
fn embedding_pos(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
                 @builtin(num_workgroups) groups: vec3u) {
  let group = wid.x + wid.y * groups.x;
  if (group == 0u) { check_tokens(lid.x); }
  let i = group * WG + lid.x;
  if (i >= p.N * p.C) { return; }
  let n = i / p.C;
  let c = i % p.C;
  let id = tokens[n];
  var v = 0.0;
  if (id < p.V) {
    // The host checked pos_offset + T ≤ P, so the position row is in range.
    v = f32(wte[id * p.C + c]) * p.scale + f32(wpe[(p.pos_offset + n % p.T) * p.C + c]);
  }
  out[i] = out_t(v);
}
