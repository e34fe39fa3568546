// Causal self-attention with grouped-query heads (flash-attention style, see shaders/attention.wgsl).
//
// Layouts, row-major, exactly as the q/k/v projections write them (no transposes):
//   q, out, dq, dout   (B, T, H, D)      storage type of the TensorRefs (f16 or f32, all the same)
//   k, v, dk, dv       (B, T, Hkv, D)    (B, kvCapacity, Hkv, D) for a KV cache
//   lse                (B, H, T) f32     logsumexp of every score row, saved by the forward for the backward
//   delta              f32 scratch of attentionDeltaBytes(dims, mode): the backward's rowsum(dout ∘ out), and
//                      on the spill path the (B, H, T, T) softmax-gradient scores (see attentionBackwardMode)
// Every tensor may instead sit in a wider row (`layout`: a row stride and a column offset in elements), e.g. a
// fused [q | k | v] row of (H + 2·Hkv)·D per token. Query head h uses kv head h / (H / Hkv). Scores are
// scaled by 1/√D (or `scale`: Gemma's query_pre_attn_scalar^−½); softmax and every sum run in f32. Optional RoPE is applied to q and k as they are loaded.
// An optional sliding window W: query position i sees key j iff 0 ≤ i − j < W (Hugging Face's
// sliding_window_causal_mask_function: kv_idx > q_idx − W and kv_idx ≤ q_idx); the kernels skip the blocks
// outside it, so the work per query is O(W) instead of O(position).
//
// The backward OVERWRITES dq, dk and dv (q, k and v are activations, not parameters: nothing accumulates
// into them across steps). dk/dv of a kv head sum its H/Hkv query heads inside one workgroup, in a fixed
// order: no float atomics, deterministic.

import type { BufferBinding, CommandRecorder, Program, ScalarType, TensorRef } from '../gpu/index.ts';
import { grid1d, uniforms } from '../gpu/index.ts';
import attentionWgsl from '../../../shaders/attention.wgsl?raw';
import ropeAngleWgsl from '../../../shaders/rope-angle.wgsl?raw';

/** HF's float32 inv_freq for rope.invFreq (the same table the rope kernel uses). */
export { ropeInvFreq } from './rope.ts';

export interface AttentionDims {
  /** B */
  batch: number;
  /** T: query tokens per sequence (and key tokens, in training). */
  seq: number;
  /** H: query heads. */
  heads: number;
  /** Hkv: key/value heads; heads % kvHeads == 0 (kvHeads = heads is plain multi-head attention). */
  kvHeads: number;
  /** D: head dimension, a multiple of 8 up to 256. */
  headDim: number;
}

/** Where a tensor's rows sit, in elements (default: packed, rowStride = heads·D, colOffset = 0). */
export interface TensorLayout {
  /** Elements between consecutive tokens. */
  rowStride?: number;
  /** Element offset of head 0 within a token's row. */
  colOffset?: number;
}

export type AttentionTensor = 'q' | 'k' | 'v' | 'out' | 'dout' | 'dq' | 'dk' | 'dv';
export type AttentionLayout = Partial<Record<AttentionTensor, TensorLayout>>;

/** RoPE fused into the loads of q and k (Hugging Face rotate_half, as shaders/rope.wgsl). */
export interface AttentionRope {
  /** inv_freq: (D/2) f32, from ropeInvFreq(D, theta) in kernels/rope.ts or a scaled variant of it. */
  invFreq: BufferBinding;
  /** Position of key 0 (query t sits at positionOffset + kvLength − T + t). Default 0. */
  positionOffset?: number;
}

export interface AttentionForwardOptions {
  /**
   * Keys per sequence, for a KV cache: the T queries are the last T of kvLength positions (query t sits at
   * position kvLength − T + t), and their keys/values are already in the cache. Default T (training).
   */
  kvLength?: number;
  /** Tokens per sequence allocated in the k/v buffers (their batch stride / row stride). Default kvLength. */
  kvCapacity?: number;
  layout?: AttentionLayout;
  /** With a KV cache, k is stored unrotated and rotated by its absolute position on load. */
  rope?: AttentionRope;
  /** Sliding window: each query sees its last `window` keys (itself included). Default: all earlier keys. */
  window?: number;
  /** Factor of the scores q·k; default 1/√D. */
  scale?: number;
  /** Forces a tile (benchmarks, autotuning, tests); default attentionTiles(...).forward. */
  tile?: AttentionTile;
}

/**
 * How the backward gets dS for dq: 'recompute' recomputes S and dP in the dq kernel (no scratch beyond delta),
 * 'spill' has the dk/dv kernel store dS (f32, B·H·T² floats in the delta scratch) for a dq kernel of one product.
 */
export type AttentionBackwardMode = 'recompute' | 'spill';

export interface AttentionBackwardOptions {
  layout?: AttentionLayout;
  /** Default attentionBackwardMode(dims, device's maxStorageBufferBindingSize); `delta` must be sized for it. */
  mode?: AttentionBackwardMode;
  /** The same RoPE as the forward: q and k are the unrotated tensors, dq and dk come back unrotated. */
  rope?: AttentionRope;
  /** The same sliding window as the forward. */
  window?: number;
  /** The same score scale as the forward. */
  scale?: number;
  tiles?: Partial<Record<'dq' | 'dkdv', AttentionTile>>;
}

