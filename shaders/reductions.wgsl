// Workgroup sums for the norm and grad-norm shaders, appended to their source (reductions.ts): the kernel
// aliases red_t (f32, vec2f, ...) and overrides WG (a power of two) before this text; one section is kept.
// ---- reductions: tree ----
// wg_sum: every thread passes its partial (red_t, aliased by the kernel) and gets the workgroup's total. WG is a
// power of two. Call from uniform control flow; the trailing barrier lets the next call reuse `red`.
var<workgroup> red: array<red_t, WG>;

fn wg_sum(x: red_t, lid: u32) -> red_t {
  red[lid] = x;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}

// ---- reductions: subgroups ----
// wg_sum, the same contract: each subgroup sums in registers and its first lane posts the result in its own slot
// of `red` (every other slot gets zero); after one barrier every subgroup folds all WG slots, its lanes striding
// by the subgroup size: WG / size loads per lane (8 at WG = 256 with 32-wide subgroups; 32 with lavapipe's 8-wide
// ones). Lanes and sizes come from subgroupExclusiveAdd / subgroupAdd rather than from how the device lays
// subgroups over the workgroup, which WGSL does not promise; that layout fixes the order, so results repeat.
var<workgroup> red: array<red_t, WG>;

fn wg_sum(x: red_t, lid: u32) -> red_t {
  let lane = subgroupExclusiveAdd(1u);
  let size = subgroupAdd(1u);
  let part = subgroupAdd(x);
  red[lid] = select(red_t(0.0), part, lane == 0u);
  workgroupBarrier();
  var y = red_t(0.0);
  for (var i = lane; i < WG; i += size) { y += red[i]; }
  let total = subgroupAdd(y);
  workgroupBarrier();
  return total;
}
