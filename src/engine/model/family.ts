// What a model family is, before any GPU exists: its linears (names, shapes, HF module paths) and its activation
// table (llm.c's act_sizes): every buffer a training step on (B, T) allocates, by name, with its shape, its
// storage type and how many copies there are. `createActivations` allocates from the table and `estimateMemory`
// adds it up, so the estimate is what is allocated. A new family describes itself with one `FamilyShape` and
// computes with one `TransformerModel` subclass (transformer.ts).
//
// Scopes of the table (N = B·T tokens):
//   input   (N, C) per layer      every block's input x: the residual stream the backward starts each block from
//   block   per layer             a block's internals; under recompute one set every layer shares
//   u       (N, r) f32            x·Aᵀ of each adapted linear, scoped like `block`, only where an adapter is
//   norm    once                  the final norm's statistics
//   grads   once                  the family's backward scratch, shared by all layers
//   step    once                  ids, targets, head, loss and the scratch every family has

import type { AttentionDims } from '../kernels/attention.ts';
import { attentionBackwardMode, attentionDeltaBytes } from '../kernels/attention.ts';
import { crossEntropyPlan } from '../kernels/crossentropy.ts';
import { EMBEDDING_ERROR_WORDS } from '../kernels/embedding.ts';
import type { ScalarType } from '../gpu/index.ts';
import { loraGradsSplit, loraGradsTableWords } from '../kernels/lora-grads.ts';
import type { RankColumns } from './linear.ts';

/** Storage of one table entry: `act` is the model's activation type (f16 or f32); the rest are 4 bytes. */
export type ActType = 'act' | 'f32' | 'u32' | 'i32';

export interface ActEntry {
  /** Shape in the letters of the family's legend, e.g. '(N, H·D)'. */
  shape: string;
  elements: number;
  type: ActType;
}

/** One entry per buffer field of T; an optional field (a variant's extra buffer) may be left out. */
export type EntryTable<T> = { [K in keyof T]: ActEntry };

/**
 * The buffers every family's block has: its input, attention's saved log-sum-exp, and LoRA's x·Aᵀ. A family
 * extends it with the rest of what its block's forward writes. Training keeps one set per layer (the backward
 * reads them); inference shares one set of scratch across layers and passes lse = null.
 */
export interface BlockBuffers<L extends string = string> {
  x: GPUBuffer; // (N, C) block input (residual stream)
  lse: GPUBuffer | null; // (B, H, T) f32, for the attention backward; null at inference
  u: Partial<Record<L, RankColumns>>; // x·Aᵀ per adapted linear: its r columns of the layer's (N, Σr) f32
}

/** A block's own fields: what the family's table lists for it. */
export type BlockInternals<Block> = Omit<Block, keyof BlockBuffers>;

/** Buffers of a training step that every family has, once per (B, T). */
export interface StepBuffers {
  tokens: GPUBuffer; // (N) u32 input ids
  targets: GPUBuffer; // (N) i32 next-token ids, −100 = ignored
  embedErrors: GPUBuffer; // (3) u32 out-of-vocabulary report
  xFinal: GPUBuffer; // (N, C) residual after the last block
  xnFinal: GPUBuffer; // (N, C) input of the head
  loss: GPUBuffer; // (1) f32 mean loss (accumulated over micro-batches)
  losses: GPUBuffer; // (N) f32 per-token loss
  ceLse: GPUBuffer; // (N) f32 log-sum-exp of the logits
  ceScratch: GPUBuffer; // (N, Vc) f32 logits of one vocabulary chunk + (N, 3) running statistics
  ceGrad: GPUBuffer; // (2, N, C) f32 the fused head's G = Σ P·W and the targets' rows of W
  dResidual: GPUBuffer; // (N, C) gradient of the residual stream
  dNormed: GPUBuffer; // (N, C) gradient of a norm's output
  delta: GPUBuffer; // (B, H, T) f32 attention backward rowsum(dO∘O)
  loraV: GPUBuffer; // (N, Σr) f32 dy·B, each adapter in its u's columns
  gradTables: GPUBuffer; // u32 the work lists of the grouped gradient dispatches (one per gradient group)
  gradWorkspace: GPUBuffer; // (chunks, Σ cols·r) f32 their token chunks' partial sums (the largest group's)
  rng: GPUBuffer; // (1) u32 the step's LoRA dropout base (linear.ts: LinearContext)
}

export interface LinearShape {
  inFeatures: number;
  outFeatures: number;
}

/** The limits a cross-entropy chunk is planned against. */
export type BindingLimits = Pick<
  GPUSupportedLimits,
  'minStorageBufferOffsetAlignment' | 'maxStorageBufferBindingSize' | 'maxBufferSize'
>;

/** WebGPU's default limits: what a device grants when nothing higher is asked for. */
export const DEFAULT_BINDING_LIMITS: BindingLimits = {
  minStorageBufferOffsetAlignment: 256,
  maxStorageBufferBindingSize: 2 ** 27,
  maxBufferSize: 2 ** 28,
};

/**
 * A family's shape: pure facts from its dims, no GPU. `L` names its linears, `Block` its block buffers,
 * `Norm` the final norm's statistics, `Grads` its backward scratch.
 */
