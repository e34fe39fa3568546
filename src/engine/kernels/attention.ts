// Causal self-attention with grouped-query heads (flash-attention style, see shaders/attention.wgsl).
//
// Layouts, row-major, exactly as the q/k/v projections write them (no transposes):
//   q, out, dq, dout   (B, T, H, D)      storage type of the TensorRefs (f16 or f32, all the same)
//   k, v, dk, dv       (B, T, Hkv, D)    (B, kvCapacity, Hkv, D) for a KV cache
//   lse                (B, H, T) f32     logsumexp of every score row, saved by the forward for the backward
//   delta              (B, H, T) f32     backward scratch: rowsum(dout ∘ out)
// Query head h uses kv head h / (H / Hkv). Scores are scaled by 1/√D; softmax and every sum run in f32.
//
// The backward OVERWRITES dq, dk and dv (q, k and v are activations, not parameters: nothing accumulates
// into them across steps). dk/dv of a kv head sum its H/Hkv query heads inside one workgroup, in a fixed
// order: no float atomics, deterministic.

import type { BufferBinding, CommandRecorder, Program, ScalarType, TensorRef } from '../gpu/index.ts';
import { grid1d, uniforms } from '../gpu/index.ts';
import attentionWgsl from '../../../shaders/attention.wgsl?raw';

export interface AttentionDims {
  /** B */
  batch: number;
  /** T: query tokens per sequence (and key tokens, in training). */
  seq: number;
  /** H: query heads. */
  heads: number;
  /** Hkv: key/value heads; heads % kvHeads == 0 (kvHeads = heads is plain multi-head attention). */
  kvHeads: number;
  /** D: head dimension: 32, 64 or 128. */
  headDim: number;
}

export interface AttentionForwardOptions {
  /**
   * Keys per sequence, for a KV cache: the T queries are the last T of kvLength positions (query t sits at
   * position kvLength − T + t), and their keys/values are already in the cache. Default T (training).
   */
  kvLength?: number;
  /** Tokens per sequence allocated in the k/v buffers (their batch stride / (Hkv·D)). Default kvLength. */
  kvCapacity?: number;
}

/** Tile sizes of one launch: BQ query rows × BKV key rows per workgroup. */
export interface AttentionTile {
  BQ: number;
  BKV: number;
}

const WG = 256;
/** Workgroup memory every WebGPU device has (maxComputeWorkgroupStorageSize default). */
const SHARED_BYTES = 16384;
const TILE_CANDIDATES = [64, 32, 16, 8, 4, 2, 1];

// Workgroup bytes per entry point, mirroring the `var<workgroup>` arrays each one uses.
const sharedBytes = {
  forward: ({ BQ, BKV }: AttentionTile, d: number) => 4 * (BQ + BKV) * d + 4 * BQ * BKV + 12 * BQ,
  dq: ({ BQ, BKV }: AttentionTile, d: number) => 4 * (2 * BQ + BKV) * d + 4 * BQ * BKV + 8 * BQ,
  dkdv: ({ BQ, BKV }: AttentionTile, d: number) => 4 * (2 * BQ + 2 * BKV) * d + 8 * BQ * BKV + 8 * BQ,
};

/**
 * Tiles for head dim D: the register-accumulated side has WG·4/D rows (256 threads × one vec4 each), the
 * other side is the largest that keeps the workgroup arrays within 16 KiB.
 */
export function attentionTiles(headDim: number): Record<'forward' | 'dq' | 'dkdv', AttentionTile> {
  checkHeadDim(headDim);
  const rows = (WG * 4) / headDim;
  const pick = (kernel: keyof typeof sharedBytes, tile: (n: number) => AttentionTile) => {
    for (const n of TILE_CANDIDATES) {
      if (sharedBytes[kernel](tile(n), headDim) <= SHARED_BYTES) return tile(n);
    }
    throw new RangeError(`attention: no ${kernel} tile fits head dim ${headDim}`);
  };
  return {
    forward: pick('forward', (n) => ({ BQ: rows, BKV: n })),
    dq: pick('dq', (n) => ({ BQ: rows, BKV: n })),
    dkdv: pick('dkdv', (n) => ({ BQ: n, BKV: rows })),
  };
}

