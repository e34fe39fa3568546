// Memory-bound kernels at the SmolLM2-135M training shapes (GPT-2 small for layernorm/gelu/positions, Qwen2.5-
// 0.5B for the qkv bias): norms, rope, activations, embedding, bias, residual, dropout, forward and backward,
// f16 activations as on a shader-f16 device. flops are 0 (these are bandwidth kernels: read GB/s); bytes
// count each tensor read or written once (saved statistics included).
import { BufferArena, type CommandRecorder, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  geluBackward,
  geluForward,
  swigluBackward,
  swigluForward,
} from '../../src/engine/kernels/activations.ts';
import { biasAdd, residualAdd } from '../../src/engine/kernels/bias.ts';
import { dropoutBackward, dropoutForward } from '../../src/engine/kernels/dropout.ts';
import { EMBEDDING_ERROR_BYTES, embeddingForward } from '../../src/engine/kernels/embedding.ts';
import { layernormBackward, layernormForward } from '../../src/engine/kernels/layernorm.ts';
import { rmsnormBackward, rmsnormForward } from '../../src/engine/kernels/rmsnorm.ts';
import { ropeBackward, ropeForward } from '../../src/engine/kernels/rope.ts';
import { SMOL, type KernelBenchCase } from './types.ts';

type Buffers = Record<string, GPUBuffer>;

/** A case whose buffers (zero-filled, which every kernel here accepts) are named with their sizes in bytes. */
function pointwiseCase(
  name: string,
  sizes: Record<string, number>,
  record: (rec: CommandRecorder, b: Buffers) => void,
  bytes = Object.values(sizes).reduce((s, v) => s + v, 0),
): KernelBenchCase {
  return {
    name,
    flops: 0,
    bytes,
    setup(gpu) {
      const arena = new BufferArena(gpu);
      const b: Buffers = {};
      for (const [key, size] of Object.entries(sizes)) b[key] = arena.alloc(key, size);
      return { record: (rec) => record(rec, b), destroy: () => arena.destroy() };
    },
  };
}

const { tokens: N, hidden: C, ffn: F, heads: H, kvHeads: KV, headDim: D, batch: B, seq: T, vocab: V } = SMOL;
const act: ScalarType = 'f16';
const h = 2; // bytes per f16
const t = (binding: GPUBuffer, dtype: ScalarType = act) => ({ binding, dtype });
const GPT2 = { C: 768, F: 3072, P: 1024, V: 50257 };
const QWEN_QKV = 896 + 2 * 128; // Qwen2.5-0.5B: q 14×64, k and v 2×64

/** The four norm launches; `tree` forces the workgroup-tree sums (the fallback) where subgroups are the default. */
function normCases(tree: boolean): KernelBenchCase[] {
  const o = tree ? { subgroups: false } : {};
  const tag = tree ? ', tree sums' : '';
  return [
    pointwiseCase(
      `rmsnorm fwd ${N}×${C} f16${tag}`,
      { x: h * N * C, w: h * C, y: h * N * C, rstd: 4 * N },
      (rec, b) => rmsnormForward(rec, t(b.y), b.rstd, t(b.x), t(b.w), { N, C }, 1e-5, o),
    ),
    pointwiseCase(
      `rmsnorm bwd ${N}×${C} f16 (dx +=)${tag}`,
      { x: h * N * C, w: h * C, dy: h * N * C, dx: h * N * C, rstd: 4 * N },
      (rec, b) =>
        rmsnormBackward(rec, t(b.dx), t(b.dy), t(b.x), t(b.w), b.rstd, { N, C }, { ...o, accumulate: true }),
      h * N * C * 4 + h * C + 4 * N, // dx is read and written
    ),
    pointwiseCase(
      `layernorm fwd ${N}×${GPT2.C} f16 (GPT-2)${tag}`,
      { x: h * N * GPT2.C, w: h * GPT2.C, b: h * GPT2.C, y: h * N * GPT2.C, mean: 4 * N, rstd: 4 * N },
      (rec, b) =>
        layernormForward(rec, t(b.y), b.mean, b.rstd, t(b.x), t(b.w), t(b.b), { N, C: GPT2.C }, 1e-5, o),
    ),
    pointwiseCase(
      `layernorm bwd ${N}×${GPT2.C} f16 (GPT-2)${tag}`,
      { x: h * N * GPT2.C, w: h * GPT2.C, dy: h * N * GPT2.C, dx: h * N * GPT2.C, mean: 4 * N, rstd: 4 * N },
      (rec, b) =>
        layernormBackward(rec, t(b.dx), t(b.dy), t(b.x), t(b.w), b.mean, b.rstd, { N, C: GPT2.C }, o),
    ),
  ];
}

export const normBenches: KernelBenchCase[] = [...normCases(false), ...normCases(true)];

