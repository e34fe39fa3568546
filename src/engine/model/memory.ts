// Memory estimate before loading: what a LoRA training step on `spec` at (batch B, seq T) will allocate,
// item by item, and whether each single buffer fits the device's binding limits. Counted here:
//   weights      every base parameter once (tied embeddings once), in the storage precision;
//   activations  what each block saves for its explicit backward (the list is in blockActivations below);
//   lora         A and B per target module and layer, with their gradients and AdamW's two moments, f32
//                (plus an f16 copy of A and B for the f16 matmuls);
//   scratch      gradient buffers live during the backward, the logits chunk, token ids and targets.
// Not counted: matmul split-K workspaces and uniform buffers (small), the KV cache of generation,
// the browser's own overhead. Each weight tensor, each per-layer activation slice and each logits chunk is
// assumed to be its own binding, so `largestBuffer` is what must fit maxStorageBufferBindingSize.

import type { ModelSpec } from './config.ts';
import { listWeights, weightNames } from './weights.ts';

export type StoragePrecision = 'f16' | 'f32';

export interface MemoryItem {
  name: string;
  /** Shape in words, e.g. '(B, T, C)'. */
  shape: string;
  /** Bytes of one buffer. */
  bytes: number;
  /** How many such buffers (layers, targets). */
  count: number;
}

export interface LoraOptions {
  rank: number;
  /**
   * PEFT target module names: q_proj k_proj v_proj o_proj gate_proj up_proj down_proj (llama, qwen2,
   * mistral); c_attn c_proj c_fc (gpt2; c_proj means both attn.c_proj and mlp.c_proj, as in PEFT).
   */
  targets: string[];
}

export interface MemoryOptions {
  batch: number;
  seq: number;
  /** Storage of base weights and activations; accumulations are f32 either way. */
  precision: StoragePrecision;
  lora?: LoraOptions;
  /** Tokens whose logits are materialised at once (chunked cross-entropy); default min(B·T, 1024). */
  logitsChunk?: number;
  /** Keep only each block's input and recompute the rest during the backward (one block's worth live). */
  recompute?: boolean;
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
const F32 = 4;

function section(items: MemoryItem[]): MemorySection {
  return { bytes: items.reduce((s, i) => s + i.bytes * i.count, 0), items };
}

/** Base parameters of the model (tied embeddings counted once). */
export function parameterCount(spec: ModelSpec): number {
  return listWeights(weightNames(spec)).reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
}

export function weightBytes(spec: ModelSpec, precision: StoragePrecision | 'bf16'): number {
  return parameterCount(spec) * bytesOf(precision);
}

/** (in, out) of each linear module a PEFT target name selects, per layer. */
export function loraModules(spec: ModelSpec): Record<string, { in: number; out: number }[]> {
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F } = spec;
  if (spec.family === 'gpt2') {
    return {
      c_attn: [{ in: C, out: 3 * C }],
      c_proj: [
        { in: C, out: C },
        { in: F, out: C },
      ],
      c_fc: [{ in: C, out: F }],
    };
  }
  return {
    q_proj: [{ in: C, out: H * D }],
    k_proj: [{ in: C, out: Hkv * D }],
    v_proj: [{ in: C, out: Hkv * D }],
    o_proj: [{ in: H * D, out: C }],
    gate_proj: [{ in: C, out: F }],
    up_proj: [{ in: C, out: F }],
    down_proj: [{ in: F, out: C }],
  };
}

/** LoRA parameters (A: r × in, B: out × r per module and layer). Throws naming an unknown target. */
export function loraParameterCount(spec: ModelSpec, lora: LoraOptions): number {
  const modules = loraModules(spec);
  if (!Number.isInteger(lora.rank) || lora.rank < 1)
    throw new Error(`lora.rank: must be a positive integer, got ${lora.rank}`);
  let n = 0;
  for (const t of new Set(lora.targets)) {
    const m = modules[t];
    if (!m) {
      throw new Error(
        `lora.targets: '${t}' is not a module of ${spec.architecture} (one of: ${Object.keys(modules).join(', ')})`,
      );
    }
    for (const { in: i, out: o } of m) n += lora.rank * (i + o) * spec.layers;
  }
  return n;
}