/** Bytes of the f32 `delta` scratch the backward needs: B·H·T floats (same as lse). */
export function attentionDeltaBytes(dims: AttentionDims): number {
  return 4 * dims.batch * dims.heads * dims.seq;
}

function checkHeadDim(d: number): void {
  // Other powers of two would tile (the tile rule is general) but are not tested.
  if (d !== 32 && d !== 64 && d !== 128) {
    throw new RangeError(`attention: headDim must be 32, 64 or 128, got ${d}`);
  }
}

function checkDims(dims: AttentionDims): void {
  for (const [name, value] of Object.entries(dims)) {
    if (!Number.isInteger(value) || value < 0) {
      throw new RangeError(`attention: ${name} must be a whole number ≥ 0, got ${value}`);
    }
  }
  checkHeadDim(dims.headDim);
  if (dims.kvHeads < 1 || dims.heads % dims.kvHeads !== 0) {
    throw new RangeError(
      `attention: heads (${dims.heads}) must be a multiple of kvHeads (${dims.kvHeads}) ≥ 1`,
    );
  }
}

function bindingBytes(binding: BufferBinding): number {
  if ('buffer' in binding) return binding.size ?? binding.buffer.size - (binding.offset ?? 0);
  return binding.size;
}

function checkSize(name: string, binding: BufferBinding, bytes: number): void {
  const have = bindingBytes(binding);
  if (have < bytes) {
    throw new RangeError(`attention: ${name} holds ${have} bytes, needs ${bytes}`);
  }
}

function checkTensors(named: Record<string, TensorRef>, elements: (name: string) => number): ScalarType {
  const entries = Object.entries(named);
  const dtype = entries[0][1].dtype;
  for (const [name, t] of entries) {
    if (t.dtype !== 'f16' && t.dtype !== 'f32') {
      throw new RangeError(`attention: ${name} must be f16 or f32, got ${t.dtype}`);
    }
    if (t.dtype !== dtype) {
      throw new RangeError(`attention: ${name} is ${t.dtype} but ${entries[0][0]} is ${dtype}`);
    }
    checkSize(name, t.binding, elements(name) * (dtype === 'f16' ? 2 : 4));
  }
  return dtype;
}

function program(entryPoint: string, dtype: ScalarType, headDim: number, tile: AttentionTile): Program {
  return {
    name: `attention.${entryPoint.replace('attention_', '')}`,
    source: attentionWgsl,
    entryPoint,
    aliases: { qkv_t: dtype },
    overrides: { HD4: headDim / 4, BQ: tile.BQ, BKV: tile.BKV },
  };
}

interface LaunchShape {
  Tq: number;
  Tk: number;
  qOffset: number;
  kvCap: number;
}

function params(dims: AttentionDims, s: LaunchShape, tile: AttentionTile) {
  return uniforms()
    .u32(s.Tq)
    .u32(s.Tk)
    .u32(dims.heads)
    .u32(dims.kvHeads)
    .u32(s.qOffset)
    .u32(s.kvCap)
    .u32(dims.batch * dims.heads * s.Tq)
    .f32(1 / Math.sqrt(dims.headDim))
    .u32(dims.headDim / 4)
    .u32(tile.BQ)
    .u32(tile.BKV)
    .u32(0);
}

/**
 * out = softmax(q·kᵀ/√D + causal mask)·v per (batch, head), and lse = logsumexp of each score row.
 * `lse` (B, H, T) f32 is what the backward needs; pass null for inference (KV-cache decode/prefill with
 * `options.kvLength`), which then saves nothing. One dispatch: (⌈T/BQ⌉, H, B) workgroups.
 */
