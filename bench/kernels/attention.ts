// Causal GQA attention at the SmolLM2-135M training shape (B = 4, T = 256, H = 9, Hkv = 3, D = 64), one
// layer, plus a long-sequence row (T = 2048) and a KV-cache decode step.
// Flops count the useful causal work: forward 2 matmuls (q·kᵀ, P·v) over half the T×T scores =
// 4·B·H·T²·D/2; backward 5 such matmuls (s, dP, dv, dq, dk) = 2.5× forward. The kernels actually do 7 in the
// backward (s and dP are recomputed by both the dq and the dk/dv launch), so achieved FLOP/s understates
// the arithmetic by 7/5. Bytes are the lower bound: every tensor read or written once.
import { BufferArena, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  attentionBackward,
  attentionDeltaBytes,
  attentionForward,
  type AttentionDims,
} from '../../src/engine/kernels/attention.ts';
import { SMOL, type KernelBenchCase } from './types.ts';

const smol: AttentionDims = {
  batch: SMOL.batch,
  seq: SMOL.seq,
  heads: SMOL.heads,
  kvHeads: SMOL.kvHeads,
  headDim: SMOL.headDim,
};

function attentionCase(d: AttentionDims, dtype: ScalarType, fwd: boolean, bwd: boolean): KernelBenchCase {
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = d;
  const size = dtype === 'f16' ? 2 : 4;
  const qBytes = size * B * T * H * D;
  const kvBytes = size * B * T * Hkv * D;
  const rowBytes = 4 * B * H * T; // lse or delta
  const forwardFlops = (4 * B * H * T * T * D) / 2;
  const what = fwd && bwd ? 'fwd+bwd' : fwd ? 'fwd' : 'bwd';
  return {
    name: `attention ${what} B=${B} T=${T} H=${H} Hkv=${Hkv} D=${D} ${dtype}`,
    flops: (fwd ? forwardFlops : 0) + (bwd ? 2.5 * forwardFlops : 0),
    bytes:
      (fwd ? 2 * qBytes + 2 * kvBytes + rowBytes : 0) +
      // q, k, v, out, dout, lse read; delta written and read; dq, dk, dv written.
      (bwd ? 4 * qBytes + 4 * kvBytes + 3 * rowBytes : 0),
    setup(gpu) {
      const arena = new BufferArena(gpu);
      const t = (name: string, bytes: number) => ({ binding: arena.alloc(name, bytes), dtype });
      const [q, out, dout, dq] = ['q', 'out', 'dout', 'dq'].map((n) => t(n, qBytes));
      const [k, v, dk, dv] = ['k', 'v', 'dk', 'dv'].map((n) => t(n, kvBytes));
      const lse = arena.alloc('lse', rowBytes);
      const delta = arena.alloc('delta', attentionDeltaBytes(d));
      return {
        record(rec) {
          if (fwd) attentionForward(rec, out, lse, q, k, v, d);
          if (bwd) attentionBackward(rec, dq, dk, dv, delta, dout, out, lse, q, k, v, d);
        },
        destroy: () => arena.destroy(),
      };
    },
  };
}

/** One decode step: T = 1 new token per sequence against a KV cache of `cache` positions. */
function decodeCase(cache: number, dtype: ScalarType): KernelBenchCase {
  const { batch: B, heads: H, kvHeads: Hkv, headDim: D } = smol;
  const size = dtype === 'f16' ? 2 : 4;
  const d = { ...smol, seq: 1 };
  return {
    name: `attention decode B=${B} L=${cache} H=${H} Hkv=${Hkv} D=${D} ${dtype}`,
    flops: 4 * B * H * cache * D,
    bytes: 2 * size * B * cache * Hkv * D + 2 * size * B * H * D,
    setup(gpu) {
      const arena = new BufferArena(gpu);
      const q = { binding: arena.alloc('q', size * B * H * D), dtype };
      const out = { binding: arena.alloc('out', size * B * H * D), dtype };
      const k = { binding: arena.alloc('k cache', size * B * cache * Hkv * D), dtype };
      const v = { binding: arena.alloc('v cache', size * B * cache * Hkv * D), dtype };
      return {
        record: (rec) => attentionForward(rec, out, null, q, k, v, d, { kvLength: cache }),
        destroy: () => arena.destroy(),
      };
    },
  };
}

const long: AttentionDims = { ...smol, batch: 1, seq: 2048 };

export const attentionBenches: KernelBenchCase[] = [
  attentionCase(smol, 'f16', true, false),
  attentionCase(smol, 'f16', false, true),
  attentionCase(smol, 'f16', true, true),
  attentionCase(smol, 'f32', true, true),
  attentionCase(long, 'f16', true, true),
  decodeCase(1024, 'f16'),
];
