// matmul at the SmolLM2-135M training shapes: base projections forward (X·Wᵀ, weights stored [out, in] as in
// HF), the input gradient through a frozen weight (dY·W), and the tall-skinny LoRA gradients with split-K.
import { BufferArena, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  chooseSplits,
  matmul,
  matmulWorkspaceBytes,
  type MatmulDims,
  type MatmulOptions,
} from '../../src/engine/kernels/matmul.ts';
import { SMOL, type KernelBenchCase } from './types.ts';

function matmulCase(
  name: string,
  dims: MatmulDims,
  options: MatmulOptions,
  dtype: ScalarType,
  outType: ScalarType = dtype,
): KernelBenchCase {
  const { M, N, K } = dims;
  const size = dtype === 'f16' ? 2 : 4;
  const splits = options.splits === 'auto' ? chooseSplits(dims) : (options.splits ?? 1);
  return {
    name: `matmul ${name} ${M}×${N}×${K} ${dtype}${splits > 1 ? ` split-K ${splits}` : ''}`,
    flops: 2 * M * N * K,
    bytes: size * (M * K + K * N) + (outType === 'f16' ? 2 : 4) * M * N,
    setup(gpu) {
      const arena = new BufferArena(gpu);
      const a = arena.alloc('a', size * M * K);
      const b = arena.alloc('b', size * K * N);
      const c = arena.alloc('c', 4 * M * N);
      const workspace = splits > 1 ? arena.alloc('ws', matmulWorkspaceBytes(dims, splits)) : undefined;
      return {
        record(rec) {
          matmul(rec, { binding: c, dtype: outType }, { binding: a, dtype }, { binding: b, dtype }, dims, {
            ...options,
            splits,
            workspace,
          });
        },
        destroy: () => arena.destroy(),
      };
    },
  };
}

const { tokens: T, hidden: C, ffn: F, rank: R } = SMOL;

export const matmulBenches: KernelBenchCase[] = [
  matmulCase('q_proj fwd X·Wᵀ', { M: T, N: C, K: C }, { transB: true }, 'f16'),
  matmulCase('q_proj fwd X·Wᵀ', { M: T, N: C, K: C }, { transB: true }, 'f32'),
  matmulCase('up_proj fwd X·Wᵀ', { M: T, N: F, K: C }, { transB: true }, 'f16'),
  matmulCase('down_proj bwd dX = dY·W', { M: T, N: F, K: C }, {}, 'f16'),
  matmulCase('LoRA dA = (dY·B)ᵀ·X', { M: R, N: C, K: T }, { transA: true, splits: 'auto' }, 'f32'),
  matmulCase('LoRA dA = (dY·B)ᵀ·X', { M: R, N: C, K: T }, { transA: true, splits: 1 }, 'f32'),
  matmulCase('LoRA dB = dYᵀ·(X·Aᵀ)', { M: C, N: R, K: T }, { transA: true, splits: 'auto' }, 'f32'),
  matmulCase('decode M=1 x·Wᵀ', { M: 1, N: F, K: C }, { transB: true }, 'f16'),
];
