// out = alpha·x, and the precision cast. A cast to f16 saturates at ±65504 and counts every element that did
// not fit (including inf and NaN) in `overflow[0]`, so callers can report it instead of silently training on inf.

override WG: u32 = 256;
const F16_MAX: f32 = 65504.0;

struct Params {
  n: u32,
  alpha: f32,
  saturate: u32, // 1 when out_t is f16
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<in_t>;
@group(0) @binding(2) var<storage, read_write> out: array<out_t>;
@group(0) @binding(3) var<storage, read_write> overflow: array<atomic<u32>>;

@compute @workgroup_size(WG)
fn scale_cast(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = gid.x + gid.y * groups.x * WG;
  if (i >= p.n) { return; }
  var v = p.alpha * f32(x[i]);
  if (p.saturate == 1u) {
    // NaN fails both comparisons, so test "inside the range" instead of "outside".
    let inside = abs(v) <= F16_MAX;
    if (!inside) {
      atomicAdd(&overflow[0], 1u);
      v = select(0.0, clamp(v, -F16_MAX, F16_MAX), v == v);
    }
  }
  out[i] = out_t(v);
}