export interface FamilyShape<L extends string, Block extends BlockBuffers<L>, Norm, Grads> {
  readonly layers: number;
  readonly hidden: number;
  readonly vocab: number;
  /** Positions a learned position table holds; null when positions are computed (RoPE). */
  readonly maxPositions: number | null;
  /** The block's linears, in the order the block runs them. */
  readonly linears: readonly L[];
  /**
   * How the block's backward groups its adapters' gradients (kernels/lora-grads.ts): one dispatch per group, in
   * the order the backward records them, each member a linear and the name of the tensor the product reads (its
   * dy for dB, its x for dA; at most 4 distinct names per group), which the backward binds by that name.
   */
  readonly gradientGroups: readonly GradientGroup<L>[];
  linearShape(name: L): LinearShape;
  /** The HF module path PEFT names the adapter of `name` in `layer` by. */
  modulePath(layer: number, name: L): string;
  attentionDims(batch: number, seq: number): AttentionDims;
  /** The block's own buffers for (B, T) (all but x, lse and u). */
  blockTable(batch: number, seq: number): EntryTable<BlockInternals<Block>>;
  /** The final norm's statistics for N rows. */
  normTable(rows: number): EntryTable<Norm>;
  /** Backward scratch for (B, T), shared by every layer. */
  gradsTable(batch: number, seq: number): EntryTable<Grads>;
}

export interface GradientGroup<L extends string> {
  kind: 'dA' | 'dB';
  members: readonly (readonly [L, string])[];
}

/** The shape of any family, as code that works on every family sees it. */
export type AnyFamilyShape = FamilyShape<string, BlockBuffers, object, object>;

export interface TableOptions<L extends string> {
  batch: number;
  seq: number;
  dtype: ScalarType;
  /** Rank of the adapter at linear `name` (the largest over layers); 0 = no adapter there. */
  rank(name: L): number;
  limits: BindingLimits;
  /** Tokens per chunk of the LoRA gradients' token split (kernels/lora-grads.ts); default: its rule. */
  gradChunkTokens?: number;
}

/** Every buffer of a training step's activations on (B, T). */
export interface TrainingTable<L extends string, Block extends BlockBuffers<L>, Norm, Grads> {
  input: ActEntry;
  block: EntryTable<BlockInternals<Block>> & { lse: ActEntry };
  /** (N, Σr) f32 per layer with an adapter: every adapted linear's u = x·Aᵀ side by side. */
  u: ActEntry | null;
  /** The first column of each adapted linear's block in u (and in loraV), and their total width Σr. */
  uColumns: Partial<Record<L, number>>;
  uWidth: number;
  /** Where each gradient group's work list starts in gradTables (u32 words, 256-byte aligned); −1: no adapter. */
  gradTableOffsets: number[];
  norm: EntryTable<Norm>;
  grads: EntryTable<Grads>;
  step: EntryTable<StepBuffers>;
}

/** An entry in the activation type, and one in f32. */
export const act = (shape: string, elements: number): ActEntry => ({ shape, elements, type: 'act' });
export const f32 = (shape: string, elements: number): ActEntry => ({ shape, elements, type: 'f32' });

export function trainingTable<L extends string, Block extends BlockBuffers<L>, Norm, Grads>(
  shape: FamilyShape<L, Block, Norm, Grads>,
  o: TableOptions<L>,
): TrainingTable<L, Block, Norm, Grads> {
  const { batch: B, seq: T } = o;
  const N = B * T;
  const { hidden: C, vocab: V } = shape;
  const attention = shape.attentionDims(B, T);
  const uColumns: Partial<Record<L, number>> = {};
  let uWidth = 0;
  for (const name of shape.linears) {
    const r = o.rank(name);
    if (r <= 0) continue;
    uColumns[name] = uWidth;
    uWidth += r;
  }
  // One work list per gradient group, shared by every layer (their adapters sit at one stride), 256-aligned.
  // Their token split's workspace is one buffer for every dispatch (they run one after another): the largest
  // a group needs, or a member alone (gradients.ts's list per member, for adapters that do not line up).
  let gradWords = 0;
  let workspaceWords = 0;
  const gradTableOffsets = shape.gradientGroups.map(({ kind, members }) => {
    const shapes = members
      .filter(([name]) => o.rank(name) > 0)
      .map(([name]) => {
        const { inFeatures, outFeatures } = shape.linearShape(name);
        return { cols: kind === 'dA' ? inFeatures : outFeatures, r: o.rank(name) };
      });
    if (shapes.length === 0) return -1;
    for (const list of [shapes, ...shapes.map((q) => [q])]) {
      workspaceWords = Math.max(workspaceWords, loraGradsSplit(list, N, o.gradChunkTokens).workspaceWords);
    }
    const at = gradWords;
    gradWords = Math.ceil((gradWords + loraGradsTableWords(shapes)) / 64) * 64;
    return at;
  });
  const ce = headPlan(o.limits, { N, C, V }, o.dtype);
  return {
    input: act('(N, C)', N * C),
    block: { ...shape.blockTable(B, T), lse: f32('(B, H, T)', B * attention.heads * T) },
    u: uWidth > 0 ? f32('(N, Σr)', N * uWidth) : null,
    uColumns,
    uWidth,
    gradTableOffsets,
    norm: shape.normTable(N),
    grads: shape.gradsTable(B, T),
    step: {
      tokens: { shape: '(N)', elements: N, type: 'u32' },
      targets: { shape: '(N)', elements: N, type: 'i32' },
      embedErrors: { shape: '(3)', elements: EMBEDDING_ERROR_WORDS, type: 'u32' },
      xFinal: act('(N, C)', N * C),
      xnFinal: act('(N, C)', N * C),
      loss: f32('(1)', 1),
      losses: f32('(N)', N),
      ceLse: f32('(N)', N),
      ceScratch: f32(`(N, ${ce.chunk}) + (N, 3)`, ce.scratchBytes / 4),
      ceGrad: f32('(2, N, C)', ce.gradScratchBytes / 4),
      dResidual: act('(N, C)', N * C),
      dNormed: act('(N, C)', N * C),
      // The attention backward's scratch: delta, and on the spill path dS (B, H, T, T), one for all layers.
      delta: attentionScratch(attention, o.limits),
      loraV: f32('(N, Σr)', N * Math.max(1, uWidth)),
      gradTables: { shape: '(gradient work lists)', elements: Math.max(1, gradWords), type: 'u32' },
      gradWorkspace: f32('(chunks, Σ cols·r)', Math.max(1, workspaceWords)),
      rng: { shape: '(1)', elements: 1, type: 'u32' },
    },
  };
}