/**
 * One workgroup's shape (see the header of shaders/attention.wgsl): `rows` rows held in registers (queries in
 * the forward and dq kernels, keys in dk/dv), blocks of `cols` columns; `threads` = rows/4 · D/(4·accVecs).
 * Score layout: `rowThreads` threads per group of 4 rows, `colBlock` columns each (cols = rowThreads ·
 * colBlock). Accumulator layout: 4 rows × `accVecs` vec4s per thread. `reduce`: how the forward takes row
 * maxima (workgroup memory, or subgroup shuffles).
 */
export interface AttentionTile {
  rows: number;
  cols: number;
  threads: number;
  rowThreads: number;
  colBlock: number;
  accVecs: number;
  reduce: 'shared' | 'subgroup';
  /** Type of the q/k/v/dout rows in workgroup memory: f16 (with f16 data) holds twice the rows. */
  tileType: AttentionDtype;
}

export type AttentionKernel = 'forward' | 'dq' | 'dkdv';

/** What the tile choice depends on: the device's limits (attentionLimits(rec.gpu) gives them). */
export interface AttentionLimits {
  /** maxComputeWorkgroupStorageSize (bytes). */
  storage: number;
  /** Threads per workgroup allowed (≤ 256 are used). */
  invocations: number;
  /** The smallest subgroup size when the device has `subgroups`, else 0. */
  subgroupMinSize: number;
  /**
   * A CPU adapter (lavapipe, SwiftShader): f16 row tiles convert on every workgroup load, which a CPU pays
   * more for, so there they are taken only where their larger tiles win (e.g. the backward, not the forward).
   */
  cpu: boolean;
}

/** The WebGPU defaults every device has: 16 KiB of workgroup memory, 256 threads, no subgroups. */
export const MIN_ATTENTION_LIMITS: AttentionLimits = {
  storage: 16384,
  invocations: 256,
  subgroupMinSize: 0,
  cpu: false,
};

/** f32s at the start of the backward scratch that hold a copy of inv_freq (SCRATCH_FREQ in the WGSL). */
const SCRATCH_FREQ = 128;
const MAX_HEAD_DIM = 256;
const DELTA_WG = 64;

const limitsOf = new WeakMap<object, AttentionLimits>();

/**
 * SwiftShader (Chrome's CPU fallback adapter) compiles a pipeline in time that grows with its workgroup
 * memory (about 3 ms per 16 bytes: +4.4 s for 24 KiB more, measured in Chromium 2026-11): tiles there stay
 * within 16 KiB, where one pipeline compiles in ~1 s.
 */
const SWIFTSHADER_STORAGE = 16384;

/** The facts of a device the tile choice uses (pass rec.gpu); read once per device. */
export function attentionLimits(gpu: {
  limits: GPUSupportedLimits;
  features: ReadonlySet<string>;
  device: GPUDevice;
  adapter: { isFallback: boolean };
}): AttentionLimits {
  const known = limitsOf.get(gpu.device);
  if (known) return known;
  const info = gpu.device.adapterInfo as GPUAdapterInfo | undefined;
  const swiftShader = info?.architecture === 'swiftshader';
  const storage = gpu.limits.maxComputeWorkgroupStorageSize;
  const limits = {
    storage: swiftShader ? Math.min(storage, SWIFTSHADER_STORAGE) : storage,
    invocations: Math.min(gpu.limits.maxComputeInvocationsPerWorkgroup, gpu.limits.maxComputeWorkgroupSizeX),
    subgroupMinSize: gpu.features.has('subgroups') ? (info?.subgroupMinSize ?? 0) : 0,
    cpu: gpu.adapter.isFallback || swiftShader,
  };
  limitsOf.set(gpu.device, limits);
  return limits;
}

/** Most bytes the spill path's scratch may take: a few MiB per step beside the activations, any device. */
export const ATTENTION_SPILL_BUDGET = 64 * 2 ** 20;
/** maxStorageBufferBindingSize every WebGPU device has. */
const MIN_BINDING_BYTES = 2 ** 27;

/**
 * The size rule: spill dS when the scratch fits min(ATTENTION_SPILL_BUDGET, maxBinding) (B·H·T² ≤ ~16 M, e.g.
 * batch 4 × seq 512 at 9 heads), else recompute (long sequences).
 */
export function attentionBackwardMode(
  dims: AttentionDims,
  maxBinding = MIN_BINDING_BYTES,
): AttentionBackwardMode {
  const bytes = attentionDeltaBytes(dims, 'spill');
  return bytes <= Math.min(ATTENTION_SPILL_BUDGET, maxBinding) ? 'spill' : 'recompute';
}

/**
 * Bytes of the f32 `delta` scratch the backward needs: a copy of inv_freq, then B·H·T floats, then on the spill
 * path B·H·T·T floats of dS (only the causal tiles are written and read). Default mode: the size rule's.
 */
export function attentionDeltaBytes(dims: AttentionDims, mode = attentionBackwardMode(dims)): number {
  const { batch: B, heads: H, seq: T } = dims;
  return 4 * (SCRATCH_FREQ + B * H * T + (mode === 'spill' ? B * H * T * T : 0));
}

// ------------------------------------------------------------------------------------------------ tiles

/** Storage types the kernels take (and keep their row tiles in). */
export type AttentionDtype = 'f16' | 'f32';

/**
 * Workgroup bytes of a kernel, mirroring the regions listed in shaders/attention.wgsl: the row pool (q, k, v,
 * dout tiles, of tile.tileType), the f32 pool (P, dS, row statistics), inv_freq and the column statistics.
 */