/**
 * What one block saves for its backward, per layer, N = B·T tokens, s = activation bytes (2 or 4):
 *
 * llama / qwen2 / mistral
 *   resid   (B, T, C)    s    block input: rmsnorm₁'s x, and the residual stream
 *   rstd1   (B, T)       f32  rmsnorm₁ 1/rms
 *   ln1     (B, T, C)    s    rmsnorm₁ output: input of q/k/v (their LoRA dA needs it)
 *   q       (B, T, H·D)  s    after RoPE          ┐
 *   k       (B, T, Hkv·D) s   after RoPE          │ attention backward (flash style: recomputes
 *   v       (B, T, Hkv·D) s                       │ the scores from q, k and lse)
 *   lse     (B, H, T)    f32  logsumexp per row   ┘
 *   attn    (B, T, H·D)  s    attention output: o_proj input, rowsum(dO∘O) of the backward
 *   resid2  (B, T, C)    s    resid + o_proj(attn): rmsnorm₂'s x
 *   rstd2   (B, T)       f32
 *   ln2     (B, T, C)    s    gate/up input
 *   gate    (B, T, F)    s    ┐ SwiGLU backward
 *   up      (B, T, F)    s    ┘
 *   swiglu  (B, T, F)    s    down_proj input (its LoRA dA needs it)
 * gpt2
 *   resid, ln1 mean+rstd (2 × (B, T) f32), ln1, qkv (B, T, 3C), lse, attn (B, T, C), resid2, ln2 stats, ln2,
 *   fc (B, T, F) (gelu input), gelu (B, T, F) (mlp.c_proj input)
 * plus, per LoRA module, x·Aᵀ (B, T, r) s: dB = scaling · (x·Aᵀ)ᵀ · dY needs it.
 *
 * bytes/layer (llama) = N·[s·(4C + 2·H·D + 2·Hkv·D + 3F) + 8] + 4·B·H·T + Σ_modules N·r·s
 */
export function blockActivations(spec: ModelSpec, opts: MemoryOptions): MemoryItem[] {
  const { batch: B, seq: T } = opts;
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F } = spec;
  const N = B * T;
  const s = bytesOf(opts.precision);
  const item = (name: string, shape: string, elements: number, bytes = s): MemoryItem => ({
    name,
    shape,
    bytes: elements * bytes,
    count: 1,
  });
  const items =
    spec.family === 'gpt2'
      ? [
          item('resid', '(B, T, C)', N * C),
          item('ln1 mean, rstd', '2 × (B, T)', 2 * N, F32),
          item('ln1', '(B, T, C)', N * C),
          item('qkv', '(B, T, 3C)', N * 3 * C),
          item('lse', '(B, H, T)', B * H * T, F32),
          item('attn', '(B, T, C)', N * C),
          item('resid2', '(B, T, C)', N * C),
          item('ln2 mean, rstd', '2 × (B, T)', 2 * N, F32),
          item('ln2', '(B, T, C)', N * C),
          item('fc', '(B, T, F)', N * F),
          item('gelu', '(B, T, F)', N * F),
        ]
      : [
          item('resid', '(B, T, C)', N * C),
          item('rstd1', '(B, T)', N, F32),
          item('ln1', '(B, T, C)', N * C),
          item('q', '(B, T, H·D)', N * H * D),
          item('k', '(B, T, Hkv·D)', N * Hkv * D),
          item('v', '(B, T, Hkv·D)', N * Hkv * D),
          item('lse', '(B, H, T)', B * H * T, F32),
          item('attn', '(B, T, H·D)', N * H * D),
          item('resid2', '(B, T, C)', N * C),
          item('rstd2', '(B, T)', N, F32),
          item('ln2', '(B, T, C)', N * C),
          item('gate', '(B, T, F)', N * F),
          item('up', '(B, T, F)', N * F),
          item('swiglu', '(B, T, F)', N * F),
        ];
  if (opts.lora) {
    const modules = loraModules(spec);
    for (const t of new Set(opts.lora.targets)) {
      const n = modules[t]?.length ?? 0;
      if (n) items.push({ ...item(`lora ${t} x·Aᵀ`, '(B, T, r)', N * opts.lora.rank), count: n });
    }
  }
  return items;
}

