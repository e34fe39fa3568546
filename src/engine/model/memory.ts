// Memory of a LoRA training step on `spec` at (batch B, seq T), before loading: what will be allocated, buffer
// by buffer, and whether each buffer fits the device's binding limits. Nothing here is a separate guess:
//   weights      every checkpoint tensor as loadModel uploads it (tied embeddings once), storage precision;
//   activations  the family's activation table (family.ts), as createActivations allocates it;
//   lora         the flat LoRA buffer (lora/init.ts layout: A, B per adapted module, 256-byte aligned) for the
//                parameters, their gradients and the optimizer's moments, f32, and the optimizer's segments;
//   scratch      the trainer's own: staged ids and targets of every micro-batch, the optimizer step, the
//                grad-norm partials and the step's metrics.
// Not counted: uniform buffers and pipelines (small), the KV cache of generation, the browser's own overhead.
// Every entry is its own buffer, so `largestBuffer` is what must fit maxStorageBufferBindingSize.

import { CONTROL, GRADNORM_PARTIALS_BYTES } from '../kernels/gradnorm.ts';
import { ADAMW_STEP_BYTES } from '../kernels/optimizer.ts';
import { EMBEDDING_ERROR_WORDS } from '../kernels/embedding.ts';
import { resolveTargets, type AdaptedModule, type LoraConfig } from '../lora/config.ts';
import { loraLayout, optimizerSegments } from '../lora/init.ts';
import type { ModelSpec } from './config.ts';
import {
  DEFAULT_BINDING_LIMITS,
  tableItems,
  trainingTable,
  type AnyFamilyShape,
  type BindingLimits,
  type MemoryItem,
} from './family.ts';
import { gemma3Dims, gemma3Shape } from './gemma3-shape.ts';
import { gpt2Dims, gpt2Shape } from './gpt2-shape.ts';
import { llamaDims, llamaShape } from './llama-shape.ts';
import { listWeights, weightNames } from './weights.ts';

export type { MemoryItem } from './family.ts';

export type StoragePrecision = 'f16' | 'f32';

/** The trainer's metrics readback: [loss f32, grad-norm control words, embedding error words]. */
export const STEP_METRICS_BYTES = 4 + CONTROL.bytes + 4 * EMBEDDING_ERROR_WORDS;

/** The adapter as memory sees it. */
export interface LoraOptions {
  rank: number;
  /** PEFT target_modules (suffixes of module paths, e.g. 'q_proj', GPT-2's 'c_proj' = both) or 'all-linear'. */
  targets: LoraConfig['targets'];
  /** LoRA dropout probability (masks are recomputed in the kernels: no memory of their own). Default 0. */
  dropout?: number;
}

export interface MemoryOptions {
  batch: number;
  seq: number;
  /** Storage of base weights and activations; accumulations are f32 either way. */
  precision: StoragePrecision;
  lora?: LoraOptions;
  /** Keep only each block's input and recompute the rest during the backward (one block's worth live). */
  recompute?: boolean;
  /** Micro-batches per optimizer step (the trainer stages all their ids at once). Default 1. */
  accum?: number;
  /** Optimizer moments per LoRA parameter (see `optimizerMoments`). Default 2 (AdamW). */
  moments?: number;
  /** The device's limits, which size the cross-entropy chunk. Default: WebGPU's defaults. */
  limits?: BindingLimits;
  /** Tokens per chunk of the LoRA gradients' token split (sizes its workspace). Default: the kernel's rule. */
  gradChunkTokens?: number;
}

export interface MemorySection {
  bytes: number;
  items: MemoryItem[];
}

export interface MemoryEstimate {
  parameters: number;
  loraParameters: number;
  weights: MemorySection;
  activations: MemorySection;
  lora: MemorySection;
  scratch: MemorySection;
  largestBuffer: { name: string; bytes: number };
  totalBytes: number;
}

const bytesOf = (p: StoragePrecision | 'bf16') => (p === 'f32' ? 4 : 2);
/** What the arena allocates for `bytes`: a multiple of 4, at least 4. */
const arenaBytes = (bytes: number) => Math.max(4, Math.ceil(bytes / 4) * 4);

function section(items: MemoryItem[]): MemorySection {
  return { bytes: items.reduce((s, i) => s + i.bytes * i.count, 0), items };
}