export function attentionSharedBytes(kernel: AttentionKernel, tile: AttentionTile, headDim: number): number {
  const pools = poolVec4s(kernel, tile, headDim / 4);
  const row = tile.tileType === 'f16' ? 8 : 16;
  return row * pools.rows + 16 * pools.f32 + 16 * (headDim / 8) + (kernel === 'dkdv' ? 8 * tile.cols : 8);
}

/** vec4s of the row pool `sh` and of the f32 pool `shf`. */
function poolVec4s(kernel: AttentionKernel, t: AttentionTile, hd4: number): { rows: number; f32: number } {
  const rs = hd4 + 1;
  const ps = t.rows / 4 + 1;
  const groups = t.rows / 4;
  if (kernel === 'forward') {
    return { rows: (t.rows + 2 * t.cols) * rs, f32: t.cols * ps + groups + groups * t.rowThreads };
  }
  if (kernel === 'dq') return { rows: 2 * (t.rows + t.cols) * rs, f32: t.cols * ps + 2 * groups };
  return { rows: 2 * (t.rows + t.cols) * rs, f32: 2 * t.cols * ps };
}

const ROW_CHOICES = [4, 8, 12, 16, 24, 32, 48, 64];
const MAX_COLS = 128;

function subgroupFits(tile: Omit<AttentionTile, 'reduce' | 'tileType'>, limits: AttentionLimits): boolean {
  const t = tile.rowThreads;
  const full = (tile.rows / 4) * t === tile.threads; // every thread takes part in the shuffles
  return full && (t & (t - 1)) === 0 && t <= limits.subgroupMinSize;
}

/** Every tile the device can run for this kernel and head dim (the autotuner's search space). */
export function attentionTileCandidates(
  kernel: AttentionKernel,
  headDim: number,
  limits: AttentionLimits = MIN_ATTENTION_LIMITS,
  dtype: AttentionDtype = 'f32',
): AttentionTile[] {
  checkHeadDim(headDim);
  const hd4 = headDim / 4;
  const out: AttentionTile[] = [];
  for (const rows of ROW_CHOICES) {
    // dk/dv keep two accumulators: at most 2 × 4 × 2 vec4s of registers per thread.
    for (const accVecs of kernel === 'dkdv' ? [1, 2] : [1, 2, 4]) {
      const threads = (rows / 4) * (hd4 / accVecs);
      if (hd4 % accVecs !== 0 || threads > Math.min(256, limits.invocations)) continue;
      for (let rowThreads = 1; rowThreads <= hd4 / accVecs; rowThreads++) {
        for (const colBlock of [1, 2, 4]) {
          const cols = rowThreads * colBlock;
          if (cols > MAX_COLS) continue;
          const base = { rows, cols, threads, rowThreads, colBlock, accVecs };
          const reduces =
            kernel === 'forward' && subgroupFits(base, limits) ? ['shared', 'subgroup'] : ['shared'];
          for (const reduce of reduces as AttentionTile['reduce'][]) {
            // f32 first: of two tiles that cost the same, the one without conversions is kept.
            for (const tileType of dtype === 'f16' ? (['f32', 'f16'] as const) : (['f32'] as const)) {
              const tile = { ...base, reduce, tileType };
              if (attentionSharedBytes(kernel, tile, headDim) <= limits.storage) out.push(tile);
            }
          }
        }
      }
    }
  }
  return out;
}

/**
 * A rough cost per useful (row, column) pair in thread-slot operations: dot products and accumulations (an FMA
 * costs 1, a vec4f workgroup-memory load 4: a warp's 16-byte loads take 4 cycles of bank bandwidth where its
 * FMAs take 1; an f16 row tile's 8-byte loads take 2 plus a conversion, cheap on a GPU, dearer on a CPU), masks
 * and exps, loading the column tiles, barriers and loop overhead. Threads idle in a phase still occupy their
 * slot. Workgroups of fewer than 64 threads are only taken when no larger one fits: GPUs need a few warps per
 * workgroup to hide latency.
 */
function tileCost(
  kernel: AttentionKernel,
  t: AttentionTile,
  hd4: number,
  usefulRows: number,
  cpu: boolean,
): number {
  const sMats = kernel === 'forward' ? 1 : 2;
  const oMats = kernel === 'dkdv' ? 2 : 1;
  // An f16 row is an 8-byte load (half the bank cycles of a vec4f) plus its conversion.
  const load = t.tileType === 'f16' ? 2 + (cpu ? 2 : 1) : 4;
  const dots = t.threads * hd4 * sMats * (load * (4 + t.colBlock) + 16 * t.colBlock);
  const softmax = t.threads * t.colBlock * 24;
  const accumulate = t.threads * t.cols * oMats * (4 + load * t.accVecs + 16 * t.accVecs);
  const loads = 2 * t.cols * hd4 * 8;
  const barriers = t.threads * (kernel === 'forward' && t.reduce === 'shared' ? 4 + t.rowThreads : 3) * 4;
  const perBlock = dots + softmax + accumulate + loads + barriers + 2000;
  return perBlock / (Math.min(t.rows, usefulRows) * t.cols);
}

const MIN_GOOD_THREADS = 64;
const tileCache = new Map<string, AttentionTile>();

