// Loss and optimizer kernels at the SmolLM2-135M training shapes: chunked cross-entropy over the 49,152-token
// vocabulary (N = 1024 tokens, C = 576), and the optimizer step over the LoRA parameters of all-linear r = 16:
// per layer q (576→576), k, v (576→192), o (576→576), gate, up (576→1536), down (1536→576), each A (r×in) and
// B (out×r): 162,816 per layer × 30 layers = 4,884,480 parameters in 420 tensors (segments).
import { BufferArena, STORAGE_USAGE, type ScalarType } from '../../src/engine/gpu/index.ts';
import { castBf16ToF16 } from '../../src/engine/kernels/casts.ts';
import {
  crossEntropyBackward,
  crossEntropyForward,
  crossEntropyPlan,
} from '../../src/engine/kernels/crossentropy.ts';
import { CONTROL, GRADNORM_PARTIALS_BYTES, gradNorm } from '../../src/engine/kernels/gradnorm.ts';
import {
  ADAMW_STEP_BYTES,
  adamwUpdate,
  segmentTable,
  sgdUpdate,
  type ParamSegment,
} from '../../src/engine/kernels/optimizer.ts';
import { SMOL, type KernelBenchCase } from './types.ts';

const { tokens: N, hidden: C, vocab: V, rank: R, ffn: F } = SMOL;
const LAYERS = 30;

/** The 420 LoRA tensors of SmolLM2-135M all-linear r=16, with a layer-wise LR decay of 0.9 per layer. */
function loraSegments(): ParamSegment[] {
  const kv = SMOL.kvHeads * SMOL.headDim;
  const linears: [number, number][] = [
    [C, C],
    [C, kv],
    [C, kv],
    [C, C],
    [C, F],
    [C, F],
    [F, C],
  ];
  const segments: ParamSegment[] = [];
  for (let layer = 0; layer < LAYERS; layer++) {
    const lrMult = 0.9 ** (LAYERS - 1 - layer);
    for (const [inF, outF] of linears)
      segments.push({ length: R * inF, lrMult }, { length: outF * R, lrMult });
  }
  return segments;
}
const SEGMENTS = loraSegments();
const P = SEGMENTS.reduce((s, x) => s + x.length, 0); // 4,884,480

function ceCase(dtype: ScalarType, fwd: boolean, bwd: boolean): KernelBenchCase {
  const size = dtype === 'f16' ? 2 : 4;
  const what = fwd && bwd ? 'fwd+bwd' : fwd ? 'fwd' : 'bwd';
  // Matmuls: forward 1 (logits), backward 2 (logits recomputed, dh); plus ~5 flops per logit for the softmax.
  const matmuls = (fwd ? 1 : 0) + (bwd ? 2 : 0);
  // Each pass reads W and h once; the f32 logits chunk is written and read once forward, and written,
  // rewritten in place and read backward; dh (f32 here) is read and written once per chunk backward.
  const chunks = Math.ceil(V / 8192);
  const bytes =
    (fwd ? size * (V * C + N * C) + 8 * N * V : 0) +
    (bwd ? 2 * size * V * C + size * N * C + 16 * N * V + 8 * N * C * chunks : 0);
  return {
    name: `cross-entropy ${what} N=${N} C=${C} V=${V} chunk 8192 ${dtype}`,
    flops: matmuls * 2 * N * V * C + 5 * N * V * ((fwd ? 1 : 0) + (bwd ? 1 : 0)),
    bytes,
    setup(gpu) {
      const arena = new BufferArena(gpu);
      const dims = { N, C, V };
      const plan = crossEntropyPlan(gpu, dims, dtype);
      const h = { binding: arena.alloc('h', size * N * C), dtype };
      const w = { binding: arena.alloc('wte', size * V * C), dtype };
      const targets = arena.alloc('targets', 4 * N); // zeros: valid targets
      const scratch = arena.alloc('ce scratch', plan.scratchBytes);
      const loss = arena.alloc('loss', 4);
      const losses = arena.alloc('losses', 4 * N);
      const lse = arena.alloc('lse', 4 * N);
      const dh = { binding: arena.alloc('dh', 4 * N * C), dtype: 'f32' as const };
      const invNormaliser = 1 / N;
      return {
        record(rec) {
          if (fwd) {
            crossEntropyForward(rec, { loss, losses, lse }, h, w, targets, dims, { invNormaliser, scratch });
          }
          if (bwd)
            crossEntropyBackward(rec, dh, lse, h, w, targets, dims, {
              invNormaliser,
              lossScale: 1024,
              scratch,
            });
        },
        destroy: () => arena.destroy(),
      };
    },
  };
}

