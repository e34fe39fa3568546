// The workgroup-sum contract of the norm and grad-norm shaders (reductions.ts): every composed program keeps
// exactly one wg_sum and one packet width, and only the subgroup version calls subgroup builtins.
import { describe, expect, it } from 'vitest';
import { GpuFeatureError, type Gpu } from '../../../src/engine/gpu/index.ts';
import { chooseReduction, reductionEnables, withReductions } from '../../../src/engine/kernels/reductions.ts';
import gradnormWgsl from '../../../shaders/gradnorm.wgsl?raw';
import layernormWgsl from '../../../shaders/layernorm.wgsl?raw';
import normWidthWgsl from '../../../shaders/norm-width.wgsl?raw';
import rmsnormWgsl from '../../../shaders/rmsnorm.wgsl?raw';

const NORMS = { rmsnorm: rmsnormWgsl, layernorm: layernormWgsl };

describe('the shared reduction and width sections', () => {
  it.each(['tree', 'subgroups'] as const)('gradnorm with %s: one wg_sum', (reduction) => {
    const text = withReductions(gradnormWgsl, reduction);
    expect(text.match(/fn wg_sum\(x: red_t, lid: u32\) -> red_t/g)).toHaveLength(1);
    expect(/subgroup\w*\(/.test(text)).toBe(reduction === 'subgroups');
  });

  it.each(Object.entries(NORMS))('%s: each width and reduction keeps one of each', (_, source) => {
    for (const reduction of ['tree', 'subgroups'] as const) {
      for (const width of ['scalar', 'vec4']) {
        const text = withReductions(source, reduction, { width }, [normWidthWgsl]);
        expect(text.match(/fn wg_sum\(/g)).toHaveLength(1);
        expect(text.match(/const VW = (\d)u;/g)).toEqual([`const VW = ${width === 'vec4' ? 4 : 1}u;`]);
        expect(/subgroup\w*\(/.test(text)).toBe(reduction === 'subgroups');
      }
    }
  });

  it('a section the shader does not have is an error naming it', () => {
    expect(() => withReductions(gradnormWgsl, 'tree', { width: 'vec4' })).toThrow(/no section 'width'/);
  });
});

describe('chooseReduction', () => {
  const device = (features: string[]) => ({ features: new Set(features) }) as unknown as Gpu;

  it('picks subgroups by default exactly when the device has the feature', () => {
    expect(chooseReduction(device(['subgroups']), undefined, 'k')).toBe('subgroups');
    expect(chooseReduction(device([]), undefined, 'k')).toBe('tree');
  });

  it('forces either; subgroups without the feature is a GpuFeatureError naming the kernel', () => {
    expect(chooseReduction(device(['subgroups']), false, 'k')).toBe('tree');
    expect(chooseReduction(device(['subgroups']), true, 'k')).toBe('subgroups');
    expect(() => chooseReduction(device([]), true, 'rmsnormForward')).toThrow(GpuFeatureError);
    expect(() => chooseReduction(device([]), true, 'rmsnormForward')).toThrow(
      /rmsnormForward: subgroups were/,
    );
  });

  it('enables the extension only for the subgroup version', () => {
    expect(reductionEnables('subgroups')).toEqual(['subgroups']);
    expect(reductionEnables('tree')).toBeUndefined();
  });
});
