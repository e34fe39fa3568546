// Elementwise kernels over flat arrays. `in_t`/`out_t` are storage-type aliases injected by the loader, so
// one source serves f32 and f16 tensors; arithmetic is done in f32.
// Long arrays launch as a 2-D grid of 1-D workgroups: index = gid.x + gid.y * num_workgroups.x * WG.

override WG: u32 = 256;

struct Params {
  n: u32,
  alpha: f32,
  beta: f32,
  _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<in_t>;
@group(0) @binding(2) var<storage, read> b: array<in_t>;
@group(0) @binding(3) var<storage, read_write> out: array<out_t>;

fn flat_index(gid: vec3u, groups: vec3u) -> u32 {
  return gid.x + gid.y * groups.x * WG;
}

// out = alpha·a + beta·b
@compute @workgroup_size(WG)
fn axpby(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let i = flat_index(gid, groups);
  if (i >= p.n) { return; }
  out[i] = out_t(p.alpha * f32(a[i]) + p.beta * f32(b[i]));
}
