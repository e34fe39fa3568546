// Workgroup sums in two versions: the contract shared by the norm and grad-norm shaders (rmsnorm.wgsl,
// layernorm.wgsl, gradnorm.wgsl). Each ends with the sections `// ---- reductions: tree ----` and
// `// ---- reductions: subgroups ----`, the same text in every file (a unit test keeps them equal), defining
//   fn wg_sum(x: red_t, lid: u32) -> red_t   every thread passes its partial and gets the workgroup's total
// over `var<workgroup> red: array<red_t, WG>`, with red_t (f32, vec2f, ...) and WG (a power of two) set by the
// kernel. A program keeps one (selectSections): subgroups by default where the device has the feature, the
// workgroup tree, the tested fallback, elsewhere. Either can be forced, so tests run both.

import { GpuFeatureError, type Gpu, type WgslExtension } from '../gpu/index.ts';

export type Reduction = 'tree' | 'subgroups';

/**
 * The reduction for a launch: `subgroups` true forces subgroups (a GpuFeatureError naming the kernel without
 * the feature), false the tree; undefined picks subgroups when the device has them.
 */
export function chooseReduction(gpu: Gpu, subgroups: boolean | undefined, kernel: string): Reduction {
  const has = gpu.features.has('subgroups');
  if (subgroups === true && !has) {
    throw new GpuFeatureError(
      `${kernel}: subgroups were requested but the device has no 'subgroups' feature`,
    );
  }
  return (subgroups ?? has) ? 'subgroups' : 'tree';
}

/** The `enable` lines a program with this reduction needs. */
export function reductionEnables(reduction: Reduction): readonly WgslExtension[] | undefined {
  return reduction === 'subgroups' ? ['subgroups'] : undefined;
}
