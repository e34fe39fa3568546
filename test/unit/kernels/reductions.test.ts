// The workgroup-sum contract of the norm and grad-norm shaders (reductions.ts): the sections every file carries
// are one text, so a fix to one copy cannot silently miss the others; and the choice between them.
import { describe, expect, it } from 'vitest';
import { GpuFeatureError, selectSections, type Gpu } from '../../../src/engine/gpu/index.ts';
import { chooseReduction, reductionEnables } from '../../../src/engine/kernels/reductions.ts';
import gradnormWgsl from '../../../shaders/gradnorm.wgsl?raw';
import layernormWgsl from '../../../shaders/layernorm.wgsl?raw';
import rmsnormWgsl from '../../../shaders/rmsnorm.wgsl?raw';

const SHADERS = { rmsnorm: rmsnormWgsl, layernorm: layernormWgsl, gradnorm: gradnormWgsl };

/** The text from a section's marker line to the next marker (or the end). */
function section(source: string, name: string, choice: string): string {
  const start = source.indexOf(`// ---- ${name}: ${choice} ----`);
  expect(start, `no section ${name}: ${choice}`).toBeGreaterThanOrEqual(0);
  const next = source.slice(start + 1).search(/^\/\/ ---- [\w-]+: [\w-]+ ----$/m);
  return next < 0 ? source.slice(start) : source.slice(start, start + 1 + next);
}

describe('the shared reduction sections', () => {
  it.each(['tree', 'subgroups'])('reductions: %s is the same text in every shader', (choice) => {
    const [first, ...others] = Object.values(SHADERS).map((s) => section(s, 'reductions', choice));
    for (const other of others) expect(other).toBe(first);
    expect(first).toMatch(/fn wg_sum\(x: red_t, lid: u32\) -> red_t/);
  });

  it.each(['scalar', 'vec4'])('width: %s is the same text in both norm shaders', (choice) => {
    expect(section(layernormWgsl, 'width', choice)).toBe(section(rmsnormWgsl, 'width', choice));
  });

  it.each(Object.entries(SHADERS))(
    '%s: each choice keeps one wg_sum; only subgroups calls subgroup builtins',
    (_, source) => {
      const widths: Record<string, string> = source.includes('// ---- width:') ? { width: 'scalar' } : {};
      for (const reductions of ['tree', 'subgroups']) {
        const text = selectSections(source, { ...widths, reductions });
        expect(text.match(/fn wg_sum\(/g)).toHaveLength(1);
        expect(/subgroup\w*\(/.test(text)).toBe(reductions === 'subgroups');
      }
    },
  );
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
