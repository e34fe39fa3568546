// The ladder: supported Hub models by family and size, to prototype on a small one and scale up inside one
// family and tokenizer. Each entry keeps the config.json fields that parameter count and memory need, copied
// from the repo's own config.json on the Hub (the repo named by `id`, main branch, as of 2026-11): they go
// through parseModelConfig like a downloaded config, so the numbers here are computed by the same code that
// loads the model. An entry whose architecture this build does not load (none today; Gemma 3 was one until its
// family landed) is kept, marked by its family, and left out of the table until parseModelConfig accepts it.

import { FileFormatError } from '../json.ts';
import { parseModelConfig, type ModelSpec } from './config.ts';
import {
  estimateMemory,
  memoryProblems,
  type DeviceMemoryLimits,
  type LoraOptions,
  type MemoryEstimate,
  type StoragePrecision,
} from './memory.ts';

export interface LadderEntry {
  /** Hub repo id. */
  id: string;
  /** The ladder it climbs (one tokenizer per ladder), e.g. 'Qwen3'. */
  ladder: string;
  /** Size as the model's name says it, e.g. '0.6B'. */
  size: string;
  /** The config.json fields memory and parameter count need, as the repo's config.json has them. */
  config: Record<string, unknown>;
}

const llama = (fields: Record<string, unknown>) => ({
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  hidden_act: 'silu',
  ...fields,
});
const qwen2 = (fields: Record<string, unknown>) => ({
  architectures: ['Qwen2ForCausalLM'],
  model_type: 'qwen2',
  hidden_act: 'silu',
  rope_theta: 1000000.0,
  use_sliding_window: false,
  vocab_size: 151936,
  ...fields,
});
const qwen3 = (fields: Record<string, unknown>) => ({
  architectures: ['Qwen3ForCausalLM'],
  model_type: 'qwen3',
  attention_bias: false,
  head_dim: 128,
  hidden_act: 'silu',
  max_position_embeddings: 40960,
  num_key_value_heads: 8,
  rope_theta: 1000000,
  tie_word_embeddings: true,
  use_sliding_window: false,
  vocab_size: 151936,
  ...fields,
});
/** Llama 3.2's rope block (the same in 1B and 3B). */
const LLAMA32_ROPE = {
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  rope_theta: 500000.0,
};
const gemma3 = (fields: Record<string, unknown>) => ({
  architectures: ['Gemma3ForCausalLM'],
  model_type: 'gemma3_text',
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  max_position_embeddings: 32768,
  num_key_value_heads: 1,
  query_pre_attn_scalar: 256,
  rope_local_base_freq: 10000.0,
  rope_theta: 1000000.0,
  sliding_window: 512,
  vocab_size: 262144,
  ...fields,
});

/** Smallest to largest within each ladder. */
export const LADDER: readonly LadderEntry[] = [
  ...[
    ['135M', 576, 1536, 30, 9, 3, 100000],
    ['360M', 960, 2560, 32, 15, 5, 100000],
    ['1.7B', 2048, 8192, 24, 32, 32, 130000],
  ].map(([size, hidden, ffn, layers, heads, kvHeads, theta]) => ({
    id: `HuggingFaceTB/SmolLM2-${size}`,
    ladder: 'SmolLM2',
    size: String(size),
    config: llama({
      hidden_size: hidden,
      intermediate_size: ffn,
      num_hidden_layers: layers,
      num_attention_heads: heads,
      num_key_value_heads: kvHeads,
      max_position_embeddings: 8192,
      rms_norm_eps: 1e-5,
      rope_theta: theta,
      tie_word_embeddings: true,
      vocab_size: 49152,
    }),
  })),
  {
    id: 'Qwen/Qwen3-0.6B',
    ladder: 'Qwen3',
    size: '0.6B',
    config: qwen3({
      hidden_size: 1024,
      intermediate_size: 3072,
      num_hidden_layers: 28,
      num_attention_heads: 16,
    }),
  },
  {
    id: 'Qwen/Qwen3-1.7B',
    ladder: 'Qwen3',
    size: '1.7B',
    config: qwen3({
      hidden_size: 2048,
      intermediate_size: 6144,
      num_hidden_layers: 28,
      num_attention_heads: 16,
    }),
  },
  {
    id: 'Qwen/Qwen3-4B',
    ladder: 'Qwen3',
    size: '4B',
    config: qwen3({
      hidden_size: 2560,
      intermediate_size: 9728,
      num_hidden_layers: 36,
      num_attention_heads: 32,
    }),
  },
  {
    id: 'meta-llama/Llama-3.2-1B',
    ladder: 'Llama-3.2',
    size: '1B',
    config: llama({
      ...LLAMA32_ROPE,
      head_dim: 64,
      hidden_size: 2048,
      intermediate_size: 8192,
      num_hidden_layers: 16,
      num_attention_heads: 32,
      num_key_value_heads: 8,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-5,
      tie_word_embeddings: true,
      vocab_size: 128256,
    }),
  },
  {
    id: 'meta-llama/Llama-3.2-3B',
    ladder: 'Llama-3.2',
    size: '3B',
    config: llama({
      ...LLAMA32_ROPE,
      head_dim: 128,
      hidden_size: 3072,
      intermediate_size: 8192,
      num_hidden_layers: 28,
      num_attention_heads: 24,
      num_key_value_heads: 8,
      max_position_embeddings: 131072,
      rms_norm_eps: 1e-5,
      tie_word_embeddings: true,
      vocab_size: 128256,
    }),
  },
  {
    id: 'google/gemma-3-270m',
    ladder: 'Gemma-3',
    size: '270M',
    config: gemma3({
      hidden_size: 640,
      intermediate_size: 2048,
      num_hidden_layers: 18,
      num_attention_heads: 4,
    }),
  },
  {
    id: 'google/gemma-3-1b-pt',
    ladder: 'Gemma-3',
    size: '1B',
    config: gemma3({
      hidden_size: 1152,
      intermediate_size: 6912,
      num_hidden_layers: 26,
      num_attention_heads: 4,
    }),
  },
  {
    id: 'HuggingFaceTB/SmolLM3-3B',
    ladder: 'SmolLM3',
    size: '3B',
    config: {
      architectures: ['SmolLM3ForCausalLM'],
      model_type: 'smollm3',
      hidden_act: 'silu',
      hidden_size: 2048,
      intermediate_size: 11008,
      num_hidden_layers: 36,
      num_attention_heads: 16,
      num_key_value_heads: 4,
      max_position_embeddings: 65536,
      no_rope_layer_interval: 4,
      rope_theta: 5000000.0,
      tie_word_embeddings: true,
      use_sliding_window: false,
      vocab_size: 128256,
    },
  },
  {
    id: 'Qwen/Qwen2.5-0.5B',
    ladder: 'Qwen2.5',
    size: '0.5B',
    config: qwen2({
      hidden_size: 896,
      intermediate_size: 4864,
      num_hidden_layers: 24,
      num_attention_heads: 14,
      num_key_value_heads: 2,
      max_position_embeddings: 32768,
      tie_word_embeddings: true,
    }),
  },
  {
    id: 'Qwen/Qwen2.5-1.5B',
    ladder: 'Qwen2.5',
    size: '1.5B',
    config: qwen2({
      hidden_size: 1536,
      intermediate_size: 8960,
      num_hidden_layers: 28,
      num_attention_heads: 12,
      num_key_value_heads: 2,
      max_position_embeddings: 131072,
      tie_word_embeddings: true,
    }),
  },
];

