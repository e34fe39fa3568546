// Grouped LoRA weight gradients: the dA and dB of every adapter of a block phase in ONE dispatch
// (shaders/lora-grads.wgsl), instead of a split-K matmul pair (partial + reduce) per gradient.
//
// A problem is one adapter's gradient, a tall-skinny product over the N tokens, ADDED into the flat f32
// gradient buffer G (gradient accumulation across micro-batches, as linear.ts's matmul path does):
//   dB: G[off .. off + out·r) as (out, r) += s · X(N, out)ᵀ · R[:, col : col + r]       X = dy, R holds u
//   dA: G[off .. off + r·in)  as (r, in)  += s · R[:, col : col + r]ᵀ · mask(X(N, in))   X = x,  R holds v
// X is one of up to 4 input tensors (f16 or f32, all of one type); R (N, rankStride) f32 holds several adapters'
// u (or v) side by side, as the stacked x·[A_q; A_k; A_v]ᵀ writes them. mask is LoRA dropout on x, the counter
// hash of shaders/matmul-tiled.wgsl's mask_b, bit for bit: element (t, i) kept iff hash(seed, rng[0] +
// stepOffset, stream, t·in + i) ≥ p·2³², kept values × 1/(1 − p).
//
// Token split: one workgroup per output tile looping over all N tokens leaves a large GPU with few workgroups
// and long serial loops (latency-bound). So the plan cuts the tokens into chunks (`loraGradsSplit`: at least
// LORA_GRADS_MIN_CHUNK_TOKENS each, enough chunks for ~LORA_GRADS_TARGET_WORKGROUPS workgroups); each
// (tile, chunk) workgroup stores its partial tile in an f32 workspace, and a small reduce dispatch adds the
// chunks in a fixed order and s·sum into G. One chunk (small N) is today's single dispatch, adding into G.
//
// Use: a plan per (problem list, N), pure host (`loraGradsPlan`); its table uploaded once
// (`uploadLoraGrads`); then every micro-batch `loraGrads(rec, table, bindings)` records one dispatch (two when
// split) whose uniforms and bind groups are the same step after step.

import {
  bytesPerElement,
  grid1d,
  selectSections,
  uniforms,
  type BufferArena,
  type BufferBinding,
  type CommandRecorder,
  type DispatchCost,
  type Gpu,
  type Program,
  type ScalarType,
  type TensorRef,
} from '../gpu/index.ts';
import { dropoutThreshold } from './dropout.ts';
import dropoutHashWgsl from '../../../shaders/dropout-hash.wgsl?raw';
import loraGradsWgsl from '../../../shaders/lora-grads.wgsl?raw';
import loraGradsReduceWgsl from '../../../shaders/lora-grads-reduce.wgsl?raw';

/** Input tensors one dispatch can read: with R, G, the table and rng, the 8 storage bindings WebGPU allows. */
export const LORA_GRADS_MAX_INPUTS = 4;
/** Threads per workgroup along the columns (4 columns each) and K slices: a tile is 64 columns wide. */
const COL_THREADS = 16;
const SLICES = 16;
const TILE_COLS = 4 * COL_THREADS;
/** Ranks one thread accumulates at most (16 × 4 columns = 64 f32 accumulators); larger r takes more tiles. */
const MAX_TILE_RANKS = 16;
/** Words per problem record in the table (the shader's PROBLEM_WORDS); a work item is 3 words. */
const PROBLEM_WORDS = 13;
/**
 * The split's rule: chunks of at least this many tokens (16 per slice: shorter loops would spend more on the
 * in-workgroup sum and the workspace than they save), and as many as it takes to reach the target workgroup
 * count (a few waves on a 132-SM GPU), never more.
 */
export const LORA_GRADS_MIN_CHUNK_TOKENS = 256;
export const LORA_GRADS_TARGET_WORKGROUPS = 1024;
/** Threads per workgroup of the reduce (one per output). */
const REDUCE_THREADS = 256;

export type LoraGradKind = 'dA' | 'dB';

