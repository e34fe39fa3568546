// Reference for the grouped LoRA weight gradients (src/engine/kernels/lora-grads.ts) in f64: each problem's
// dB (out, r) += s·Xᵀ·R_block or dA (r, in) += s·R_blockᵀ·mask(X), the mask from the reference dropout hash.

import type { LoraGradProblem } from '../../src/engine/kernels/lora-grads.ts';
import { dropoutMaskRef } from './dropout.ts';

/**
 * G after one launch: `grads` (the values before) plus every problem's gradient. `inputs` hold the X tensors as
 * stored (f16 values already rounded), `ranks` is R (N, rankStride), `step` the dropout step rng[0] + offset.
 */
export function loraGradsRef(
  problems: readonly LoraGradProblem[],
  tokens: number,
  rankStride: number,
  inputs: readonly ArrayLike<number>[],
  ranks: ArrayLike<number>,
  grads: ArrayLike<number>,
  step = 0,
): Float64Array {
  const out = Float64Array.from(grads);
  for (const q of problems) {
    const stride = q.inputStride ?? q.cols;
    const col = q.inputCol ?? 0;
    const x = inputs[q.input];
    const p = q.dropout?.p ?? 0;
    const mask =
      q.dropout && p > 0 ? dropoutMaskRef(tokens * q.cols, p, q.dropout.seed, step, q.dropout.stream) : null;
    for (let c = 0; c < q.cols; c++) {
      for (let j = 0; j < q.r; j++) {
        let sum = 0;
        for (let t = 0; t < tokens; t++) {
          const keep = mask ? mask[t * q.cols + c] / (1 - p) : 1;
          sum += keep * x[t * stride + col + c] * ranks[t * rankStride + q.rankCol + j];
        }
        const at = q.gradOffset + (q.kind === 'dB' ? c * q.r + j : j * q.cols + c);
        out[at] += q.scale * sum;
      }
    }
  }
  return out;
}