/** The run a ladder row is estimated for. */
export interface LadderRun {
  batch: number;
  seq: number;
  precision: StoragePrecision;
  lora: LoraOptions;
  /** What the device can hold; without it, rows carry no verdict. */
  limits?: DeviceMemoryLimits;
}

export type LadderFit = 'fits' | 'needs recompute' | 'does not fit';

export interface LadderRow {
  entry: LadderEntry;
  spec: ModelSpec;
  parameters: number;
  /** The plain run's estimate (every block's activations kept). */
  estimate: MemoryEstimate;
  /** The same run with --recompute. */
  recomputed: MemoryEstimate;
  /** Null without limits. */
  fit: LadderFit | null;
}

/** A parameter count as model names write it: 135M, 1.24B. */
export function formatParameters(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)}B` : `${Math.round(n / 1e6)}M`;
}

/** The spec of an entry, or null while its family does not load in this build. */
export function ladderSpec(entry: LadderEntry): ModelSpec | null {
  try {
    return parseModelConfig(entry.config, `${entry.id}/config.json`);
  } catch (error) {
    if (error instanceof FileFormatError) return null;
    throw error;
  }
}

/** Every entry this build loads, estimated for `run`, in ladder order. */
export function ladderRows(run: LadderRun): LadderRow[] {
  const rows: LadderRow[] = [];
  for (const entry of LADDER) {
    const spec = ladderSpec(entry);
    if (!spec) continue;
    const options = { batch: run.batch, seq: Math.min(run.seq, spec.maxPositions), precision: run.precision };
    const estimate = estimateMemory(spec, { ...options, lora: run.lora });
    const recomputed = estimateMemory(spec, { ...options, lora: run.lora, recompute: true });
    const fits = (e: MemoryEstimate) => run.limits && memoryProblems(e, run.limits).length === 0;
    const fit: LadderFit | null = !run.limits
      ? null
      : fits(estimate)
        ? 'fits'
        : fits(recomputed)
          ? 'needs recompute'
          : 'does not fit';
    rows.push({ entry, spec, parameters: estimate.parameters, estimate, recomputed, fit });
  }
  return rows;
}

/** Entries kept for a family this build does not load yet (shown once it does). */
export function pendingLadderEntries(): LadderEntry[] {
  return LADDER.filter((entry) => ladderSpec(entry) === null);
}

/**
 * The entry of a Hub repo id (case-insensitive, as the Hub resolves it), or null. A chat-tuned sibling
 * ('-Instruct', '-it') shares its base model's entry: same shapes, same tokenizer.
 */
export function ladderEntry(id: string): LadderEntry | null {
  const wanted = id.toLowerCase().replace(/-(instruct|it)$/, '');
  return LADDER.find((e) => e.id.toLowerCase().replace(/-pt$/, '') === wanted.replace(/-pt$/, '')) ?? null;
}

/** The next size up in the ladder of `id` that this build loads, or null at the top (or off the ladder). */
export function scaleUpSibling(id: string): LadderEntry | null {
  const entry = ladderEntry(id);
  if (!entry) return null;
  const rung = LADDER.filter((e) => e.ladder === entry.ladder && ladderSpec(e) !== null);
  return rung[rung.indexOf(entry) + 1] ?? null;
}