function attentionScratch(dims: AttentionDims, limits: BindingLimits): ActEntry {
  const mode = attentionBackwardMode(dims, limits.maxStorageBufferBindingSize);
  const shape = mode === 'spill' ? '(B, H, T) + (B, H, T, T)' : '(B, H, T)';
  return f32(shape, attentionDeltaBytes(dims, mode) / 4);
}

/**
 * The head's chunked cross-entropy plan. When no chunk fits the device, the default chunk: its logits then
 * exceed one binding, and the memory check names that buffer instead of failing without an account.
 */
function headPlan(limits: BindingLimits, dims: { N: number; C: number; V: number }, dtype: ScalarType) {
  try {
    return crossEntropyPlan({ limits }, dims, dtype);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    const unbounded = { ...limits, maxStorageBufferBindingSize: Infinity, maxBufferSize: Infinity };
    return crossEntropyPlan({ limits: unbounded }, dims, dtype);
  }
}

/** Bytes the arena allocates for an entry: rounded up to 4, at least 4. */
export function entryBytes(entry: ActEntry, dtype: ScalarType): number {
  const bytes = entry.elements * (entry.type === 'act' && dtype === 'f16' ? 2 : 4);
  return Math.max(4, Math.ceil(bytes / 4) * 4);
}

/** Allocates one buffer per entry of `table`, named prefix + key. */
export function allocateTable<T>(
  table: EntryTable<T>,
  prefix: string,
  dtype: ScalarType,
  alloc: (name: string, bytes: number) => GPUBuffer,
): { [K in keyof T]: GPUBuffer } {
  const out: Partial<Record<keyof T, GPUBuffer>> = {};
  for (const key of Object.keys(table) as (keyof T & string)[]) {
    out[key] = alloc(`${prefix}${key}`, entryBytes(table[key], dtype));
  }
  return out as { [K in keyof T]: GPUBuffer };
}

/** One row of a memory account: `count` buffers of `bytes` each. */
export interface MemoryItem {
  name: string;
  /** Shape in words, e.g. '(N, C)'. */
  shape: string;
  /** Bytes of one buffer. */
  bytes: number;
  count: number;
}

/**
 * The table as the arena will hold it: per layer, shared, or once. `adaptedLayers` counts the layers with any
 * adapter (each gets its own u unless recomputing).
 */
export function tableItems<L extends string, Block extends BlockBuffers<L>, Norm, Grads>(
  table: TrainingTable<L, Block, Norm, Grads>,
  o: { layers: number; recompute: boolean; dtype: ScalarType; adaptedLayers: number },
): MemoryItem[] {
  const item = (name: string, entry: ActEntry, count: number): MemoryItem => ({
    name,
    shape: entry.shape,
    bytes: entryBytes(entry, o.dtype),
    count,
  });
  const blockCount = o.recompute ? 1 : o.layers;
  const blockName = (key: string) => (o.recompute ? `block.${key} (recompute workspace)` : key);
  const items = [item('x (block input)', table.input, o.layers)];
  for (const [key, entry] of Object.entries<ActEntry>(table.block)) {
    items.push(item(blockName(key), entry, blockCount));
  }
  const uCount = o.recompute ? Math.min(1, o.adaptedLayers) : o.adaptedLayers;
  if (table.u && uCount > 0) items.push(item(blockName('u'), table.u, uCount));
  for (const part of [table.norm, table.grads, table.step]) {
    for (const [key, entry] of Object.entries<ActEntry>(part)) items.push(item(key, entry, 1));
  }
  return items;
}