/** Moments the optimizer keeps per parameter: AdamW m and v; SGD its momentum buffer when it has one. */
export function optimizerMoments(o: { optimizer: 'adamw' | 'sgd'; momentum?: number }): number {
  return o.optimizer === 'adamw' ? 2 : (o.momentum ?? 0) > 0 ? 1 : 0;
}

/** The family's shape, from the config. The one place a new family is looked up by name. */
export function familyShape(spec: ModelSpec): AnyFamilyShape {
  if (spec.family === 'gpt2') return gpt2Shape(gpt2Dims(spec));
  if (spec.family === 'gemma3') return gemma3Shape(gemma3Dims(spec));
  return llamaShape(llamaDims(spec));
}

/** Base parameters of the model (tied embeddings counted once). */
export function parameterCount(spec: ModelSpec): number {
  return listWeights(weightNames(spec)).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
}

export function weightBytes(spec: ModelSpec, precision: StoragePrecision | 'bf16'): number {
  return parameterCount(spec) * bytesOf(precision);
}

/** The full LoRA config `resolveTargets` validates; alpha and rsLoRA do not change memory. */
function loraConfig(lora: LoraOptions): LoraConfig {
  return { r: lora.rank, alpha: 1, dropout: lora.dropout ?? 0, targets: lora.targets, rslora: false };
}

/** LoRA parameters (A: r × in, B: out × r per adapted module). Throws naming a target that matches nothing. */
export function loraParameterCount(spec: ModelSpec, lora: LoraOptions): number {
  const modules = resolveTargets(loraConfig(lora), spec);
  return modules.reduce((n, m) => n + lora.rank * (m.inFeatures + m.outFeatures), 0);
}

function checkOptions(spec: ModelSpec, opts: MemoryOptions): void {
  for (const [k, v] of Object.entries({ batch: opts.batch, seq: opts.seq, accum: opts.accum ?? 1 })) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${k}: must be a positive integer, got ${v}`);
  }
  if (opts.seq > spec.maxPositions) {
    throw new Error(
      `seq: ${opts.seq} is longer than the ${spec.maxPositions} positions of ${spec.architecture}`,
    );
  }
}

/** Every checkpoint tensor as loadModel uploads it. */
function weightBuffers(spec: ModelSpec, precision: StoragePrecision): MemoryItem[] {
  return listWeights(weightNames(spec)).map((t) => ({
    name: t.name,
    shape: `(${t.shape.join(', ')})`,
    bytes: arenaBytes(t.shape.reduce((a, b) => a * b, 1) * bytesOf(precision)),
    count: 1,
  }));
}

/** The trainer's flat LoRA buffers (parameters, gradients, the optimizer's moments) and segment table. */
function loraBuffers(modules: readonly AdaptedModule[], rank: number, moments: number): MemoryItem[] {
  const layout = loraLayout(modules, rank);
  const flat = (name: string): MemoryItem => ({
    name,
    shape: `(${layout.totalElements}) f32`,
    bytes: layout.totalBytes,
    count: 1,
  });
  const items = [flat(`lora.params (A, B of ${modules.length} modules)`), flat('lora.grads')];
  for (let i = 0; i < moments; i++) items.push(flat(`lora.moment${i}`));
  const segments = optimizerSegments(layout).length;
  items.push({ name: 'optimizer.segments', shape: `(${segments}, 4) u32`, bytes: 16 * segments, count: 1 });
  return items;
}

export function estimateMemory(spec: ModelSpec, opts: MemoryOptions): MemoryEstimate {
  checkOptions(spec, opts);
  const { batch: B, seq: T, precision } = opts;
  const N = B * T;
  const shape = familyShape(spec);
  const modules = opts.lora ? resolveTargets(loraConfig(opts.lora), spec) : [];
  const adaptedPaths = new Set(modules.map((m) => m.path));
  const layers = Array.from({ length: spec.layers }, (_, l) => l);
  const adaptedAt = (l: number, name: string) => adaptedPaths.has(shape.modulePath(l, name));
  const adaptedLayers = (name: string) => layers.filter((l) => adaptedAt(l, name)).length;

  const weightItems = weightBuffers(spec, precision);

  const table = trainingTable(shape, {
    batch: B,
    seq: T,
    dtype: precision,
    rank: (name) => (opts.lora && adaptedLayers(name) > 0 ? opts.lora.rank : 0),
    limits: opts.limits ?? DEFAULT_BINDING_LIMITS,
    gradChunkTokens: opts.gradChunkTokens,
  });
  const recompute = opts.recompute ?? false;
  const activationItems = tableItems(table, {
    layers: spec.layers,
    recompute,
    dtype: precision,
    adaptedLayers: layers.filter((l) => shape.linears.some((name) => adaptedAt(l, name))).length,
  });

  const loraItems = opts.lora ? loraBuffers(modules, opts.lora.rank, opts.moments ?? 2) : [];

  const accum = opts.accum ?? 1;
  const scratchItems: MemoryItem[] = [
    { name: 'tokens.step', shape: '(accum, N) u32', bytes: 4 * N * accum, count: 1 },
    { name: 'targets.step', shape: '(accum, N) i32', bytes: 4 * N * accum, count: 1 },
    { name: 'optimizer.step', shape: '(4) u32', bytes: ADAMW_STEP_BYTES, count: 1 },
    { name: 'step.control', shape: `(${CONTROL.words}) u32`, bytes: CONTROL.bytes, count: 1 },
    { name: 'gradnorm.partials', shape: 'partial sums', bytes: GRADNORM_PARTIALS_BYTES, count: 1 },
    { name: 'step.metrics', shape: 'loss, control, errors', bytes: STEP_METRICS_BYTES, count: 1 },
  ];

  const sections = {
    weights: section(weightItems),
    activations: section(activationItems),
    lora: section(loraItems),
    scratch: section(scratchItems),
  };
  let largestBuffer = { name: '', bytes: 0 };
  for (const i of [...weightItems, ...activationItems, ...loraItems, ...scratchItems]) {
    if (i.bytes > largestBuffer.bytes) largestBuffer = { name: `${i.name} ${i.shape}`, bytes: i.bytes };
  }
  return {
    parameters: parameterCount(spec),
    loraParameters: opts.lora ? loraParameterCount(spec, opts.lora) : 0,
    ...sections,
    largestBuffer,
    totalBytes: Object.values(sections).reduce((s, x) => s + x.bytes, 0),
  };
}

export interface DeviceMemoryLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  /** Total the caller is willing to allocate (e.g. a share of what the GPU has); omitted: not checked. */
  budgetBytes?: number;
}

export function formatBytes(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(2)} GiB`;
  if (n >= 2 ** 20) return `${(n / 2 ** 20).toFixed(1)} MiB`;
  if (n >= 2 ** 10) return `${(n / 2 ** 10).toFixed(1)} KiB`;
  return `${n} B`;
}