export const ropeBenches: KernelBenchCase[] = [
  pointwiseCase(
    `rope fwd q in place ${B}×${T}×${H}×${D} f16`,
    { q: h * N * H * D },
    (rec, b) => ropeForward(rec, t(b.q), t(b.q), { B, T, H, D }, { theta: 10000 }),
    2 * h * N * H * D,
  ),
  pointwiseCase(`rope fwd k ${B}×${T}×${KV}×${D} f16`, { k: h * N * KV * D, out: h * N * KV * D }, (rec, b) =>
    ropeForward(rec, t(b.out), t(b.k), { B, T, H: KV, D }, { theta: 10000 }),
  ),
  pointwiseCase(`rope bwd dq ${B}×${T}×${H}×${D} f16`, { dy: h * N * H * D, dx: h * N * H * D }, (rec, b) =>
    ropeBackward(rec, t(b.dx), t(b.dy), { B, T, H, D }, { theta: 10000 }),
  ),
];

export const activationBenches: KernelBenchCase[] = [
  pointwiseCase(`swiglu fwd ${N}×${F} f16`, { g: h * N * F, u: h * N * F, out: h * N * F }, (rec, b) =>
    swigluForward(rec, t(b.out), t(b.g), t(b.u), N * F),
  ),
  pointwiseCase(
    `swiglu bwd ${N}×${F} f16`,
    { dy: h * N * F, g: h * N * F, u: h * N * F, dg: h * N * F, du: h * N * F },
    (rec, b) => swigluBackward(rec, t(b.dg), t(b.du), t(b.dy), t(b.g), t(b.u), N * F),
  ),
  pointwiseCase(`gelu fwd ${N}×${GPT2.F} f16 (GPT-2)`, { x: h * N * GPT2.F, out: h * N * GPT2.F }, (rec, b) =>
    geluForward(rec, t(b.out), t(b.x), N * GPT2.F),
  ),
  pointwiseCase(
    `gelu bwd ${N}×${GPT2.F} f16 (GPT-2)`,
    { dy: h * N * GPT2.F, x: h * N * GPT2.F, dx: h * N * GPT2.F },
    (rec, b) => geluBackward(rec, t(b.dx), t(b.dy), t(b.x), N * GPT2.F),
  ),
];

export const embeddingBenches: KernelBenchCase[] = [
  pointwiseCase(
    `embedding fwd ${N}×${C} from ${V} rows f16`,
    { tokens: 4 * N, wte: h * V * C, out: h * N * C, errors: EMBEDDING_ERROR_BYTES },
    (rec, b) => embeddingForward(rec, t(b.out), b.errors, b.tokens, t(b.wte), { N, C, V }),
    4 * N + 2 * h * N * C, // only the gathered rows of wte are read
  ),
  pointwiseCase(
    `embedding+wpe fwd ${N}×${GPT2.C} f16 (GPT-2)`,
    { tokens: 4 * N, wte: h * GPT2.V * GPT2.C, wpe: h * GPT2.P * GPT2.C, out: h * N * GPT2.C, errors: 12 },
    (rec, b) =>
      embeddingForward(
        rec,
        t(b.out),
        b.errors,
        b.tokens,
        t(b.wte),
        { N, C: GPT2.C, V: GPT2.V },
        {
          wpe: t(b.wpe),
          T,
          P: GPT2.P,
        },
      ),
    4 * N + h * N * GPT2.C + h * T * GPT2.C + h * N * GPT2.C,
  ),
];

export const residualBenches: KernelBenchCase[] = [
  pointwiseCase(
    `bias add qkv ${N}×${QWEN_QKV} f16 (Qwen2.5-0.5B)`,
    { y: h * N * QWEN_QKV, b: h * QWEN_QKV },
    (rec, b) => biasAdd(rec, t(b.y), t(b.b), { N, C: QWEN_QKV }),
    2 * h * N * QWEN_QKV + h * QWEN_QKV,
  ),
  pointwiseCase(`residual add ${N}×${C} f16`, { a: h * N * C, b: h * N * C, out: h * N * C }, (rec, b) =>
    residualAdd(rec, t(b.out), t(b.a), t(b.b), N * C),
  ),
  pointwiseCase(`dropout fwd ${N}×${C} p=0.1 f16`, { x: h * N * C, y: h * N * C }, (rec, b) =>
    dropoutForward(rec, t(b.y), t(b.x), N * C, { p: 0.1, seed: 1, step: 1 }),
  ),
  pointwiseCase(`dropout bwd ${N}×${C} p=0.1 f16`, { dy: h * N * C, dx: h * N * C }, (rec, b) =>
    dropoutBackward(rec, t(b.dx), t(b.dy), N * C, { p: 0.1, seed: 1, step: 1 }),
  ),
];