function bestTile(
  kernel: AttentionKernel,
  headDim: number,
  limits: AttentionLimits,
  usefulRows: number,
  dtype: AttentionDtype,
): AttentionTile {
  const key = [kernel, headDim, ...Object.values(limits), usefulRows, dtype].join();
  const cached = tileCache.get(key);
  if (cached) return cached;
  let best: AttentionTile | undefined;
  let bestCost = Infinity;
  const all = attentionTileCandidates(kernel, headDim, limits, dtype);
  const most = Math.max(...all.map((t) => t.threads));
  for (const tile of all.filter((t) => t.threads >= Math.min(MIN_GOOD_THREADS, most))) {
    const cost = tileCost(kernel, tile, headDim / 4, usefulRows, limits.cpu);
    if (cost < bestCost - 1e-9) [best, bestCost] = [tile, cost];
  }
  if (!best)
    throw new RangeError(`attention: no ${kernel} tile fits head dim ${headDim} in ${limits.storage} bytes`);
  tileCache.set(key, best);
  return best;
}

/** Query rows of a short forward (a decode step or a short chunk): one tile class below 16 rows. */
const FEW_ROWS = 16;

function rowsClass(queryRows: number): number {
  return queryRows < FEW_ROWS ? FEW_ROWS : Infinity;
}

/**
 * The tiles used for head dim D and storage type `dtype` on a device with these limits. `queryRows`
 * (T·H/Hkv per kv head; default many) lets a short forward (a decode step) pick a tile of fewer rows: one
 * class below 16 rows, so a model compiles at most two forward variants per head dim and storage type.
 */
export function attentionTiles(
  headDim: number,
  limits: AttentionLimits = MIN_ATTENTION_LIMITS,
  queryRows = Infinity,
  dtype: AttentionDtype = 'f32',
): Record<AttentionKernel, AttentionTile> {
  return {
    forward: bestTile('forward', headDim, limits, rowsClass(queryRows), dtype),
    dq: bestTile('dq', headDim, limits, Infinity, dtype),
    dkdv: bestTile('dkdv', headDim, limits, Infinity, dtype),
  };
}

// ------------------------------------------------------------------------------------------- arguments

/** The head dims the kernels take: config.ts refuses a model with any other when it is opened. */
export const ATTENTION_HEAD_DIMS = `a multiple of 8 from 8 to ${MAX_HEAD_DIM}`;

export function attentionSupportsHeadDim(d: number): boolean {
  // D/4 must be even: RoPE pairs (i, i + D/2) as whole vec4s, and odd padded row strides (no bank conflicts).
  return Number.isInteger(d) && d >= 8 && d <= MAX_HEAD_DIM && d % 8 === 0;
}