export function estimateMemory(spec: ModelSpec, opts: MemoryOptions): MemoryEstimate {
  const { batch: B, seq: T } = opts;
  for (const [k, v] of [
    ['batch', B],
    ['seq', T],
  ] as const) {
    if (!Number.isInteger(v) || v < 1) throw new Error(`${k}: must be a positive integer, got ${v}`);
  }
  if (T > spec.maxPositions) {
    throw new Error(`seq: ${T} is longer than the ${spec.maxPositions} positions of ${spec.architecture}`);
  }
  const N = B * T;
  const s = bytesOf(opts.precision);
  const { hidden: C, vocab: V, layers: L, ffn: F } = spec;

  const weightItems: MemoryItem[] = listWeights(weightNames(spec)).map((t) => ({
    name: t.name,
    shape: `(${t.shape.join(', ')})`,
    bytes: t.shape.reduce((a, b) => a * b, 1) * s,
    count: 1,
  }));

  const perLayer = blockActivations(spec, opts);
  let activationItems: MemoryItem[];
  if (opts.recompute) {
    // Only block inputs survive the forward; the rest of one block is rebuilt at a time in the backward, in
    // one workspace every layer shares (perLayer[0] is the block input, resid).
    activationItems = [
      { ...perLayer[0], name: 'resid (saved)', count: L },
      ...perLayer.slice(1).map((i) => ({ ...i, name: `${i.name} (recompute workspace)` })),
    ];
  } else activationItems = perLayer.map((i) => ({ ...i, count: i.count * L }));
  activationItems.push(
    { name: 'final resid', shape: '(B, T, C)', bytes: N * C * s, count: 1 },
    {
      name: 'final norm stats',
      shape: spec.norm === 'layernorm' ? '2 × (B, T)' : '(B, T)',
      bytes: N * F32 * (spec.norm === 'layernorm' ? 2 : 1),
      count: 1,
    },
    { name: 'final norm', shape: '(B, T, C)', bytes: N * C * s, count: 1 },
  );

  let loraParameters = 0;
  const loraItems: MemoryItem[] = [];
  if (opts.lora) {
    loraParameters = loraParameterCount(spec, opts.lora);
    const modules = loraModules(spec);
    const r = opts.lora.rank;
    for (const t of new Set(opts.lora.targets)) {
      for (const [k, { in: i, out: o }] of modules[t].entries()) {
        const suffix = modules[t].length > 1 ? ` #${k}` : '';
        // A (r, in) and B (out, r) in f32: master weights, gradients, AdamW m and v.
        loraItems.push({
          name: `${t}${suffix} A (+grad, m, v)`,
          shape: '4 × (r, in)',
          bytes: r * i * F32,
          count: 4 * L,
        });
        loraItems.push({
          name: `${t}${suffix} B (+grad, m, v)`,
          shape: '4 × (out, r)',
          bytes: o * r * F32,
          count: 4 * L,
        });
        if (opts.precision === 'f16') {
          loraItems.push({
            name: `${t}${suffix} A, B f16 copies`,
            shape: '(r, in) + (out, r)',
            bytes: r * (i + o) * 2,
            count: L,
          });
        }
      }
    }
  }

  const chunk = Math.min(N, opts.logitsChunk ?? 1024);
  const widest =
    spec.family === 'gpt2'
      ? Math.max(3 * C, F)
      : Math.max(spec.heads * spec.headDim + 2 * spec.kvHeads * spec.headDim, 2 * F);
  const scratchItems: MemoryItem[] = [
    { name: 'token ids, targets', shape: '2 × (B, T) u32', bytes: N * 4, count: 2 },
    { name: 'logits chunk (dlogits in place)', shape: '(chunk, V) f32', bytes: chunk * V * F32, count: 1 },
    { name: 'loss per token', shape: '(B, T) f32', bytes: N * F32, count: 1 },
    { name: 'dresid, dbranch', shape: '2 × (B, T, C) f32', bytes: N * C * F32, count: 2 },
    {
      name: 'd of the widest block intermediate',
      shape: '(B, T, max(q+k+v, 2F))',
      bytes: N * widest * s,
      count: 1,
    },
    { name: 'attention delta', shape: '(B, H, T) f32', bytes: B * spec.heads * T * F32, count: 1 },
  ];

  const weights = section(weightItems);
  const activations = section(activationItems);
  const lora = section(loraItems);
  const scratch = section(scratchItems);
  let largestBuffer = { name: '', bytes: 0 };
  for (const i of [...weightItems, ...activationItems, ...loraItems, ...scratchItems]) {
    if (i.bytes > largestBuffer.bytes) largestBuffer = { name: `${i.name} ${i.shape}`, bytes: i.bytes };
  }
  return {
    parameters: parameterCount(spec),
    loraParameters,
    weights,
    activations,
    lora,
    scratch,
    largestBuffer,
    totalBytes: weights.bytes + activations.bytes + lora.bytes + scratch.bytes,
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
