// Reductions of a whole tensor to one f32 (sum, max |x|) in two dispatches: many workgroups write partials,
// then one workgroup folds them. Max |x| turns NaN into +inf so non-finite values are always detected.

import { uniforms, type BufferBinding, type CommandRecorder, type TensorRef } from '../gpu/index.ts';
import reduceWgsl from '../../../shaders/reduce.wgsl?raw';

const WG = 256;
const INF_BITS = 0x7f800000;
/** Stage-1 workgroups at most; also the length of the partials buffer. */
export const REDUCE_PARTIALS = 256;

export type ReduceOp = 'sum' | 'maxabs';

/**
 * Writes op(x[0..n)) as an f32 to `out`. `partials` must hold REDUCE_PARTIALS f32 values (scratch).
 */
export function reduce(
  rec: CommandRecorder,
  op: ReduceOp,
  out: BufferBinding,
  x: TensorRef,
  n: number,
  partials: BufferBinding,
): void {
  const OP = op === 'sum' ? 0 : 1;
  const groups = Math.max(1, Math.min(REDUCE_PARTIALS, Math.ceil(n / (4 * WG))));
  const program = (inType: TensorRef['dtype']) => ({
    name: `reduce_${op}`,
    source: reduceWgsl,
    entryPoint: 'reduce',
    aliases: { in_t: inType },
    overrides: { WG, OP },
  });
  rec.dispatch(program(x.dtype), {
    uniforms: uniforms().u32(n).u32(INF_BITS).u32(0).u32(0),
    buffers: [x.binding, partials],
    workgroups: [groups],
  });
  rec.dispatch(program('f32'), {
    uniforms: uniforms().u32(groups).u32(INF_BITS).u32(0).u32(0),
    buffers: [partials, out],
    workgroups: [1],
  });
}