/** Everything in `estimate` that does not fit `limits`, one sentence each (empty when it all fits). */
export function memoryProblems(estimate: MemoryEstimate, limits: DeviceMemoryLimits): string[] {
  const problems: string[] = [];
  const all = [
    ...estimate.weights.items.map((i) => ['weight', i] as const),
    ...estimate.activations.items.map((i) => ['activation', i] as const),
    ...estimate.lora.items.map((i) => ['LoRA buffer', i] as const),
    ...estimate.scratch.items.map((i) => ['buffer', i] as const),
  ];
  const binding = Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize);
  const which =
    binding === limits.maxStorageBufferBindingSize ? 'maxStorageBufferBindingSize' : 'maxBufferSize';
  for (const [kind, i] of all) {
    if (i.bytes > binding) {
      problems.push(
        `${kind} '${i.name}' ${i.shape} needs ${formatBytes(i.bytes)} in one buffer; the device's ${which} is ${formatBytes(binding)}`,
      );
    }
  }
  if (limits.budgetBytes !== undefined && estimate.totalBytes > limits.budgetBytes) {
    const parts = (['weights', 'activations', 'lora', 'scratch'] as const)
      .map((k) => `${k} ${formatBytes(estimate[k].bytes)}`)
      .join(', ');
    problems.push(
      `the step needs ${formatBytes(estimate.totalBytes)} (${parts}), over the budget of ${formatBytes(limits.budgetBytes)}`,
    );
  }
  return problems;
}

/** Throws an Error listing everything that does not fit. */
export function checkMemoryFits(estimate: MemoryEstimate, limits: DeviceMemoryLimits): void {
  const problems = memoryProblems(estimate, limits);
  if (problems.length > 0) throw new Error(`does not fit this device: ${problems.join('; ')}`);
}
