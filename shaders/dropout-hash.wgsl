// The counter-based dropout hash, appended by the host to every shader that drops elements (dropout.wgsl,
// matmul-tiled.wgsl's masks, lora-grads.wgsl) and mirrored bit for bit by test/reference/dropout.ts: element i
// of (seed, step, stream) is kept iff hash_index(i, hash_key(seed, step, stream)) ≥ threshold (= p · 2³²).
// Wellons' lowbias32 (a bijective 32-bit mixer), chained over the counter words.

fn lowbias32(v: u32) -> u32 {
  var h = v;
  h ^= h >> 16u;
  h *= 0x7feb352du;
  h ^= h >> 15u;
  h *= 0x846ca68bu;
  h ^= h >> 16u;
  return h;
}

fn hash_key(seed: u32, step: u32, stream: u32) -> u32 {
  return lowbias32(lowbias32(lowbias32(seed ^ 0x9e3779b9u) ^ step) ^ stream);
}

// Two keyed rounds over the element index, so masks of different keys are unrelated (not shifts or
// permutations of each other).
fn hash_index(i: u32, key: u32) -> u32 {
  return lowbias32(lowbias32(i ^ key) + key);
}
