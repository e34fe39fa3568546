// Causal GQA attention at the SmolLM2-135M training shape (B = 4, T = 256, H = 9, Hkv = 3, D = 64), one
// layer, plus a long-sequence row (T = 2048, also through a sliding window of 256 keys), other head dims (96 as
// Phi-3, 256 as Gemma), fused RoPE and KV-cache decode steps (also windowed).
// FLOPs and bytes are attentionCost()'s count of what the kernels execute on this device's tiles: whole
// blocks up to the causal limit (so the masked half of the diagonal blocks counts) and, in the recomputing
// backward, the scores and dP computed by both the dq and the dk/dv kernel (7 block matmuls where 5 are
// needed; the spill path, the size rule's choice at these shapes but the long one, does 5 and moves dS), so
// GFLOP/s is the arithmetic rate, not the useful one.
import { BufferArena, type Gpu, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  attentionBackward,
  attentionCost,
  attentionDeltaBytes,
  attentionForward,
  attentionLimits,
  type AttentionBackwardMode,
  type AttentionDims,
  type AttentionRope,
} from '../../src/engine/kernels/attention.ts';
import { ropeInvFreq } from '../../src/engine/kernels/rope.ts';
import { SMOL, type KernelBenchCase } from './types.ts';

const smol: AttentionDims = {
  batch: SMOL.batch,
  seq: SMOL.seq,
  heads: SMOL.heads,
  kvHeads: SMOL.kvHeads,
  headDim: SMOL.headDim,
};

interface Variant {
  fwd: boolean;
  bwd: boolean;
  rope?: boolean;
  /** The backward's path; default the size rule's. */
  mode?: AttentionBackwardMode;
  /** Sliding window (keys each query sees). */
  window?: number;
}

/** flops/bytes depend on the device's tiles: counted again once the device is known (in setup). */
function count(
  c: KernelBenchCase,
  gpu: Gpu | null,
  d: AttentionDims,
  v: Variant,
  dtype: ScalarType,
  kvLength?: number,
) {
  const options = {
    dtype: dtype === 'f32' ? ('f32' as const) : ('f16' as const),
    rope: v.rope,
    kvLength,
    limits: gpu ? attentionLimits(gpu) : undefined,
    mode: v.mode,
    window: v.window,
  };
  const parts = [
    v.fwd && attentionCost(d, 'forward', options),
    v.bwd && attentionCost(d, 'backward', options),
  ];
  c.flops = 0;
  c.bytes = 0;
  for (const part of parts) {
    if (!part) continue;
    c.flops += part.flops;
    c.bytes += part.bytes;
  }
}

function attentionCase(d: AttentionDims, dtype: ScalarType, v: Variant): KernelBenchCase {
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = d;
  const size = dtype === 'f16' ? 2 : 4;
  const what = v.fwd && v.bwd ? 'fwd+bwd' : v.fwd ? 'fwd' : 'bwd';
  const c: KernelBenchCase = {
    name: `attention ${what} B=${B} T=${T} H=${H} Hkv=${Hkv} D=${D} ${dtype}${v.rope ? ' +rope' : ''}${v.mode ? ` ${v.mode}` : ''}${v.window ? ` W=${v.window}` : ''}`,
    flops: 0,
    bytes: 0,
    setup(gpu) {
      count(c, gpu, d, v, dtype);
      const arena = new BufferArena(gpu);
      const t = (name: string, bytes: number) => ({ binding: arena.alloc(name, bytes), dtype });
      const [q, out, dout, dq] = ['q', 'out', 'dout', 'dq'].map((n) => t(n, size * B * T * H * D));
      const [k, vv, dk, dv] = ['k', 'v', 'dk', 'dv'].map((n) => t(n, size * B * T * Hkv * D));
      const lse = arena.alloc('lse', 4 * B * H * T);
      const delta = arena.alloc('delta', attentionDeltaBytes(d, v.mode));
      let rope: AttentionRope | undefined;
      if (v.rope) {
        const invFreq = arena.alloc('inv_freq', 2 * D);
        gpu.device.queue.writeBuffer(invFreq, 0, Float32Array.from(ropeInvFreq(D, 10000)));
        rope = { invFreq };
      }
      return {
        record(rec) {
          const { mode, window } = v;
          if (v.fwd) attentionForward(rec, out, lse, q, k, vv, d, { rope, window });
          if (v.bwd) {
            attentionBackward(rec, dq, dk, dv, delta, dout, out, lse, q, k, vv, d, { rope, mode, window });
          }
        },
        destroy: () => arena.destroy(),
      };
    },
  };
  count(c, null, d, v, dtype);
  return c;
}

/** One decode step: T = 1 new token per sequence against a KV cache of `cache` positions (through a window). */
function decodeCase(cache: number, dtype: ScalarType, window?: number): KernelBenchCase {
  const { batch: B, heads: H, kvHeads: Hkv, headDim: D } = smol;
  const size = dtype === 'f16' ? 2 : 4;
  const d = { ...smol, seq: 1 };
  const v = { fwd: true, bwd: false, window };
  const c: KernelBenchCase = {
    name: `attention decode B=${B} L=${cache} H=${H} Hkv=${Hkv} D=${D} ${dtype}${window ? ` W=${window}` : ''}`,
    flops: 0,
    bytes: 0,
    setup(gpu) {
      count(c, gpu, d, v, dtype, cache);
      const arena = new BufferArena(gpu);
      const q = { binding: arena.alloc('q', size * B * H * D), dtype };
      const out = { binding: arena.alloc('out', size * B * H * D), dtype };
      const k = { binding: arena.alloc('k cache', size * B * cache * Hkv * D), dtype };
      const vv = { binding: arena.alloc('v cache', size * B * cache * Hkv * D), dtype };
      return {
        record: (rec) => attentionForward(rec, out, null, q, k, vv, d, { kvLength: cache, window }),
        destroy: () => arena.destroy(),
      };
    },
  };
  count(c, null, d, v, dtype, cache);
  return c;
}

const long: AttentionDims = { ...smol, batch: 1, seq: 2048 };
const phi: AttentionDims = { batch: 2, seq: 256, heads: 8, kvHeads: 8, headDim: 96 };
const gemma: AttentionDims = { batch: 1, seq: 256, heads: 8, kvHeads: 1, headDim: 256 };

export const attentionBenches: KernelBenchCase[] = [
  attentionCase(smol, 'f16', { fwd: true, bwd: false }),
  attentionCase(smol, 'f16', { fwd: false, bwd: true }),
  attentionCase(smol, 'f16', { fwd: false, bwd: true, mode: 'recompute' }),
  attentionCase(smol, 'f16', { fwd: true, bwd: true }),
  attentionCase(smol, 'f32', { fwd: true, bwd: true }),
  attentionCase(smol, 'f16', { fwd: true, bwd: true, rope: true }),
  attentionCase(long, 'f16', { fwd: true, bwd: true }),
  attentionCase(long, 'f16', { fwd: true, bwd: true, window: 256 }),
  attentionCase(phi, 'f16', { fwd: true, bwd: true }),
  attentionCase(gemma, 'f16', { fwd: true, bwd: true }),
  decodeCase(1024, 'f16'),
  decodeCase(1024, 'f16', 256),
];