export function attentionForward(
  rec: CommandRecorder,
  out: TensorRef,
  lse: BufferBinding | null,
  q: TensorRef,
  k: TensorRef,
  v: TensorRef,
  dims: AttentionDims,
  options: AttentionForwardOptions = {},
): void {
  checkDims(dims);
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = dims;
  const kvLength = options.kvLength ?? T;
  const kvCap = options.kvCapacity ?? kvLength;
  if (!Number.isInteger(kvLength) || kvLength < T) {
    throw new RangeError(`attention: kvLength (${kvLength}) must be a whole number ≥ seq (${T})`);
  }
  if (!Number.isInteger(kvCap) || kvCap < kvLength) {
    throw new RangeError(`attention: kvCapacity (${kvCap}) must be a whole number ≥ kvLength (${kvLength})`);
  }
  if (B === 0 || T === 0 || H === 0) return;
  const qElems = B * T * H * D;
  const kvElems = B * kvCap * Hkv * D;
  const dtype = checkTensors({ q, k, v, out }, (n) => (n === 'k' || n === 'v' ? kvElems : qElems));
  if (lse) checkSize('lse', lse, 4 * B * H * T);

  const tile = attentionTiles(D).forward;
  const shape = { Tq: T, Tk: kvLength, qOffset: kvLength - T, kvCap };
  const entry = lse ? 'attention_forward' : 'attention_forward_infer';
  rec.dispatch(program(entry, dtype, D, tile), {
    uniforms: params(dims, shape, tile),
    buffers: [q.binding, k.binding, v.binding, out.binding, lse],
    workgroups: [Math.ceil(T / tile.BQ), H, B],
  });
}

/**
 * Gradients of the forward above (training layout: kvLength = kvCapacity = T). Writes (overwrites) dq,
 * dk and dv. `delta` is f32 scratch of attentionDeltaBytes(dims) bytes. Three dispatches: delta =
 * rowsum(dout ∘ out), then dq per (query tile, head), then dk/dv per (key tile, kv head) looping over the
 * query heads of the group.
 */
export function attentionBackward(
  rec: CommandRecorder,
  dq: TensorRef,
  dk: TensorRef,
  dv: TensorRef,
  delta: BufferBinding,
  dout: TensorRef,
  out: TensorRef,
  lse: BufferBinding,
  q: TensorRef,
  k: TensorRef,
  v: TensorRef,
  dims: AttentionDims,
): void {
  checkDims(dims);
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = dims;
  if (B === 0 || T === 0 || H === 0) return;
  const qElems = B * T * H * D;
  const kvElems = B * T * Hkv * D;
  const dtype = checkTensors({ q, k, v, out, dout, dq, dk, dv }, (n) =>
    ['k', 'v', 'dk', 'dv'].includes(n) ? kvElems : qElems,
  );
  checkSize('lse', lse, 4 * B * H * T);
  checkSize('delta', delta, attentionDeltaBytes(dims));

  const tiles = attentionTiles(D);
  const shape = { Tq: T, Tk: T, qOffset: 0, kvCap: T };
  const maxGroups = rec.gpu.limits.maxComputeWorkgroupsPerDimension;
  // Bindings: 1 q, 2 k, 3 v, 4 out, 5 lse, 6 dout, 7 delta, 8 dq, 9 dk, 10 dv (null where unused).
  rec.dispatch(program('attention_backward_delta', dtype, D, tiles.dq), {
    uniforms: params(dims, shape, tiles.dq),
    buffers: [null, null, null, out.binding, null, dout.binding, delta],
    workgroups: grid1d(B * H * T, WG, maxGroups),
  });
  rec.dispatch(program('attention_backward_dq', dtype, D, tiles.dq), {
    uniforms: params(dims, shape, tiles.dq),
    buffers: [q.binding, k.binding, v.binding, null, lse, dout.binding, delta, dq.binding],
    workgroups: [Math.ceil(T / tiles.dq.BQ), H, B],
  });
  rec.dispatch(program('attention_backward_dkdv', dtype, D, tiles.dkdv), {
    uniforms: params(dims, shape, tiles.dkdv),
    buffers: [q.binding, k.binding, v.binding, null, lse, dout.binding, delta, null, dk.binding, dv.binding],
    workgroups: [Math.ceil(T / tiles.dkdv.BKV), Hkv, B],
  });
}
