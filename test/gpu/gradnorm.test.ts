import { describe, expect, it } from 'vitest';
import { CommandRecorder, type Program } from '../../src/engine/gpu/index.ts';
import {
  CONTROL,
  GRADNORM_PARTIALS,
  GRADNORM_PARTIALS_BYTES,
  gradNorm,
  gradNormCost,
  type GradNormOptions,
} from '../../src/engine/kernels/gradnorm.ts';
import { expectClose } from '../reference/compare.ts';
import { gradNormRef } from '../reference/optimizer.ts';
import { randomArray } from '../reference/random.ts';
import { poisoned, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const hasSubgroups = gpu.features.has('subgroups');
if (!hasSubgroups) console.warn(`adapter has no 'subgroups': only the workgroup-tree reductions are tested`);
/** Both workgroup reductions, each forced: the tree and (where the device has them) subgroups. */
const REDUCTIONS = hasSubgroups ? [false, true] : [false];
const reductionName = (subgroups: boolean) => (subgroups ? 'subgroups' : 'workgroup tree');

interface Control {
  gradScale: number;
  nonFinite: number;
  norm: number;
  skipped: number;
}

async function readControl(buffer: GPUBuffer): Promise<Control> {
  const rec = new CommandRecorder(gpu);
  const read = rec.readback(buffer, 0, CONTROL.bytes);
  await rec.submitAndWait();
  const bytes = await read.read();
  rec.destroy();
  const f = new Float32Array(bytes);
  const u = new Uint32Array(bytes);
  return {
    gradScale: f[CONTROL.gradScale],
    nonFinite: u[CONTROL.nonFinite],
    norm: f[CONTROL.norm],
    skipped: u[CONTROL.skipped],
  };
}

/** Runs gradNorm `times` times on one control buffer (initialised with skipped = 0). */
async function run(
  grads: ArrayLike<number>,
  options: GradNormOptions,
  times = 1,
  overflow?: number,
): Promise<Control> {
  const g = upload(gpu, grads, 'f32');
  const control = upload(gpu, [0xffffffff, 0xffffffff, 0xffffffff, 0], 'u32');
  const partials = poisoned(gpu, GRADNORM_PARTIALS_BYTES / 4, 'f32');
  const ov = overflow === undefined ? undefined : upload(gpu, [overflow], 'u32');
  const rec = new CommandRecorder(gpu);
  for (let k = 0; k < times; k++)
    gradNorm(rec, control, g, grads.length, partials, { ...options, overflow: ov });
  await rec.submitAndWait();
  const result = await readControl(control);
  for (const b of [g, control, partials, ov]) b?.destroy();
  rec.destroy();
  return result;
}

for (const subgroups of REDUCTIONS) {
  describe(`gradNorm, ${reductionName(subgroups)} reductions`, () => {
    it.each([1, 257, 300_001])(
      'n = %i: norm of g / lossScale vs f64 (rel < 1e-5), no clipping',
      async (n) => {
        const grads = randomArray(n, n, 3000);
        const ref = gradNormRef(grads, 1024, 0);
        const got = await run(grads, { lossScale: 1024, subgroups });
        expectClose('grad norm', [got.norm], [ref.norm], 1e-5);
        expect(got.gradScale).toBe(Math.fround(1 / 1024)); // clip factor exactly 1
        expect(got.nonFinite).toBe(0);
        expect(got.skipped).toBe(0);
      },
    );

    it('n = 0 gives norm 0 and no clipping', async () => {
      const got = await run([], { lossScale: 2, maxNorm: 1, subgroups });
      expect(got.norm).toBe(0);
      expect(got.gradScale).toBe(0.5);
    });

    it('clips to maxNorm: scale = clip / lossScale (rel < 1e-5)', async () => {
      const grads = randomArray(10_007, 5, 100);
      for (const maxNorm of [0.5, 1e6]) {
        const ref = gradNormRef(grads, 64, maxNorm);
        const got = await run(grads, { lossScale: 64, maxNorm, subgroups });
        expectClose('clipped grad scale', [got.gradScale], [ref.gradScale], 1e-5);
        expectClose('norm before clipping', [got.norm], [ref.norm], 1e-5);
      }
    });

    it.each([
      ['NaN', NaN],
      ['+inf', Infinity],
      ['-inf', -Infinity],
    ])('%s anywhere sets the flag, zeroes the scale and counts skipped steps', async (_name, bad) => {
      const grads = randomArray(5003, 7);
      grads[4999] = bad;
      const got = await run(grads, { maxNorm: 1, subgroups }, 2);
      expect(got.nonFinite).toBe(1);
      expect(got.gradScale).toBe(0);
      expect(got.skipped).toBe(2);
    });

    it('a finite gradient whose square overflows f32 counts as non-finite', async () => {
      const grads = randomArray(100, 8);
      grads[3] = 1e22; // (1e22)² overflows f32; (1e22 / 2²⁰)² does not
      expect((await run(grads, { subgroups })).nonFinite).toBe(1);
      // the same gradient under a large loss scale is fine: the norm is of g / lossScale
      const got = await run(grads, { lossScale: 2 ** 20, subgroups });
      expect(got.nonFinite).toBe(0);
      expectClose('unscaled norm', [got.norm], [gradNormRef(grads, 2 ** 20, 0).norm], 1e-5);
    });

    it('a non-zero overflow counter sets the flag; zero does not', async () => {
      const grads = randomArray(100, 9);
      expect((await run(grads, { subgroups }, 1, 3)).nonFinite).toBe(1);
      expect((await run(grads, { subgroups }, 1, 0)).nonFinite).toBe(0);
    });
  });
}

describe('gradNorm launches', () => {
  it.skipIf(!hasSubgroups)('the subgroup version is other code than the tree, chosen by default here', () => {
    const programs = (subgroups?: boolean): Program[] => {
      const rec = new CommandRecorder(gpu);
      const seen: Program[] = [];
      const dispatch = rec.dispatch.bind(rec);
      rec.dispatch = (program, args) => {
        seen.push(program);
        dispatch(program, args);
      };
      const [g, control, partials] = [4, CONTROL.bytes / 4, GRADNORM_PARTIALS_BYTES / 4].map((n) =>
        poisoned(gpu, n, 'f32'),
      );
      gradNorm(rec, control, g, 4, partials, { subgroups });
      rec.destroy();
      for (const b of [g, control, partials]) b.destroy();
      return seen;
    };
    const [tree, sub, auto] = [programs(false), programs(true), programs()];
    expect(sub.map((p) => p.name)).toEqual([
      'gradnorm.gradnorm_partial.subgroups',
      'gradnorm.gradnorm_finalize.subgroups',
    ]);
    for (const [i, program] of sub.entries()) {
      expect(program.enables).toEqual(['subgroups']);
      expect(program.source).toMatch(/subgroupAdd\(/);
      expect(tree[i].source).not.toMatch(/subgroup\w*\(/);
      expect(auto[i]).toBe(program);
    }
  });

  it('states the FLOPs and bytes of both launches: every gradient read once', () => {
    const n = 300_001;
    const [g, control, partials] = [n, CONTROL.bytes / 4, GRADNORM_PARTIALS_BYTES / 4].map((k) =>
      poisoned(gpu, k, 'f32'),
    );
    const rec = new CommandRecorder(gpu);
    gradNorm(rec, control, g, n, partials);
    expect(rec.counts.costed).toBe(2);
    const groups = Math.min(GRADNORM_PARTIALS, Math.ceil(n / 1024)); // ≥ 4 elements per thread of 256
    const cost = gradNormCost(n, groups);
    expect(rec.counts.bytes).toBe(cost.partial.bytes + cost.finalize.bytes);
    expect(cost.partial.bytes).toBe(4 * n + 8 * groups);
    expect(rec.counts.flops).toBe(3 * n + 2 * groups + 8);
    rec.destroy();
    for (const b of [g, control, partials]) b.destroy();
  });

  it('rejects bad arguments with RangeError', () => {
    const rec = new CommandRecorder(gpu);
    const b = upload(gpu, [0, 0, 0, 0], 'f32');
    expect(() => gradNorm(rec, b, b, 1.5, b)).toThrow(RangeError);
    expect(() => gradNorm(rec, b, b, 1, b, { lossScale: 0 })).toThrow(RangeError);
    b.destroy();
    rec.destroy();
  });
});
