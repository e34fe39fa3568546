// matmul at the SmolLM2-135M training shapes: base projections forward (X·Wᵀ, weights stored [out, in] as in
// HF), the input gradient through a frozen weight (dY·W), the LoRA rank-r products (u = X·Aᵀ, v = dY·B: N = r) and
// the tall-skinny LoRA gradients with split-K.
// Each case is an autotuning task too (`tune`), so `bench:kernels --variants` times every variant of its class.
import type { ScalarType } from '../../src/engine/gpu/index.ts';
import { matmulTask, type MatmulProblem } from '../../src/engine/kernels/autotune.ts';
import { BufferArena } from '../../src/engine/gpu/index.ts';
import { chooseSplits, type MatmulDims } from '../../src/engine/kernels/matmul.ts';
import { SMOL, type KernelBenchCase } from './types.ts';

function matmulCase(
  name: string,
  dims: MatmulDims,
  options: { transA?: boolean; transB?: boolean; splits?: number | 'auto' },
  dtype: ScalarType,
  outType: ScalarType = dtype,
  bType: ScalarType = dtype,
): KernelBenchCase {
  const { M, N, K } = dims;
  const size = dtype === 'f16' ? 2 : 4;
  const splits = options.splits === 'auto' ? chooseSplits(dims) : (options.splits ?? 1);
  const problem: MatmulProblem = {
    label: `matmul ${name}`,
    dims,
    transA: options.transA,
    transB: options.transB,
    types: { a: dtype, b: bType, c: outType },
    splits,
  };
  const tune = matmulTask(problem);
  return {
    name: `matmul ${name} ${M}×${N}×${K} ${dtype}${splits > 1 ? ` split-K ${splits}` : ''}`,
    // Stated (used only where the kernel's own count is missing): each operand read once, C written once.
    flops: 2 * M * N * K,
    bytes: size * M * K + (bType === 'f16' ? 2 : 4) * K * N + (outType === 'f16' ? 2 : 4) * M * N,
    tune,
    setup(gpu) {
      const arena = new BufferArena(gpu);
      const launch = tune.prepare(gpu, arena);
      return { record: (rec) => launch(rec), destroy: () => arena.destroy() };
    },
  };
}

const { tokens: T, hidden: C, ffn: F, rank: R } = SMOL;

export const matmulBenches: KernelBenchCase[] = [
  matmulCase('q_proj fwd X·Wᵀ', { M: T, N: C, K: C }, { transB: true }, 'f16'),
  matmulCase('q_proj fwd X·Wᵀ', { M: T, N: C, K: C }, { transB: true }, 'f32'),
  matmulCase('up_proj fwd X·Wᵀ', { M: T, N: F, K: C }, { transB: true }, 'f16'),
  matmulCase('down_proj bwd dX = dY·W', { M: T, N: F, K: C }, {}, 'f16'),
  // The rank-r side products (f32 adapter weights and output): N = r, the skinny variant's case.
  matmulCase('LoRA u = X·Aᵀ', { M: T, N: R, K: C }, { transB: true }, 'f16', 'f32', 'f32'),
  matmulCase('LoRA u = X·Aᵀ', { M: T, N: R, K: C }, { transB: true }, 'f32'),
  matmulCase('LoRA v = dY·B', { M: T, N: R, K: F }, {}, 'f16', 'f32', 'f32'),
  matmulCase('LoRA v = dY·B', { M: T, N: R, K: C }, {}, 'f32'),
  matmulCase('LoRA dA = (dY·B)ᵀ·X', { M: R, N: C, K: T }, { transA: true, splits: 'auto' }, 'f32'),
  matmulCase('LoRA dA = (dY·B)ᵀ·X', { M: R, N: C, K: T }, { transA: true, splits: 1 }, 'f32'),
  matmulCase('LoRA dB = dYᵀ·(X·Aᵀ)', { M: C, N: R, K: T }, { transA: true, splits: 'auto' }, 'f32'),
  matmulCase('decode M=1 x·Wᵀ', { M: 1, N: F, K: C }, { transB: true }, 'f16'),
];