export interface LoraGradProblem {
  kind: LoraGradKind;
  /** Index into the call's `inputs` of X: dy (N, out) for dB, x (N, in) for dA. */
  input: number;
  /** X's columns: out for dB, in for dA. */
  cols: number;
  r: number;
  /** First column of this adapter's u (dB) or v (dA) in R. */
  rankCol: number;
  /** Element offset of the gradient, (out, r) for dB or (r, in) for dA, in G. */
  gradOffset: number;
  /** The adapter's scaling s. */
  scale: number;
  /** X[t, c] = input[t·inputStride + inputCol + c]; defaults cols and 0 (X is the whole input). */
  inputStride?: number;
  inputCol?: number;
  /** LoRA dropout on x (dA only): the adapter's probability, seed and stream, as its forward used them. */
  dropout?: { p: number; seed: number; stream: number };
}

export interface LoraGradsPlanOptions {
  /** R's row stride in elements (the width of the stacked u or v buffer). */
  rankStride: number;
  /**
   * Tokens per chunk of the token split (≥ 1; N or more: no split). Default: `loraGradsSplit`'s rule. Tests
   * and benches set it; whoever allocates the workspace must size it with the same value.
   */
  chunkTokens?: number;
}

/** Everything the dispatch needs that does not change per step: the work list and the compile-time choices. */
export interface LoraGradsPlan {
  readonly problems: readonly LoraGradProblem[];
  readonly tokens: number;
  readonly rankStride: number;
  /** Problem records, then the work items (problem, first column, first rank): u32 words. */
  readonly table: Uint32Array<ArrayBuffer>;
  /** Work items = output tiles; a dispatch has items × chunks workgroups. */
  readonly items: number;
  /** Token chunks (1: no split, the dispatch adds into G) and tokens per chunk (the last may be shorter). */
  readonly chunks: number;
  readonly chunkTokens: number;
  /** Σ cols·r: one chunk's row of the workspace. */
  readonly outputs: number;
  /** f32 words of workspace the call needs: chunks × outputs when split, else 0. */
  readonly workspaceWords: number;
  /** Rank vec4s per thread (the shader's RV): ⌈max r / 4⌉, at most 4. */
  readonly rankVecs: number;
  /** Whether X and R are read as vec4 (every layout a multiple of 4). */
  readonly vecX: boolean;
  readonly vecR: boolean;
  /** Whether some problem has dropout: the dispatch then needs `rng`. */
  readonly masked: boolean;
  /** Inputs the problems read (highest index + 1). */
  readonly inputsRead: number;
  /** G elements the problems reach: max(gradOffset + cols·r). */
  readonly gradExtent: number;
}

const isU32 = (n: number) => Number.isInteger(n) && n >= 0 && n <= 0xffffffff;

function checkProblem(q: LoraGradProblem, i: number, tokens: number, rankStride: number): void {
  const name = `loraGradsPlan: problem ${i} (${q.kind})`;
  if (q.kind !== 'dA' && q.kind !== 'dB') throw new RangeError(`${name}: kind must be 'dA' or 'dB'`);
  const whole = { input: q.input, cols: q.cols, r: q.r, rankCol: q.rankCol, gradOffset: q.gradOffset };
  for (const [field, value] of Object.entries(whole)) {
    if (!isU32(value)) throw new RangeError(`${name}: ${field} must be a whole number ≥ 0, got ${value}`);
  }
  if (q.input >= LORA_GRADS_MAX_INPUTS) {
    throw new RangeError(`${name}: input ${q.input}, but a dispatch reads at most ${LORA_GRADS_MAX_INPUTS}`);
  }
  if (q.cols < 1 || q.r < 1) throw new RangeError(`${name}: cols and r must be ≥ 1`);
  if (q.rankCol + q.r > rankStride) {
    throw new RangeError(`${name}: ranks ${q.rankCol}..${q.rankCol + q.r} run past R’s row (${rankStride})`);
  }
  const stride = q.inputStride ?? q.cols;
  const col = q.inputCol ?? 0;
  if (!isU32(stride) || !isU32(col) || col + q.cols > stride) {
    throw new RangeError(`${name}: columns ${col}..${col + q.cols} run past the input’s row (${stride})`);
  }
  if (!Number.isFinite(q.scale)) throw new RangeError(`${name}: scale must be finite, got ${q.scale}`);
  // Indices in the shader are u32: t·stride + col + c, and the dropout index t·cols + c.
  if (tokens * Math.max(stride, rankStride) > 0xffffffff) {
    throw new RangeError(`${name}: ${tokens} rows of ${Math.max(stride, rankStride)} exceed u32 indexing`);
  }
  if (q.gradOffset + q.cols * q.r > 0xffffffff) throw new RangeError(`${name}: gradient past u32 indexing`);
  const d = q.dropout;
  if (!d) return;
  if (q.kind !== 'dA') throw new RangeError(`${name}: dropout applies to x, so to dA only`);
  if (!(d.p >= 0 && d.p < 1)) throw new RangeError(`${name}: dropout p must be in [0, 1), got ${d.p}`);
  if (!isU32(d.seed) || !isU32(d.stream))
    throw new RangeError(`${name}: dropout seed and stream must be u32`);
}

