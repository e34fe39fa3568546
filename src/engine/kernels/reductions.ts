// Workgroup sums in two versions, shared by the norm and grad-norm shaders (rmsnorm.wgsl, layernorm.wgsl,
// gradnorm.wgsl): reductions.wgsl, appended to their source, has the sections `// ---- reductions: tree ----`
// and `// ---- reductions: subgroups ----`, each defining
//   fn wg_sum(x: red_t, lid: u32) -> red_t   every thread passes its partial and gets the workgroup's total
// over `var<workgroup> red: array<red_t, WG>`, with red_t (f32, vec2f, ...) and WG (a power of two) set by the
// kernel. A program keeps one (selectSections): subgroups by default where the device has the feature, the
// workgroup tree, the tested fallback, elsewhere. Either can be forced, so tests run both.

import { GpuFeatureError, selectSections, type Gpu, type WgslExtension } from '../gpu/index.ts';
import reductionsWgsl from '../../../shaders/reductions.wgsl?raw';

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

/**
 * A kernel's source with reductions.wgsl appended and its sections chosen: `choices` names the kernel's own
 * sections (and any appended with `parts`), `reduction` picks wg_sum's.
 */
export function withReductions(
  source: string,
  reduction: Reduction,
  choices: Readonly<Record<string, string>> = {},
  parts: readonly string[] = [],
): string {
  return selectSections([source, ...parts, reductionsWgsl].join('\n'), { ...choices, reductions: reduction });
}
