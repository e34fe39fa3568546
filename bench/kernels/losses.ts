// Loss and optimizer kernels at the SmolLM2-135M training shapes: chunked cross-entropy over the 49,152-token
// vocabulary (C = 576; N = 256 tokens, see ceCase), and the optimizer step over the LoRA parameters of
// all-linear r = 16: per layer q (576→576), k, v (576→192), o (576→576), gate, up (576→1536), down
// (1536→576), each A (r×in) and B (out×r): 162,816 per layer × 30 layers = 4,884,480 parameters in 420
// tensors (segments).
import { BufferArena, STORAGE_USAGE, type ScalarType } from '../../src/engine/gpu/index.ts';
import { castBf16ToF16 } from '../../src/engine/kernels/casts.ts';
import {
  crossEntropyBackward,
  crossEntropyCost,
  crossEntropyForward,
  crossEntropyPlan,
  crossEntropyTrainForward,
  DEFAULT_CE_CHUNK,
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

const { hidden: C, vocab: V, rank: R, ffn: F } = SMOL;
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

/**
 * Cross-entropy rows at N = 256 tokens, not the step's 1024: the SmolLM2 head (V = 49,152, C = 576) costs ~40
 * GFLOP per 256 rows for forward + backward, ~70 s at N = 1024 on lavapipe. FLOPs, bytes and dispatches
 * come from crossEntropyCost, i.e. from the launchers' own chunk loop.
 *   eval:     crossEntropyForward (the evaluation loss)
 *   unfused:  crossEntropyForward + crossEntropyBackward (training today: the logits computed twice)
 *   fused:    crossEntropyTrainForward (the logits once per chunk, dh in the same sweep)
 */
const CE_N = 256;

function ceCase(dtype: ScalarType, mode: 'eval' | 'unfused' | 'fused', subgroups?: boolean): KernelBenchCase {
  const size = dtype === 'f16' ? 2 : 4;
  const dims = { N: CE_N, C, V };
  const plan = { chunk: DEFAULT_CE_CHUNK, weightType: dtype };
  const parts: ('eval' | 'train' | 'backward')[] =
    mode === 'eval' ? ['eval'] : mode === 'unfused' ? ['eval', 'backward'] : ['train'];
  const cost = parts
    .map((m) => crossEntropyCost(dims, plan, m))
    .reduce((a, b) => ({
      flops: a.flops + b.flops,
      bytes: a.bytes + b.bytes,
      dispatches: a.dispatches + b.dispatches,
    }));
  const what = { eval: 'eval fwd', unfused: 'unfused fwd+bwd', fused: 'fused train' }[mode];
  const reductions = subgroups === undefined ? '' : subgroups ? ' subgroups' : ' tree';
  return {
    name:
      `cross-entropy ${what} N=${CE_N} C=${C} V=${V} chunk ${DEFAULT_CE_CHUNK} ${dtype}${reductions} ` +
      `(${cost.dispatches} dispatches, ${(cost.flops / 1e9).toFixed(1)} GFLOP)`,
    flops: cost.flops,
    bytes: cost.bytes,
    setup(gpu) {
      const arena = new BufferArena(gpu);
      const full = crossEntropyPlan(gpu, dims, dtype, DEFAULT_CE_CHUNK);
      const h = { binding: arena.alloc('h', size * CE_N * C), dtype };
      const w = { binding: arena.alloc('wte', size * V * C), dtype };
      const targets = arena.alloc('targets', 4 * CE_N); // zeros: valid targets
      const scratch = arena.alloc('ce scratch', full.scratchBytes);
      const gradScratch = arena.alloc('ce grad scratch', full.gradScratchBytes);
      const out = {
        loss: arena.alloc('loss', 4),
        losses: arena.alloc('losses', 4 * CE_N),
        lse: arena.alloc('lse', 4 * CE_N),
      };
      const dh = { binding: arena.alloc('dh', size * CE_N * C), dtype };
      const common = { invNormaliser: 1 / CE_N, chunk: DEFAULT_CE_CHUNK, scratch, subgroups };
      return {
        record(rec) {
          if (mode === 'fused') {
            crossEntropyTrainForward(rec, { ...out, dh }, h, w, targets, dims, {
              ...common,
              lossScale: 1024,
              gradScratch,
            });
            return;
          }
          crossEntropyForward(rec, out, h, w, targets, dims, common);
          if (mode === 'unfused') {
            crossEntropyBackward(rec, dh, out.lse, h, w, targets, dims, { ...common, lossScale: 1024 });
          }
        },
        destroy: () => arena.destroy(),
      };
    },
  };
}

function optimizerCase(
  kind: 'adamw' | 'sgd' | 'gradnorm+adamw' | 'gradnorm',
  gradNormOptions: { subgroups?: boolean } = {},
): KernelBenchCase {
  // f32 traffic per parameter: AdamW reads g and rw p, m, v = 28 B; SGD momentum reads g, rw p, b = 20 B;
  // gradnorm reads g = 4 B.
  const perParam = { adamw: 28, sgd: 20, 'gradnorm+adamw': 32, gradnorm: 4 }[kind];
  const flopsPerParam = { adamw: 16, sgd: 6, 'gradnorm+adamw': 18, gradnorm: 2 }[kind];
  return {
    name:
      `${kind} ${P.toLocaleString('en')} LoRA params (SmolLM2-135M all-linear r=${R}, ${SEGMENTS.length} tensors)` +
      (gradNormOptions.subgroups === false ? ', tree sums' : ''),
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
            gradNorm(rec, control, grads, P, partials, { lossScale: 1024, maxNorm: 1, ...gradNormOptions });
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
  ceCase('f16', 'eval'),
  ceCase('f16', 'unfused'),
  ceCase('f16', 'fused'),
  ceCase('f32', 'unfused'),
  ceCase('f32', 'fused'),
  optimizerCase('gradnorm'),
  optimizerCase('gradnorm', { subgroups: false }),
  optimizerCase('adamw'),
  optimizerCase('gradnorm+adamw'),
  optimizerCase('sgd'),
  castCase(),
];
