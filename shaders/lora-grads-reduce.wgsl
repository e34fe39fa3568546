// The second step of a token-split grouped LoRA gradient (shaders/lora-grads.wgsl with chunks > 1): every
// workspace row holds one token chunk's partial sums of all the plan's outputs, each problem's outputs at its
// ws_off in G's own layout. One thread per output adds the chunks in chunk order (the same order every run: the
// result is bit-identical run to run) and then s·sum into G, as the unsplit kernel would: G += s·Σ.

const PROBLEM_WORDS: u32 = 13u; // as in lora-grads.wgsl: ws_off is word 12, grad_off word 5, scale word 8

struct Params {
  outputs: u32, chunks: u32, problems: u32, grad_base: u32, // outputs: workspace words per chunk
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> workspace: array<f32>;
@group(0) @binding(2) var<storage, read_write> g: array<f32>;
@group(0) @binding(3) var<storage, read> table: array<u32>;

@compute @workgroup_size(WG)
fn lora_grads_reduce(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) groups: vec3u) {
  let e = gid.x + gid.y * groups.x * WG;
  if (e >= p.outputs) { return; }
  // The problem holding output e: ws_off grows with the problem index, and a list has a handful of problems.
  var q = 0u;
  for (var i = 1u; i < p.problems; i++) {
    if (table[i * PROBLEM_WORDS + 12u] <= e) { q = i; }
  }
  let w = q * PROBLEM_WORDS;
  var sum = 0.0;
  for (var c = 0u; c < p.chunks; c++) { sum += workspace[c * p.outputs + e]; }
  let at = p.grad_base + table[w + 5u] + (e - table[w + 12u]);
  g[at] = bitcast<f32>(table[w + 8u]) * sum + g[at];
}