function checkHeadDim(d: number): void {
  if (!attentionSupportsHeadDim(d)) {
    throw new RangeError(`attention: headDim must be ${ATTENTION_HEAD_DIMS}, got ${d}`);
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

const bufferOf = (b: BufferBinding): GPUBuffer => ('buffer' in b ? b.buffer : b);
const offsetOf = (b: BufferBinding): number => ('buffer' in b ? (b.offset ?? 0) : 0);

function bindingBytes(binding: BufferBinding): number {
  if ('buffer' in binding) return binding.size ?? binding.buffer.size - (binding.offset ?? 0);
  return binding.size;
}

function checkSize(name: string, binding: BufferBinding, bytes: number): void {
  const have = bindingBytes(binding);
  if (have < bytes) throw new RangeError(`attention: ${name} holds ${have} bytes, needs ${bytes}`);
}

/** A tensor's rows: `tokens` rows of `width` elements at `rowStride` apart, starting `colOffset` in. */
interface Placed {
  name: AttentionTensor;
  ref: TensorRef;
  tokens: number;
  width: number;
  rowStride: number;
  colOffset: number;
}

function place(
  name: AttentionTensor,
  ref: TensorRef,
  tokens: number,
  width: number,
  layout?: TensorLayout,
): Placed {
  const rowStride = layout?.rowStride ?? width;
  const colOffset = layout?.colOffset ?? 0;
  for (const [field, value] of [
    ['rowStride', rowStride],
    ['colOffset', colOffset],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value % 4 !== 0) {
      throw new RangeError(
        `attention: layout.${name}.${field} must be a whole number of vec4s (a multiple of 4 elements), got ${value}`,
      );
    }
  }
  if (colOffset + width > rowStride) {
    throw new RangeError(
      `attention: ${name} rows of ${width} elements at colOffset ${colOffset} do not fit rowStride ${rowStride}`,
    );
  }
  return { name, ref, tokens, width, rowStride, colOffset };
}

/** Checks storage types (f16/f32, all equal) and that every tensor's last row ends inside its binding. */
function checkPlaced(all: Placed[]): AttentionDtype {
  const first = all[0].ref.dtype;
  if (first !== 'f16' && first !== 'f32')
    throw new RangeError(`attention: ${all[0].name} must be f16 or f32, got ${first}`);
  const dtype: AttentionDtype = first;
  for (const t of all) {
    if (t.ref.dtype !== dtype) {
      throw new RangeError(`attention: ${t.name} is ${t.ref.dtype} but ${all[0].name} is ${dtype}`);
    }
    const elements = t.tokens === 0 ? 0 : (t.tokens - 1) * t.rowStride + t.colOffset + t.width;
    checkSize(t.name, t.ref.binding, elements * (dtype === 'f16' ? 2 : 4));
  }
  return dtype;
}

function overlap(a: BufferBinding, b: BufferBinding): boolean {
  if (bufferOf(a) !== bufferOf(b)) return false;
  const [a0, b0] = [offsetOf(a), offsetOf(b)];
  return a0 < b0 + bindingBytes(b) && b0 < a0 + bindingBytes(a);
}

/** WebGPU refuses a writable binding that overlaps another binding of the same dispatch: say which. */
function checkNoAlias(written: [string, BufferBinding][], read: [string, BufferBinding][]): void {
  for (const [w, wb] of written) {
    for (const [r, rb] of read) {
      if (overlap(wb, rb)) throw new RangeError(`attention: ${w} overlaps ${r} in the same buffer`);
    }
  }
}

function checkScale(scale: number | undefined): void {
  if (scale !== undefined && !(Number.isFinite(scale) && scale > 0)) {
    throw new RangeError(`attention: scale must be a finite number > 0, got ${scale}`);
  }
}

function checkWindow(window: number | undefined): void {
  if (window !== undefined && (!Number.isInteger(window) || window < 1)) {
    throw new RangeError(
      `attention: window must be a whole number ≥ 1 (keys each query sees), got ${window}`,
    );
  }
}

/** The window as the kernels take it: at most the keys there are (global attention is window = Tk). */
const clampWindow = (window: number | undefined, keys: number) => Math.min(window ?? keys, keys);

function checkRope(rope: AttentionRope | undefined, headDim: number, positions: number): void {
  if (!rope) return;
  checkSize('rope.invFreq', rope.invFreq, 4 * (headDim / 2));
  const offset = rope.positionOffset ?? 0;
  // Positions become f32 in the kernel (as in HF): exact only below 2²⁴.
  if (!Number.isInteger(offset) || offset < 0 || offset + positions > 2 ** 24) {
    throw new RangeError(
      `attention: rope.positionOffset must be a whole number with positionOffset + kvLength ≤ 2²⁴, got ${offset}`,
    );
  }
}

function checkTile(
  kernel: AttentionKernel,
  tile: AttentionTile,
  headDim: number,
  limits: AttentionLimits,
  dtype: AttentionDtype,
) {
  const same = (t: AttentionTile) => JSON.stringify(t) === JSON.stringify({ ...t, ...tile });
  if (!attentionTileCandidates(kernel, headDim, limits, dtype).some(same)) {
    throw new RangeError(
      `attention: ${kernel} tile ${JSON.stringify(tile)} is not valid for head dim ${headDim} (${dtype}) on this device`,
    );
  }
}

// --------------------------------------------------------------------------------------------- programs

const sources = new Map<string, string>();

/**
 * The shader with the row-max variant (`//#if shared` or `//#if subgroup` … `//#endif`) and the backward's
 * scratch access (`//#if recompute` or `//#if spill`) kept.
 */
function source(reduce: AttentionTile['reduce'], mode: AttentionBackwardMode): string {
  const key = `${reduce}.${mode}`;
  let text = sources.get(key);
  if (!text) {
    const body = attentionWgsl.replace(
      /\/\/#if (\w+)\n([\s\S]*?)\/\/#endif\n?/g,
      (_all, name: string, code: string) => (name === reduce || name === mode ? code : ''),
    );
    text = ropeAngleWgsl + body;
    sources.set(key, text);
  }
  return text;
}

function program(
  entryPoint: string,
  dtype: ScalarType,
  headDim: number,
  rope: boolean,
  kernel?: AttentionKernel,
  tile?: AttentionTile,
  mode: AttentionBackwardMode = 'recompute',
): Program {
  const hd4 = headDim / 4;
  const reduce = kernel === 'forward' && tile ? tile.reduce : 'shared';
  const shape: Record<string, number> = tile
    ? {
        NR: tile.rows,
        NC: tile.cols,
        TPR: tile.rowThreads,
        CB: tile.colBlock,
        CO: tile.accVecs,
        WG: tile.threads,
        SH: poolVec4s(kernel ?? 'forward', tile, hd4).rows,
        SHF: poolVec4s(kernel ?? 'forward', tile, hd4).f32,
        NCS: kernel === 'dkdv' ? tile.cols : 1,
      }
    : { WG: DELTA_WG };
  return {
    name: `attention.${entryPoint.replace('attention_', '')}${reduce === 'subgroup' ? '.subgroup' : ''}${mode === 'spill' ? '.spill' : ''}`,
    source: source(reduce, mode),
    entryPoint,
    aliases: { qkv_t: dtype, tile_t: tile?.tileType ?? dtype },
    overrides: { HD4: hd4, ROPE: rope ? 1 : 0, ...shape },
    enables: reduce === 'subgroup' ? ['subgroups'] : [],
  };
}

interface LaunchShape {
  Tq: number;
  Tk: number;
  /** Keys a query sees, clamped to Tk (a window at least as long as the keys is global attention). */
  window: number;
  /** Factor of the scores. */
  scale: number;
  qOffset: number;
  kvCap: number;
  posBase: number;
  /** cols and rowThreads of the kernel's tile (loop bounds). */
  nc: number;
  tpr: number;
}

/** The uniforms, in the order of `Params` in the WGSL; layouts of absent tensors are 0. */
function params(dims: AttentionDims, s: LaunchShape, placed: Placed[]) {
  const { batch: B, heads: H, kvHeads: Hkv, headDim: D } = dims;
  const u = uniforms()
    .u32(s.Tq)
    .u32(s.Tk)
    .u32(H)
    .u32(Hkv)
    .u32(H / Hkv)
    .u32(s.Tq * (H / Hkv))
    .u32(s.qOffset)
    .u32(s.kvCap)
    .u32(s.posBase)
    .f32(s.scale)
    .u32(D / 4)
    .u32(s.nc)
    .u32(B * H * s.Tq)
    .u32(D / 8)
    .u32(s.tpr)
    .u32(s.window);
  for (const name of ['q', 'k', 'v', 'out', 'dout', 'dq', 'dk', 'dv'] as const) {
    const t = placed.find((x) => x.name === name);
    u.u32(t ? t.rowStride / 4 : 0).u32(t ? t.colOffset / 4 : 0);
  }
  return u;
}

// -------------------------------------------------------------------------------------------- launchers

/**
 * out = softmax(q·kᵀ/√D + causal mask)·v per (batch, head), and lse = logsumexp of each score row.
 * `lse` (B, H, T) f32 is what the backward needs; pass null for inference (KV-cache decode/prefill with
 * `options.kvLength`), which then saves nothing. One dispatch: (Hkv, B, ⌈T·H/Hkv / rows⌉) workgroups.
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
  const L = options.layout ?? {};
  const placed = [
    place('q', q, B * T, H * D, L.q),
    place('k', k, B * kvCap, Hkv * D, L.k),
    place('v', v, B * kvCap, Hkv * D, L.v),
    place('out', out, B * T, H * D, L.out),
  ];
  const dtype = checkPlaced(placed);
  if (lse) checkSize('lse', lse, 4 * B * H * T);
  const { rope } = options;
  checkRope(rope, D, kvLength);
  checkWindow(options.window);
  checkScale(options.scale);
  const read: [string, BufferBinding][] = [
    ['q', q.binding],
    ['k', k.binding],
    ['v', v.binding],
    ...(rope ? [['rope.invFreq', rope.invFreq] as [string, BufferBinding]] : []),
  ];
  checkNoAlias([['out', out.binding]], lse ? [...read, ['lse', lse]] : read);
  if (lse) checkNoAlias([['lse', lse]], read);
  const limits = attentionLimits(rec.gpu);
  if (options.tile) checkTile('forward', options.tile, D, limits, dtype);
  if (B === 0 || T === 0 || H === 0) return;

  const tile = options.tile ?? attentionTiles(D, limits, T * (H / Hkv), dtype).forward;
  const window = clampWindow(options.window, kvLength);
  const shape = {
    Tq: T,
    Tk: kvLength,
    window,
    scale: options.scale ?? 1 / Math.sqrt(D),
    qOffset: kvLength - T,
    kvCap,
    posBase: rope?.positionOffset ?? 0,
  };
  const entry = lse ? 'attention_forward' : 'attention_forward_infer';
  // Bindings 1 q, 2 k, 3 v, 4 out, 5 lse, 6 inv_freq (without RoPE the shader still names it: q stands in).
  rec.dispatch(program(entry, dtype, D, Boolean(rope), 'forward', tile), {
    uniforms: params(dims, { ...shape, nc: tile.cols, tpr: tile.rowThreads }, placed),
    buffers: [q.binding, k.binding, v.binding, out.binding, lse, rope?.invFreq ?? q.binding],
    workgroups: [Hkv, B, Math.ceil((T * (H / Hkv)) / tile.rows)],
    cost: options.tile
      ? undefined
      : attentionCost(dims, 'forward', { kvLength, dtype, rope: !!rope, limits, window }),
  });
}

/** dk and dv in one buffer: one binding over both ranges, their column offsets shifted to its start. */
function jointDkv(dk: Placed, dv: Placed): { binding: BufferBinding; dk: Placed; dv: Placed } | null {
  if (bufferOf(dk.ref.binding) !== bufferOf(dv.ref.binding)) return null;
  const bytes = dk.ref.dtype === 'f16' ? 2 : 4;
  const [a, b] = [offsetOf(dk.ref.binding), offsetOf(dv.ref.binding)];
  const base = Math.min(a, b);
  const end = Math.max(a + bindingBytes(dk.ref.binding), b + bindingBytes(dv.ref.binding));
  const shifted = (t: Placed, at: number) => ({ ...t, colOffset: t.colOffset + (at - base) / bytes });
  const joint = { dk: shifted(dk, a), dv: shifted(dv, b) };
  const [x, y] = [joint.dk, joint.dv];
  const R = x.rowStride;
  const gap = (from: number, to: number) => (((to - from) % R) + R) % R; // columns from → to along a row
  const disjoint =
    y.rowStride === R && gap(x.colOffset, y.colOffset) >= x.width && gap(y.colOffset, x.colOffset) >= y.width;
  if (!disjoint) {
    throw new RangeError(
      'attention: dk and dv share a buffer, so they need one rowStride and disjoint columns',
    );
  }
  return { binding: { buffer: bufferOf(dk.ref.binding), offset: base, size: end - base }, ...joint };
}

/** The backward's writes (delta; dq; dk and dv) must not overlap what the same dispatch reads. */
function checkBackwardAliases(
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
  rope: AttentionRope | undefined,
): void {
  const deltaReads: [string, BufferBinding][] = [
    ['out', out.binding],
    ['dout', dout.binding],
    ['lse', lse],
  ];
  if (rope) deltaReads.push(['rope.invFreq', rope.invFreq]);
  checkNoAlias([['delta', delta]], deltaReads);
  const inputs: [string, BufferBinding][] = [
    ['q', q.binding],
    ['k', k.binding],
    ['v', v.binding],
    ['dout', dout.binding],
    ['lse', lse],
    ['delta', delta],
  ];
  checkNoAlias([['dq', dq.binding]], inputs);
  checkNoAlias(
    [
      ['dk', dk.binding],
      ['dv', dv.binding],
    ],
    inputs,
  );
}

/**
 * Gradients of the forward above (training layout: kvLength = kvCapacity = T). Writes (overwrites) dq,
 * dk and dv. `delta` is f32 scratch of attentionDeltaBytes(dims, mode) bytes. Three dispatches: delta =
 * rowsum(dout ∘ out) (and a copy of inv_freq); then, recomputing, dq per (kv head, batch, query-row tile) and
 * dk/dv per (kv head, batch, key tile) looping over the query rows of all heads of the group that see those
 * keys; spilling, dk/dv first (also storing dS in `delta`), then dq = dS·k from it.
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
  options: AttentionBackwardOptions = {},
): void {
  checkDims(dims);
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = dims;
  const L = options.layout ?? {};
  const [qw, kw] = [H * D, Hkv * D];
  const P = {
    q: place('q', q, B * T, qw, L.q),
    k: place('k', k, B * T, kw, L.k),
    v: place('v', v, B * T, kw, L.v),
    out: place('out', out, B * T, qw, L.out),
    dout: place('dout', dout, B * T, qw, L.dout),
    dq: place('dq', dq, B * T, qw, L.dq),
    dk: place('dk', dk, B * T, kw, L.dk),
    dv: place('dv', dv, B * T, kw, L.dv),
  };
  const dtype = checkPlaced(Object.values(P));
  checkSize('lse', lse, 4 * B * H * T);
  const mode = options.mode ?? attentionBackwardMode(dims, rec.gpu.limits.maxStorageBufferBindingSize);
  checkSize('delta', delta, attentionDeltaBytes(dims, mode));
  const { rope } = options;
  checkRope(rope, D, T);
  checkWindow(options.window);
  checkScale(options.scale);
  checkBackwardAliases(dq, dk, dv, delta, dout, out, lse, q, k, v, rope);
  const joint = jointDkv(P.dk, P.dv);
  const limits = attentionLimits(rec.gpu);
  for (const kernel of ['dq', 'dkdv'] as const) {
    const forced = options.tiles?.[kernel];
    if (forced) checkTile(kernel, forced, D, limits, dtype);
  }
  if (B === 0 || T === 0 || H === 0) return;

  const tiles = { ...attentionTiles(D, limits, Infinity, dtype), ...options.tiles };
  const placed = Object.values({ ...P, ...(joint ? { dk: joint.dk, dv: joint.dv } : {}) });
  const window = clampWindow(options.window, T);
  const scale = options.scale ?? 1 / Math.sqrt(D);
  const shape = { Tq: T, Tk: T, window, scale, qOffset: 0, kvCap: T, posBase: rope?.positionOffset ?? 0 };
  const useRope = Boolean(rope);
  // Bindings: 1 q, 2 k, 3 v, 4 out (forward only), 5 lse (forward), 6 inv_freq, 7 out, 8 dout, 9 delta
  // (written), 10 delta (read), 11 lse (read), 12 dq, 13 dk, 14 dv, 15 dk+dv. null where unused.
  rec.dispatch(program('attention_backward_delta', dtype, D, useRope), {
    uniforms: params(dims, { ...shape, nc: 0, tpr: 0 }, placed),
    buffers: [null, null, null, null, null, rope?.invFreq ?? out.binding, out.binding, dout.binding, delta],
    workgroups: grid1d(B * H * T, DELTA_WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    // The whole backward's count (delta, dq, dk/dv), on its first launch.
    cost: options.tiles
      ? undefined
      : attentionCost(dims, 'backward', { dtype, rope: useRope, limits, mode, window }),
  });
  // Spilling, dk/dv writes dS into the scratch, bound read_write at 9 (in place of the read-only 10).
  const spill = mode === 'spill';
  const common = [q.binding, k.binding, v.binding, null, null, null, null, dout.binding];
  const scratch = spill ? [delta, null, lse] : [null, delta, lse];
  const entry = joint ? 'attention_backward_dkdv_one' : 'attention_backward_dkdv';
  const dkdv = () =>
    rec.dispatch(program(entry, dtype, D, useRope, 'dkdv', tiles.dkdv, mode), {
      uniforms: params(dims, { ...shape, nc: tiles.dkdv.cols, tpr: tiles.dkdv.rowThreads }, placed),
      buffers: [
        ...common,
        ...scratch,
        ...(joint ? [null, null, null, joint.binding] : [null, dk.binding, dv.binding]),
      ],
      workgroups: [Hkv, B, Math.ceil(T / tiles.dkdv.rows)],
    });
  if (spill) dkdv();
  // The light dq kernel reads only k and the scratch.
  const dqBuffers = spill
    ? [null, k.binding, null, null, null, null, null, null, delta, null, null]
    : [...common, ...scratch];
  rec.dispatch(
    program(
      spill ? 'attention_backward_dq_spill' : 'attention_backward_dq',
      dtype,
      D,
      useRope,
      'dq',
      tiles.dq,
      mode,
    ),
    {
      uniforms: params(dims, { ...shape, nc: tiles.dq.cols, tpr: tiles.dq.rowThreads }, placed),
      buffers: [...dqBuffers, dq.binding],
      workgroups: [Hkv, B, Math.ceil((T * (H / Hkv)) / tiles.dq.rows)],
    },
  );
  if (!spill) dkdv();
}

// ------------------------------------------------------------------------------------------------- cost

export interface AttentionCost {
  /** Floating-point operations the kernels execute (2 per multiply-add), masked tile entries included. */
  flops: number;
  /** Bytes the kernels read from and write to storage buffers. */
  bytes: number;
}

export interface AttentionCostOptions {
  /** Keys per sequence (a KV cache); default seq. */
  kvLength?: number;
  /** Storage type of q, k, v, … (default f16). */
  dtype?: 'f16' | 'f32';
  /** Fused RoPE: adds the rotations of q and k as they are loaded (and of dq, dk as they are stored). */
  rope?: boolean;
  /** The device whose tiles are counted; default the WebGPU minimum limits. */
  limits?: AttentionLimits;
  /** The backward's path; default attentionBackwardMode(dims). */
  mode?: AttentionBackwardMode;
  /** Sliding window (keys each query sees); default global causal attention. */
  window?: number;
}

/**
 * FLOPs and bytes of one attentionForward or attentionBackward launch, from the kernels' own loops: every
 * workgroup computes whole (rows × cols) blocks from the start of its first row's window (key 0 without one)
 * to its causal limit, so the count includes the masked parts of the edge blocks and, in the recomputing
 * backward, the scores and dP computed by both the dq and the dk/dv kernels (7 block matmuls where 5 are
 * needed; spilling, 5 and the dS write and read). RoPE counts 6 flops per rotated pair.
 */
export function attentionCost(
  dims: AttentionDims,
  which: 'forward' | 'backward',
  options: AttentionCostOptions = {},
): AttentionCost {
  checkDims(dims);
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = dims;
  const dtype = options.dtype ?? 'f16';
  const e = dtype === 'f32' ? 4 : 2;
  const Tk = options.kvLength ?? T;
  const G = H / Hkv;
  const rows = T * G;
  const limits = options.limits ?? MIN_ATTENTION_LIMITS;
  const rot = options.rope ? 3 * D : 0; // flops to rotate one row (D/2 pairs × 6)
  checkWindow(options.window);
  const W = clampWindow(options.window, Tk);
  const total = { flops: 0, bytes: 0 };
  const add = (flops: number, bytes: number) => {
    total.flops += B * Hkv * flops;
    total.bytes += B * Hkv * bytes;
  };
  const span = (start: number, n: number, end: number) => Math.max(0, Math.min(n, end - start));
  /** Key blocks a query-row tile at f0 walks over (first_key_block to the causal limit), and the keys they hold. */
  const keyBlocks = (f0: number, t: AttentionTile) => {
    const reach = Math.min(Tk - T + Math.floor((Math.min(f0 + t.rows, rows) - 1) / G) + 1, Tk);
    const first = Math.floor(Math.max(0, Tk - T + Math.floor(f0 / G) + 1 - W) / t.cols);
    return { blocks: Math.ceil(reach / t.cols) - first, keys: reach - first * t.cols };
  };
  if (which === 'forward') {
    const t = attentionTiles(D, limits, rows, dtype).forward;
    for (let f0 = 0; f0 < rows; f0 += t.rows) {
      const n = span(f0, t.rows, rows);
      const { blocks, keys } = keyBlocks(f0, t);
      add(blocks * 4 * t.rows * t.cols * D + (n + keys) * rot, 2 * n * D * e + 2 * keys * D * e + 4 * n);
    }
    return total;
  }
  const spill = (options.mode ?? attentionBackwardMode(dims)) === 'spill';
  const tiles = attentionTiles(D, limits, Infinity, dtype);
  add(2 * rows * D, rows * (2 * D * e + 4)); // delta: dout · out per row
  for (let f0 = 0; f0 < rows; f0 += tiles.dq.rows) {
    const t = tiles.dq;
    const n = span(f0, t.rows, rows);
    const { blocks, keys } = keyBlocks(f0, t);
    if (spill) {
      // dq += dS·k; reads k and the visible dS entries of the tile's rows (query t sees min(t + 1, W) keys).
      let seen = 0;
      for (let f = f0; f < f0 + n; f++) seen += Math.min(Tk - T + Math.floor(f / G) + 1, W);
      add(blocks * 2 * t.rows * t.cols * D + (n + keys) * rot, n * D * e + keys * D * e + 4 * seen);
      continue;
    }
    // S = q·kᵀ, dP = dout·vᵀ, dq += dS·k; reads q, dout, lse, delta, then k, v per block; writes dq.
    add(blocks * 6 * t.rows * t.cols * D + (2 * n + keys) * rot, n * (3 * D * e + 8) + 2 * keys * D * e);
  }
  for (let s0 = 0; s0 < T; s0 += tiles.dkdv.rows) {
    const t = tiles.dkdv;
    const n = span(s0, t.rows, T);
    // Query rows that see these keys: from the first key's own query to the last key's window end.
    const cols = Math.min(rows, (s0 + n - 1 + W) * G) - s0 * G;
    const blocks = Math.ceil(cols / t.cols);
    // Sᵀ, dPᵀ, dv += Pᵀ·dout, dk += dSᵀ·q; reads k, v, then q, dout, lse, delta per block; writes dk, dv
    // (and, spilling, dS of every (query row, key) pair it computes: the masked ones of the diagonal too).
    const dsWrite = spill ? 4 * n * cols : 0;
    add(
      blocks * 8 * t.rows * t.cols * D + (2 * n + cols) * rot,
      4 * n * D * e + cols * (2 * D * e + 8) + dsWrite,
    );
  }
  return total;
}
