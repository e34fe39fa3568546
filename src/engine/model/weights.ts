// HF tensor names → the model's parameters, per architecture, with the shape the config implies.
// Linear layers (llama/qwen2/mistral) are stored as torch.nn.Linear keeps them, (out, in); GPT-2's
// Conv1D keeps (in, out): the layout field says which, so the GPU side never guesses.

import type { ModelSpec } from './config.ts';
import type { SafetensorsDtype } from '../checkpoint/dtypes.ts';
import { countF16Overflow, toFloat16Bits, toFloat32 } from '../checkpoint/dtypes.ts';
import type { Checkpoint } from '../checkpoint/safetensors.ts';
import { FileFormatError } from '../json.ts';

export type WeightLayout =
  /** torch Linear weight (out, in): y = x·Wᵀ. */
  | 'out_in'
  /** GPT-2 Conv1D weight (in, out): y = x·W. */
  | 'in_out'
  /** A vector (norm weight or bias). */
  | 'vector'
  /** (rows, C) table read by row: token or position embedding. */
  | 'table';

export interface WeightName {
  /** Name in the checkpoint (prefix resolved by `resolveWeights`). */
  name: string;
  shape: number[];
  layout: WeightLayout;
}

/** One llama / qwen2 / qwen3 / smollm3 / mistral / gemma3 block. */
export interface RopeBlockWeights {
  kind: 'rope';
  inputNorm: WeightName; // (C)
  q: WeightName; // (H·D, C)
  k: WeightName; // (Hkv·D, C)
  v: WeightName; // (Hkv·D, C)
  o: WeightName; // (C, H·D)
  qBias?: WeightName; // (H·D)      qwen2, llama attention_bias
  kBias?: WeightName; // (Hkv·D)
  vBias?: WeightName; // (Hkv·D)
  oBias?: WeightName; // (C)        llama attention_bias
  qNorm?: WeightName; // (D)        qwen3, gemma3 q_norm
  kNorm?: WeightName; // (D)        qwen3, gemma3 k_norm
  /** post_attention_layernorm: the MLP's input norm, except in Gemma 3, where it norms the attention output. */
  postNorm: WeightName; // (C)
  preFfwNorm?: WeightName; // (C)   gemma3 pre_feedforward_layernorm: the MLP's input norm
  postFfwNorm?: WeightName; // (C)  gemma3 post_feedforward_layernorm: norms the MLP's output
  gate: WeightName; // (F, C)
  up: WeightName; // (F, C)
  down: WeightName; // (C, F)
}

/** One GPT-2 block (Conv1D weights are (in, out)). */
export interface Gpt2BlockWeights {
  kind: 'gpt2';
  ln1: WeightName; // (C)
  ln1Bias: WeightName; // (C)
  qkv: WeightName; // (C, 3C)   c_attn: q | k | v along the output axis
  qkvBias: WeightName; // (3C)
  o: WeightName; // (C, C)      attn.c_proj
  oBias: WeightName; // (C)
  ln2: WeightName; // (C)
  ln2Bias: WeightName; // (C)
  fc: WeightName; // (C, F)     mlp.c_fc
  fcBias: WeightName; // (F)
  proj: WeightName; // (F, C)   mlp.c_proj
  projBias: WeightName; // (C)
}

export interface ModelWeights {
  embed: WeightName; // (V, C)
  /** GPT-2 learned positions (maxPositions, C). */
  positions?: WeightName;
  blocks: (RopeBlockWeights | Gpt2BlockWeights)[];
  finalNorm: WeightName; // (C)
  finalNormBias?: WeightName; // (C)    gpt2
  /** (V, C), 'out_in'; the embedding itself when tied. */
  lmHead: WeightName;
}

const w = (name: string, shape: number[], layout: WeightLayout): WeightName => ({ name, shape, layout });
const vec = (name: string, n: number) => w(name, [n], 'vector');