/** Problems must write disjoint ranges of G: each element is added to by exactly one workgroup. */
function checkDisjoint(problems: readonly LoraGradProblem[]): void {
  const ranges = problems
    .map((q, i) => ({ i, from: q.gradOffset, to: q.gradOffset + q.cols * q.r }))
    .sort((a, b) => a.from - b.from);
  for (let k = 1; k < ranges.length; k++) {
    const [prev, next] = [ranges[k - 1], ranges[k]];
    if (next.from < prev.to) {
      throw new RangeError(
        `loraGradsPlan: problems ${prev.i} and ${next.i} write overlapping ranges of G ` +
          `(${prev.from}..${prev.to} and ${next.from}..${next.to})`,
      );
    }
  }
}

const f32Bits = (value: number) => new Uint32Array(Float32Array.of(value).buffer)[0];

/** One problem's record, in the order of the shader's `Problem` struct. */
function problemWords(q: LoraGradProblem, wsOff: number): number[] {
  const p = q.dropout?.p ?? 0;
  const threshold = p > 0 ? dropoutThreshold(p) : 0;
  // Kept values carry 1/(1 − p): applied once to the sum rather than to every element.
  const scale = threshold > 0 ? q.scale / (1 - p) : q.scale;
  return [
    q.kind === 'dA' ? 1 : 0,
    q.input,
    q.cols,
    q.r,
    q.rankCol,
    q.gradOffset,
    q.inputStride ?? q.cols,
    q.inputCol ?? 0,
    f32Bits(scale),
    threshold > 0 ? q.dropout!.seed : 0,
    threshold,
    threshold > 0 ? q.dropout!.stream : 0,
    wsOff,
  ];
}

/** Rank vec4s per thread for problems of these ranks: ⌈max r / 4⌉, at most MAX_TILE_RANKS / 4. */
const rankVecsOf = (shapes: readonly { r: number }[]) =>
  Math.ceil(Math.min(Math.max(1, ...shapes.map((q) => q.r)), MAX_TILE_RANKS) / 4);

/** Output tiles of problems of these shapes (the plan's work items). */
function tileCount(shapes: readonly { cols: number; r: number }[]): number {
  const tileRanks = 4 * rankVecsOf(shapes);
  return shapes.reduce((n, q) => n + Math.ceil(q.r / tileRanks) * Math.ceil(q.cols / TILE_COLS), 0);
}

/** How a plan of problems of these shapes at N tokens splits the tokens, and the workspace it then needs. */
export interface LoraGradsSplit {
  chunks: number;
  chunkTokens: number;
  /** Σ cols·r. */
  outputs: number;
  /** f32 words: chunks × outputs when split, else 0. */
  workspaceWords: number;
}

/**
 * The token split of problems of these shapes at N tokens: `chunkTokens` when given, else the rule — as many
 * chunks of ≥ LORA_GRADS_MIN_CHUNK_TOKENS tokens as bring the dispatch to LORA_GRADS_TARGET_WORKGROUPS
 * workgroups (tiles × chunks), a chunk a multiple of the 16 slices. N < 2·256: one chunk (no split).
 */
