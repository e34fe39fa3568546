// Two-stage reductions to one f32: stage 1 reduces a strided slice per workgroup into partials[workgroup],
// stage 2 (one workgroup) reduces the partials. `OP` selects the reduction: 0 = sum, 1 = max |x|.
// Sums accumulate in f32 with a tree in workgroup memory (pairwise, so error grows like log n).

override WG: u32 = 256;
override OP: u32 = 0;

struct Params {
  n: u32,
  inf_bits: u32, // 0x7f800000: WGSL rejects an infinite constant, so the host passes +inf's bits

  _pad1: u32,
  _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<in_t>;
@group(0) @binding(2) var<storage, read_write> partials: array<f32>;

var<workgroup> tile: array<f32, WG>;

fn combine(a: f32, b: f32) -> f32 {
  if (OP == 0u) { return a + b; }
  return max(a, b);
}

fn load(i: u32) -> f32 {
  let v = f32(x[i]);
  if (OP == 0u) { return v; }
  // max |x| must not lose NaN (max() may drop it, and compilers may fold v != v): test the bits, and turn NaN
  // into +inf so the caller sees a non-finite result.
  let is_nan = (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u;
  return select(abs(v), bitcast<f32>(p.inf_bits), is_nan);
}

@compute @workgroup_size(WG)
fn reduce(@builtin(local_invocation_id) lid: vec3u, @builtin(workgroup_id) wid: vec3u,
          @builtin(num_workgroups) groups: vec3u) {
  let stride = groups.x * WG;
  var acc = 0.0;
  for (var i = wid.x * WG + lid.x; i < p.n; i += stride) {
    acc = combine(acc, load(i));
  }
  tile[lid.x] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid.x < s) { tile[lid.x] = combine(tile[lid.x], tile[lid.x + s]); }
    workgroupBarrier();
  }
  if (lid.x == 0u) { partials[wid.x] = tile[0]; }
}
