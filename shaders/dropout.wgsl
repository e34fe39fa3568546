// Inverted dropout with a counter-based RNG: element i of launch (seed, step, stream) is kept iff
// hash(seed, step, stream, i) ≥ threshold (= p · 2³²), and y = x · keep / (1 − p). Nothing is stored: the
// backward regenerates the same mask from the same (seed, step, stream) and applies it to dy.
// `stream` separates dropout sites within a step (layer · sites + site), so their masks are independent.
// The hash is dropout-hash.wgsl's (appended by the host), mirrored in test/reference/dropout.ts, so the mask is
// checked bit for bit.
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

@compute @workgroup_size(WG)
fn dropout(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  let keep = hash_index(i, hash_key(p.seed, p.step, p.stream)) >= p.threshold;
  var v = select(0.0, f32(x[i]) * p.scale, keep);
  if (p.accumulate == 1u) { v += f32(out[i]); }
  out[i] = out_t(v);
}