export function loraGradsSplit(
  shapes: readonly { cols: number; r: number }[],
  tokens: number,
  chunkTokens?: number,
): LoraGradsSplit {
  if (chunkTokens !== undefined && !(Number.isInteger(chunkTokens) && chunkTokens >= 1)) {
    throw new RangeError(`loraGradsPlan: chunkTokens must be a whole number ≥ 1, got ${chunkTokens}`);
  }
  const tiles = tileCount(shapes);
  let size = chunkTokens;
  if (size === undefined) {
    const wanted = Math.ceil(LORA_GRADS_TARGET_WORKGROUPS / Math.max(1, tiles));
    const chunks = Math.max(1, Math.min(Math.floor(tokens / LORA_GRADS_MIN_CHUNK_TOKENS), wanted));
    size = Math.ceil(Math.ceil(tokens / chunks) / SLICES) * SLICES;
  }
  size = Math.min(size, tokens);
  const chunks = Math.ceil(tokens / size);
  const outputs = shapes.reduce((n, q) => n + q.cols * q.r, 0);
  return { chunks, chunkTokens: size, outputs, workspaceWords: chunks > 1 ? chunks * outputs : 0 };
}

/**
 * The work list of a problem list at N tokens (pure host): one item per tile of 64 columns × up to 16 ranks of
 * each problem, so each output element belongs to one workgroup. Build once per (problems, N, R's layout).
 */
export function loraGradsPlan(
  problems: readonly LoraGradProblem[],
  tokens: number,
  options: LoraGradsPlanOptions,
): LoraGradsPlan {
  const { rankStride } = options;
  if (!Number.isInteger(tokens) || tokens < 1) {
    throw new RangeError(`loraGradsPlan: tokens must be a whole number ≥ 1, got ${tokens}`);
  }
  if (!Number.isInteger(rankStride) || rankStride < 1) {
    throw new RangeError(`loraGradsPlan: rankStride must be a whole number ≥ 1, got ${rankStride}`);
  }
  problems.forEach((q, i) => checkProblem(q, i, tokens, rankStride));
  checkDisjoint(problems);
  const split = loraGradsSplit(problems, tokens, options.chunkTokens);
  if (split.workspaceWords > 0xffffffff) {
    throw new RangeError(`loraGradsPlan: a workspace of ${split.workspaceWords} f32 exceeds u32 indexing`);
  }
  const rankVecs = rankVecsOf(problems);
  const tileRanks = 4 * rankVecs;
  let wsOff = 0;
  const words: number[] = problems.flatMap((q) => {
    const record = problemWords(q, wsOff);
    wsOff += q.cols * q.r;
    return record;
  });
  let items = 0;
  problems.forEach((q, i) => {
    for (let j0 = 0; j0 < q.r; j0 += tileRanks) {
      for (let c0 = 0; c0 < q.cols; c0 += TILE_COLS) {
        words.push(i, c0, j0);
        items++;
      }
    }
  });
  const by4 = (n: number) => n % 4 === 0;
  return {
    // A copy: the table is made from these values, so later edits of the caller's objects must not reach them.
    problems: problems.map((q) => ({ ...q, dropout: q.dropout && { ...q.dropout } })),
    tokens,
    rankStride,
    table: Uint32Array.from(words.length > 0 ? words : [0]),
    items,
    ...split,
    rankVecs,
    vecX: problems.every((q) => [q.cols, q.inputStride ?? q.cols, q.inputCol ?? 0].every(by4)),
    vecR: by4(rankStride) && problems.every((q) => by4(q.rankCol)),
    masked: problems.some((q) => (q.dropout?.p ?? 0) > 0),
    inputsRead: Math.max(0, ...problems.map((q) => q.input + 1)),
    gradExtent: Math.max(0, ...problems.map((q) => q.gradOffset + q.cols * q.r)),
  };
}

/** A plan with its table on the GPU: made once per (model, batch shape), read by every step's dispatch. */
export interface LoraGradsTable {
  readonly plan: LoraGradsPlan;
  /** The table's words: a buffer, or a 256-byte aligned range of one (several plans sharing a buffer). */
  readonly buffer: BufferBinding;
}