function optimizerCase(kind: 'adamw' | 'sgd' | 'gradnorm+adamw' | 'gradnorm'): KernelBenchCase {
  // f32 traffic per parameter: AdamW reads g and rw p, m, v = 28 B; SGD momentum reads g, rw p, b = 20 B;
  // gradnorm reads g = 4 B.
  const perParam = { adamw: 28, sgd: 20, 'gradnorm+adamw': 32, gradnorm: 4 }[kind];
  const flopsPerParam = { adamw: 16, sgd: 6, 'gradnorm+adamw': 18, gradnorm: 2 }[kind];
  return {
    name: `${kind} ${P.toLocaleString('en')} LoRA params (SmolLM2-135M all-linear r=${R}, ${SEGMENTS.length} tensors)`,
    flops: flopsPerParam * P,
    bytes: perParam * P,
    setup(gpu) {
      const arena = new BufferArena(gpu);
      const params = arena.alloc('lora params', 4 * P);
      const grads = arena.alloc('lora grads', 4 * P);
      const m = arena.alloc('m', 4 * P);
      const v = arena.alloc('v', 4 * P);
      const step = arena.alloc('adam step', ADAMW_STEP_BYTES);
      const control = arena.alloc('control', CONTROL.bytes);
      gpu.device.queue.writeBuffer(control, 0, new Float32Array([1, 0, 0, 0]));
      const partials = arena.alloc('partials', GRADNORM_PARTIALS_BYTES);
      const table = arena.upload('segments', segmentTable(SEGMENTS), STORAGE_USAGE);
      const segments = { binding: table, count: SEGMENTS.length };
      return {
        record(rec) {
          if (kind === 'gradnorm' || kind === 'gradnorm+adamw') {
            gradNorm(rec, control, grads, P, partials, { lossScale: 1024, maxNorm: 1 });
          }
          if (kind === 'adamw' || kind === 'gradnorm+adamw') {
            adamwUpdate(rec, { params, m, v, step }, grads, control, segments, P, {
              lr: 2e-4,
              weightDecay: 0.01,
            });
          }
          if (kind === 'sgd') {
            sgdUpdate(rec, { params, momentum: m }, grads, control, segments, P, { lr: 1e-2, momentum: 0.9 });
          }
        },
        destroy: () => arena.destroy(),
      };
    },
  };
}

function castCase(): KernelBenchCase {
  const n = V * C; // the tied embedding, the largest weight of SmolLM2-135M
  return {
    name: `cast bf16→f16 embedding ${V}×${C}`,
    flops: 0,
    bytes: 4 * n,
    setup(gpu) {
      const arena = new BufferArena(gpu);
      const src = arena.alloc('wte bf16', 2 * n);
      const out = arena.alloc('wte f16', 2 * n);
      const overflow = arena.alloc('overflow', 4);
      return {
        record: (rec) => castBf16ToF16(rec, out, src, n, overflow),
        destroy: () => arena.destroy(),
      };
    },
  };
}

export const lossBenches: KernelBenchCase[] = [
  ceCase('f16', true, false),
  ceCase('f16', false, true),
  ceCase('f16', true, true),
  ceCase('f32', true, true),
  optimizerCase('gradnorm'),
  optimizerCase('adamw'),
  optimizerCase('gradnorm+adamw'),
  optimizerCase('sgd'),
  castCase(),
];