/** The parameters of `spec` under their canonical HF names: 'model.' / 'transformer.' prefixes. */
export function weightNames(
  spec: ModelSpec,
  prefix = spec.family === 'gpt2' ? 'transformer.' : 'model.',
): ModelWeights {
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F, vocab: V } = spec;
  const blocks: (RopeBlockWeights | Gpt2BlockWeights)[] = [];
  if (spec.family === 'gpt2') {
    const embed = w(`${prefix}wte.weight`, [V, C], 'table');
    for (let i = 0; i < spec.layers; i++) {
      const p = `${prefix}h.${i}.`;
      blocks.push({
        kind: 'gpt2',
        ln1: vec(`${p}ln_1.weight`, C),
        ln1Bias: vec(`${p}ln_1.bias`, C),
        qkv: w(`${p}attn.c_attn.weight`, [C, 3 * C], 'in_out'),
        qkvBias: vec(`${p}attn.c_attn.bias`, 3 * C),
        o: w(`${p}attn.c_proj.weight`, [C, C], 'in_out'),
        oBias: vec(`${p}attn.c_proj.bias`, C),
        ln2: vec(`${p}ln_2.weight`, C),
        ln2Bias: vec(`${p}ln_2.bias`, C),
        fc: w(`${p}mlp.c_fc.weight`, [C, F], 'in_out'),
        fcBias: vec(`${p}mlp.c_fc.bias`, F),
        proj: w(`${p}mlp.c_proj.weight`, [F, C], 'in_out'),
        projBias: vec(`${p}mlp.c_proj.bias`, C),
      });
    }
    return {
      embed,
      positions: w(`${prefix}wpe.weight`, [spec.maxPositions, C], 'table'),
      blocks,
      finalNorm: vec(`${prefix}ln_f.weight`, C),
      finalNormBias: vec(`${prefix}ln_f.bias`, C),
      lmHead: spec.tieWordEmbeddings ? { ...embed, layout: 'out_in' } : w('lm_head.weight', [V, C], 'out_in'),
    };
  }
  const embed = w(`${prefix}embed_tokens.weight`, [V, C], 'table');
  for (let i = 0; i < spec.layers; i++) {
    const p = `${prefix}layers.${i}.`;
    const block: RopeBlockWeights = {
      kind: 'rope',
      inputNorm: vec(`${p}input_layernorm.weight`, C),
      q: w(`${p}self_attn.q_proj.weight`, [H * D, C], 'out_in'),
      k: w(`${p}self_attn.k_proj.weight`, [Hkv * D, C], 'out_in'),
      v: w(`${p}self_attn.v_proj.weight`, [Hkv * D, C], 'out_in'),
      o: w(`${p}self_attn.o_proj.weight`, [C, H * D], 'out_in'),
      postNorm: vec(`${p}post_attention_layernorm.weight`, C),
      gate: w(`${p}mlp.gate_proj.weight`, [F, C], 'out_in'),
      up: w(`${p}mlp.up_proj.weight`, [F, C], 'out_in'),
      down: w(`${p}mlp.down_proj.weight`, [C, F], 'out_in'),
    };
    if (spec.qkvBias) {
      block.qBias = vec(`${p}self_attn.q_proj.bias`, H * D);
      block.kBias = vec(`${p}self_attn.k_proj.bias`, Hkv * D);
      block.vBias = vec(`${p}self_attn.v_proj.bias`, Hkv * D);
    }
    if (spec.oBias) block.oBias = vec(`${p}self_attn.o_proj.bias`, C);
    if (spec.qkNorm) {
      block.qNorm = vec(`${p}self_attn.q_norm.weight`, D);
      block.kNorm = vec(`${p}self_attn.k_norm.weight`, D);
    }
    if (spec.family === 'gemma3') {
      block.preFfwNorm = vec(`${p}pre_feedforward_layernorm.weight`, C);
      block.postFfwNorm = vec(`${p}post_feedforward_layernorm.weight`, C);
    }
    blocks.push(block);
  }
  return {
    embed,
    blocks,
    finalNorm: vec(`${prefix}norm.weight`, C),
    lmHead: spec.tieWordEmbeddings ? { ...embed, layout: 'out_in' } : w('lm_head.weight', [V, C], 'out_in'),
  };
}

/** Every parameter once (a tied lm_head is not listed twice), in model order. */
export function listWeights(weights: ModelWeights): WeightName[] {
  const out: WeightName[] = [weights.embed];
  if (weights.positions) out.push(weights.positions);
  for (const b of weights.blocks) {
    for (const v of Object.values(b)) if (typeof v === 'object') out.push(v);
  }
  out.push(weights.finalNorm);
  if (weights.finalNormBias) out.push(weights.finalNormBias);
  if (weights.lmHead.name !== weights.embed.name) out.push(weights.lmHead);
  return out;
}

/** Checkpoint entries this engine knows it can ignore (buffers, not parameters). */
const IGNORABLE = [/\.rotary_emb\.inv_freq$/, /\.attn\.(masked_)?bias$/, /^lm_head\.weight$/];

export interface ResolvedWeights {
  weights: ModelWeights;
  /** The prefix found ('model.', 'transformer.' or ''). */
  prefix: string;
  /** Parameters in the model (tied embeddings counted once). */
  parameterCount: number;
}