/** u32 words of a plan's table for problems of these shapes (what `loraGradsPlan(...).table` holds). */
export function loraGradsTableWords(shapes: readonly { cols: number; r: number }[]): number {
  if (shapes.length === 0) return 1;
  return PROBLEM_WORDS * shapes.length + 3 * tileCount(shapes);
}

/** Uploads the plan's table (into `arena` when given, so memory counts include it). */
export function uploadLoraGrads(
  gpu: Gpu,
  plan: LoraGradsPlan,
  arena?: BufferArena,
): LoraGradsTable & { buffer: GPUBuffer } {
  if (arena) return { plan, buffer: arena.upload('lora-grads.table', plan.table) };
  const buffer = gpu.device.createBuffer({
    label: 'lora-grads.table',
    size: plan.table.byteLength,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  gpu.device.queue.writeBuffer(buffer, 0, plan.table);
  return { plan, buffer };
}

export interface LoraGradsBindings {
  /** X tensors (N rows), all f16 or all f32; problems name them by index. At most 4. */
  inputs: readonly TensorRef[];
  /** R (N, rankStride) f32: u for dB problems, v for dA. */
  ranks: BufferBinding;
  /** The flat f32 gradient buffer G, added to. */
  grads: BufferBinding;
  /** Where the dropout step lives (word 0) and the micro-batch's offset; needed when the plan has dropout. */
  rng?: { buffer: BufferBinding; stepOffset: number };
  /**
   * Added to every problem's gradOffset: one plan serves every layer of a model whose layers hold their
   * adapters' gradients at the same relative offsets. Default 0.
   */
  gradBase?: number;
  /** Added to every problem's dropout stream, for the same reason (a layer's streams follow the last's). */
  streamBase?: number;
  /**
   * The split's f32 workspace (at least `plan.workspaceWords`), needed when `plan.chunks > 1`: overwritten by
   * every call, so one workspace serves every dispatch of a step (they run one after another).
   */
  workspace?: BufferBinding;
}

/** FLOPs and bytes by the kernel's own count: each X, each R block and each gradient (read + write) once. */
export function loraGradsCost(plan: LoraGradsPlan, dtype: ScalarType): DispatchCost {
  let flops = 0;
  let bytes = 0;
  for (const q of plan.problems) {
    flops += 2 * plan.tokens * q.cols * q.r;
    bytes += plan.tokens * (q.cols * bytesPerElement(dtype) + 4 * q.r);
  }
  // Split: the chunks' partial tiles are written to the workspace (the reduce's cost counts G); else G.
  bytes += plan.chunks > 1 ? 4 * plan.workspaceWords : 2 * 4 * plan.outputs;
  return { flops, bytes };
}

/** The reduce of a split plan: every chunk's partial read and added, then G read and written. */
export function loraGradsReduceCost(plan: LoraGradsPlan): DispatchCost {
  return { flops: (plan.chunks + 1) * plan.outputs, bytes: 4 * plan.workspaceWords + 2 * 4 * plan.outputs };
}

const bindingBuffer = (b: BufferBinding): GPUBuffer => ('buffer' in b ? b.buffer : b);

function bindingBytes(b: BufferBinding): number {
  if (!('buffer' in b)) return b.size;
  return b.size ?? b.buffer.size - (b.offset ?? 0);
}

/** Every binding checked against the plan before anything is recorded, each error naming what is wrong. */
function checkBindings(plan: LoraGradsPlan, b: LoraGradsBindings): ScalarType {
  const { inputs } = b;
  if (inputs.length < 1 || inputs.length > LORA_GRADS_MAX_INPUTS) {
    throw new RangeError(
      `loraGrads: ${inputs.length} inputs given; a dispatch reads 1 to ${LORA_GRADS_MAX_INPUTS}`,
    );
  }
  if (plan.inputsRead > inputs.length) {
    const i = plan.problems.findIndex((q) => q.input >= inputs.length);
    throw new RangeError(
      `loraGrads: problem ${i} reads input ${plan.problems[i].input}, but ${inputs.length} inputs are given`,
    );
  }
  const dtype = inputs[0].dtype;
  if (dtype !== 'f16' && dtype !== 'f32')
    throw new RangeError(`loraGrads: inputs must be f16 or f32, got ${dtype}`);
  if (inputs.some((x) => x.dtype !== dtype))
    throw new RangeError('loraGrads: inputs must share one storage type');
  const N = plan.tokens;
  plan.problems.forEach((q, i) => {
    const needed = (N - 1) * (q.inputStride ?? q.cols) + (q.inputCol ?? 0) + q.cols;
    const have = bindingBytes(inputs[q.input].binding) / bytesPerElement(dtype);
    if (have < needed) {
      throw new RangeError(
        `loraGrads: problem ${i} reads ${needed} elements of input ${q.input}, which holds ${have}`,
      );
    }
  });
  const rankEnd = Math.max(
    0,
    ...plan.problems.map((q) => q.rankCol + (plan.vecR ? Math.ceil(q.r / 4) * 4 : q.r)),
  );
  const rankBytes = 4 * ((N - 1) * plan.rankStride + rankEnd);
  if (bindingBytes(b.ranks) < rankBytes) {
    throw new RangeError(`loraGrads: R must hold ${N} rows of ${plan.rankStride} f32 (${rankBytes} bytes)`);
  }
  const gradBase = b.gradBase ?? 0;
  if (!isU32(gradBase))
    throw new RangeError(`loraGrads: gradBase must be a whole number ≥ 0, got ${gradBase}`);
  if (bindingBytes(b.grads) < 4 * (gradBase + plan.gradExtent)) {
    throw new RangeError(
      `loraGrads: gradient offsets reach element ${gradBase + plan.gradExtent}, beyond G (${bindingBytes(b.grads) / 4} f32)`,
    );
  }
  const g = bindingBuffer(b.grads);
  if (g === bindingBuffer(b.ranks) || inputs.some((x) => bindingBuffer(x.binding) === g)) {
    throw new RangeError(
      'loraGrads: G must be a buffer of its own (it is written while R and the inputs are read)',
    );
  }
  if (plan.chunks > 1) {
    if (!b.workspace) {
      throw new Error(
        `loraGrads: the plan splits the tokens into ${plan.chunks} chunks, so the call needs \`workspace\``,
      );
    }
    const ws = bindingBuffer(b.workspace);
    if (bindingBytes(b.workspace) < 4 * plan.workspaceWords) {
      throw new RangeError(
        `loraGrads: the workspace must hold ${plan.workspaceWords} f32 (${plan.chunks} chunks × ${plan.outputs}), it holds ${bindingBytes(b.workspace) / 4}`,
      );
    }
    if ([g, bindingBuffer(b.ranks), ...inputs.map((x) => bindingBuffer(x.binding))].includes(ws)) {
      throw new RangeError(
        'loraGrads: the workspace must be a buffer of its own (G, R and the inputs are not)',
      );
    }
  }
  if (plan.masked && !b.rng) throw new Error('loraGrads: the plan has dropout, so the call needs `rng`');
  if (b.rng && !isU32(b.rng.stepOffset)) {
    throw new RangeError(`loraGrads: rng.stepOffset must be a u32, got ${b.rng.stepOffset}`);
  }
  return dtype;
}

/**
 * Compile-time choices beyond the plan's. `tokensPerTrip`: tokens a thread loads before it multiplies, so a GPU
 * has that many loads in flight per thread (latency hiding: a dispatch has few workgroups). 1 on software
 * drivers, where it only doubles LLVM's compile time; 2 elsewhere.
 */
export interface LoraGradsVariant {
  tokensPerTrip: 1 | 2;
}

export function defaultLoraGradsVariant(gpu: Gpu): LoraGradsVariant {
  return { tokensPerTrip: gpu.isSoftware ? 1 : 2 };
}

/**
 * The chunk size a model's plans use on this GPU at N tokens: `requested` when given; on a software driver N (no
 * split: its few CPU threads gain nothing from more workgroups, and the workspace and reduce cost up to ~15 % on
 * lavapipe); else undefined, the rule of `loraGradsSplit`.
 */
export function loraGradsChunkTokens(gpu: Gpu, tokens: number, requested?: number): number | undefined {
  return requested ?? (gpu.isSoftware ? tokens : undefined);
}

/** Programs by a key of all they are made from: the pipeline cache keys on the name, not the source. */
const programs = new Map<string, Program>();

function program(plan: LoraGradsPlan, dtype: ScalarType, variant: LoraGradsVariant): Program {
  const sections = {
    x: plan.vecX ? 'vec4' : 'scalar',
    r: plan.vecR ? 'vec4' : 'scalar',
    rng: plan.masked ? 'on' : 'off',
  };
  const name =
    `lora_grads.rv${plan.rankVecs}${plan.vecX ? '' : '.xs'}${plan.vecR ? '' : '.rs'}` +
    `${plan.masked ? '+mask' : ''}${variant.tokensPerTrip > 1 ? `.u${variant.tokensPerTrip}` : ''}`;
  const key = `${name}|${dtype}`;
  let made = programs.get(key);
  if (!made) {
    made = {
      name,
      source: `${selectSections(loraGradsWgsl, sections)}\n${dropoutHashWgsl}`,
      entryPoint: 'lora_grads',
      aliases: { in_t: dtype },
      consts: { CT: COL_THREADS, S: SLICES, RV: plan.rankVecs, U: variant.tokensPerTrip },
    };
    programs.set(key, made);
  }
  return made;
}

/**
 * Records ONE dispatch adding every problem's gradient into G (see the file comment). Same table and bindings
 * give the same uniforms and bind group: a step records nothing new after its first time.
 */
export function loraGrads(
  rec: CommandRecorder,
  table: LoraGradsTable,
  bindings: LoraGradsBindings,
  variant: LoraGradsVariant = defaultLoraGradsVariant(rec.gpu),
): void {
  const { plan } = table;
  const dtype = checkBindings(plan, bindings);
  if (variant.tokensPerTrip !== 1 && variant.tokensPerTrip !== 2) {
    throw new RangeError(`loraGrads: tokensPerTrip must be 1 or 2, got ${String(variant.tokensPerTrip)}`);
  }
  if (plan.items === 0) return;
  const { inputs, rng } = bindings;
  const split = plan.chunks > 1;
  const maxPerDim = rec.gpu.limits.maxComputeWorkgroupsPerDimension;
  // Unused input slots repeat the first input: bound read-only, never read.
  const x = Array.from({ length: LORA_GRADS_MAX_INPUTS }, (_, j) => (inputs[j] ?? inputs[0]).binding);
  rec.dispatch(program(plan, dtype, variant), {
    uniforms: uniforms()
      .u32(plan.tokens)
      .u32(plan.rankStride)
      .u32(plan.items)
      .u32(plan.problems.length * PROBLEM_WORDS)
      .u32(plan.masked ? rng!.stepOffset : 0) // unmasked: one uniform struct for every micro-batch
      .u32(split ? 0 : (bindings.gradBase ?? 0)) // split: the reduce adds the base; one struct for every layer
      .u32(plan.masked ? (bindings.streamBase ?? 0) : 0)
      .u32(plan.chunks)
      .u32(plan.chunkTokens)
      .u32(split ? plan.outputs : 0)
      .u32(0)
      .u32(0),
    buffers: [
      ...x,
      bindings.ranks,
      split ? bindings.workspace! : bindings.grads,
      table.buffer,
      plan.masked ? rng!.buffer : null,
    ],
    workgroups: grid1d(plan.items * plan.chunks, 1, maxPerDim),
    cost: loraGradsCost(plan, dtype),
  });
  if (!split) return;
  rec.dispatch(REDUCE_PROGRAM, {
    uniforms: uniforms()
      .u32(plan.outputs)
      .u32(plan.chunks)
      .u32(plan.problems.length)
      .u32(bindings.gradBase ?? 0),
    buffers: [bindings.workspace!, bindings.grads, table.buffer],
    workgroups: grid1d(plan.outputs, REDUCE_THREADS, maxPerDim),
    cost: loraGradsReduceCost(plan),
  });
}

const REDUCE_PROGRAM: Program = {
  name: 'lora_grads.reduce',
  source: loraGradsReduceWgsl,
  entryPoint: 'lora_grads_reduce',
  consts: { WG: REDUCE_THREADS },
};
