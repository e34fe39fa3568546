// Inverted dropout with a counter-based RNG: element i of launch (seed, step, stream) is kept iff
// hash(seed, step, stream, i) ≥ threshold (= p · 2³²), and y = x · keep / (1 − p). Nothing is stored: the
// backward regenerates the same mask from the same (seed, step, stream) and applies it to dy.
// `stream` separates dropout sites within a step (layer · sites + site), so their masks are independent.
// The hash is Wellons' lowbias32 (a bijective 32-bit mixer), chained over the counter words; the same
// function lives in test/reference/dropout.ts, so the mask is checked bit for bit.
// One thread per element; 2-D grid of 1-D workgroups.

override WG: u32 = 256;

struct Params {
  n: u32,
  threshold: u32, // keep iff hash ≥ threshold; 0 keeps everything (p = 0)
  scale: f32,     // 1 / (1 − p)
  seed: u32,
  step: u32,
  stream: u32,
  accumulate: u32, // 1: out += masked x (the LoRA branch's input gradient joins the base path's)
  _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<out_t>; // (n)
@group(0) @binding(2) var<storage, read> x: array<in_t>;          // (n)

fn lowbias32(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

// Two keyed rounds over the element index, so masks of different keys are unrelated (not shifts or
// permutations of each other).
fn dropout_hash(i: u32) -> u32 {
  let key = lowbias32(lowbias32(lowbias32(p.seed ^ 0x9e3779b9u) ^ p.step) ^ p.stream);
  return lowbias32(lowbias32(i ^ key) + key);
}

@compute @workgroup_size(WG)
fn dropout(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  let keep = dropout_hash(i) >= p.threshold;
  var v = select(0.0, f32(x[i]) * p.scale, keep);
  if (p.accumulate == 1u) { v += f32(out[i]); }
  out[i] = out_t(v);
}