/**
 * Matches the checkpoint's tensors to the parameters `spec` implies: every one present with its shape.
 * `source` names the checkpoint in errors. Accepts names with or without the 'model.' / 'transformer.'
 * prefix, as transformers does.
 */
export function resolveWeights(
  spec: ModelSpec,
  tensors: ReadonlyMap<string, { shape: readonly number[]; file?: string }>,
  source = 'checkpoint',
): ResolvedWeights {
  const canonical = spec.family === 'gpt2' ? 'transformer.' : 'model.';
  const probe = spec.family === 'gpt2' ? 'wte.weight' : 'embed_tokens.weight';
  const prefix = !tensors.has(canonical + probe) && tensors.has(probe) ? '' : canonical;
  const weights = weightNames(spec, prefix);
  const expected = listWeights(weights);
  const missing = expected.filter((t) => !tensors.has(t.name));
  if (missing.length > 0) {
    const first = missing[0];
    throw new FileFormatError(
      source,
      `tensor '${first.name}' (shape [${first.shape}]) is missing` +
        (missing.length > 1
          ? `, and ${missing.length - 1} more (${missing
              .slice(1, 4)
              .map((t) => t.name)
              .join(', ')}${missing.length > 4 ? ', …' : ''})`
          : '') +
        ` for ${spec.architecture} as config.json describes it`,
    );
  }
  for (const t of expected) {
    const found = tensors.get(t.name)!;
    if (found.shape.length !== t.shape.length || found.shape.some((d, i) => d !== t.shape[i])) {
      throw new FileFormatError(
        found.file ?? source,
        `tensor '${t.name}' has shape [${found.shape}], expected [${t.shape}] from config.json`,
      );
    }
  }
  refuseUnused(spec, tensors, new Set(expected.map((t) => t.name)), source);
  const parameterCount = expected.reduce((s, t) => s + t.shape.reduce((a, b) => a * b, 1), 0);
  return { weights, prefix, parameterCount };
}

/**
 * A tensor the config does not use means config.json and the checkpoint disagree (e.g. num_hidden_layers
 * smaller than the checkpoint's layers), and loading would silently drop part of the model: refuse it.
 */
function refuseUnused(
  spec: ModelSpec,
  tensors: ReadonlyMap<string, { file?: string }>,
  used: ReadonlySet<string>,
  source: string,
): void {
  const unused = [...tensors.keys()].filter((n) => !used.has(n) && !IGNORABLE.some((re) => re.test(n)));
  if (unused.length === 0) return;
  const first = unused[0];
  const layer = /(?:^|\.)(?:layers|h)\.(\d+)\./.exec(first);
  const hint =
    layer && Number(layer[1]) >= spec.layers
      ? ` (config.json says ${spec.layers} layers; the checkpoint has layer ${layer[1]})`
      : ` (not a parameter of ${spec.architecture} as config.json describes it)`;
  throw new FileFormatError(
    tensors.get(first)?.file ?? source,
    `tensor '${first}' is not used${hint}` +
      (unused.length > 1 ? `, and ${unused.length - 1} more unused` : ''),
  );
}

export type UploadPrecision = 'f16' | 'f32';

export interface HostTensor {
  name: string;
  shape: number[];
  /** f16 bits (Uint16Array) or f32 values, ready for queue.writeBuffer. */
  data: Uint16Array | Float32Array;
  /** Finite source values that overflowed to ±inf in f16 (0 for f32). */
  f16Overflow: number;
}

/** Converts a tensor's stored bytes to the upload precision on the host (bf16/f32 → f16, bf16/f16 → f32). */
export function convertForUpload(
  name: string,
  shape: number[],
  bytes: Uint8Array,
  dtype: SafetensorsDtype,
  precision: UploadPrecision,
): HostTensor {
  if (precision === 'f32') return { name, shape, data: toFloat32(bytes, dtype), f16Overflow: 0 };
  const data = toFloat16Bits(bytes, dtype);
  return { name, shape, data, f16Overflow: dtype === 'F16' ? 0 : countF16Overflow(bytes, dtype, data) };
}

/** Reads the model's parameters one by one, converted for upload (each converted tensor lives until the consumer drops it). */
export async function* readWeights(
  checkpoint: Checkpoint,
  resolved: ResolvedWeights,
  precision: UploadPrecision,
): AsyncGenerator<HostTensor> {
  const expected = listWeights(resolved.weights);
  const shapes = new Map(expected.map((t) => [t.name, t.shape]));
  for await (const { info, bytes } of checkpoint.stream(shapes.keys())) {
    yield convertForUpload(info.name, shapes.get(info.name)!, bytes, info.dtype, precision);
  }
}
