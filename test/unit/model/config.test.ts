import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../../src/engine/model/config.ts';
import { memoryFiles, readJson } from '../../../src/engine/checkpoint/byte-source.ts';
import { FileFormatError } from '../../../src/engine/json.ts';
import { tinyConfig } from '../../fixtures/tiny-models.ts';

// Abridged from the Hub's config.json files of the models named.
const SMOLLM2_135M = {
  architectures: ['LlamaForCausalLM'],
  bos_token_id: 0,
  eos_token_id: 0,
  hidden_act: 'silu',
  hidden_size: 576,
  intermediate_size: 1536,
  max_position_embeddings: 8192,
  model_type: 'llama',
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 100000,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  vocab_size: 49152,
};
const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'],
  bos_token_id: 151643,
  eos_token_id: 151643,
  hidden_act: 'silu',
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  model_type: 'qwen2',
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_sliding_window: false,
  vocab_size: 151936,
};
// Llama-3.2-1B's config.json (meta-llama/Llama-3.2-1B, transformers 4.45).
const LLAMA32_1B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  head_dim: 64,
  hidden_act: 'silu',
  hidden_size: 2048,
  initializer_range: 0.02,
  intermediate_size: 8192,
  max_position_embeddings: 131072,
  mlp_bias: false,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 16,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 32.0,
    high_freq_factor: 4.0,
    low_freq_factor: 1.0,
    original_max_position_embeddings: 8192,
    rope_type: 'llama3',
  },
  rope_theta: 500000.0,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  vocab_size: 128256,
};
// Qwen3-0.6B's config.json (Qwen/Qwen3-0.6B, transformers 4.51).
const QWEN3_06B = {
  architectures: ['Qwen3ForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 151643,
  eos_token_id: 151645,
  head_dim: 128,
  hidden_act: 'silu',
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 3072,
  max_position_embeddings: 40960,
  max_window_layers: 28,
  model_type: 'qwen3',
  num_attention_heads: 16,
  num_hidden_layers: 28,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_cache: true,
  use_sliding_window: false,
  vocab_size: 151936,
};
// SmolLM3-3B's config.json, abridged (HuggingFaceTB/SmolLM3-3B): 36 layers, every 4th without RoPE.
const SMOLLM3_3B = {
  architectures: ['SmolLM3ForCausalLM'],
  attention_bias: false,
  bos_token_id: null,
  eos_token_id: 128012,
  hidden_act: 'silu',
  hidden_size: 2048,
  intermediate_size: 11008,
  max_position_embeddings: 65536,
  mlp_bias: false,
  model_type: 'smollm3',
  no_rope_layer_interval: 4,
  no_rope_layers: Array.from({ length: 36 }, (_, l) => ((l + 1) % 4 === 0 ? 0 : 1)),
  num_attention_heads: 16,
  num_hidden_layers: 36,
  num_key_value_heads: 4,
  pad_token_id: 128004,
  rms_norm_eps: 1e-6,
  rope_scaling: null,
  rope_theta: 5000000.0,
  sliding_window: null,
  tie_word_embeddings: true,
  torch_dtype: 'bfloat16',
  use_sliding_window: false,
  vocab_size: 128256,
};
const GPT2 = {
  activation_function: 'gelu_new',
  architectures: ['GPT2LMHeadModel'],
  bos_token_id: 50256,
  eos_token_id: 50256,
  layer_norm_epsilon: 1e-5,
  model_type: 'gpt2',
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_layer: 12,
  n_positions: 1024,
  vocab_size: 50257,
};
const TINYLLAMA = {
  architectures: ['LlamaForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 2048,
  intermediate_size: 5632,
  max_position_embeddings: 2048,
  num_attention_heads: 32,
  num_hidden_layers: 22,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  vocab_size: 32000,
};
const MISTRAL = {
  architectures: ['MistralForCausalLM'],
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 1000000.0,
  sliding_window: null,
  vocab_size: 32768,
};

describe('parseModelConfig', () => {
  it('reads SmolLM2-135M (llama, GQA, tied)', () => {
    const s = parseModelConfig(SMOLLM2_135M);
    expect(s).toMatchObject({
      family: 'llama',
      architecture: 'LlamaForCausalLM',
      hidden: 576,
      layers: 30,
      heads: 9,
      kvHeads: 3,
      headDim: 64,
      ffn: 1536,
      vocab: 49152,
      maxPositions: 8192,
      norm: 'rmsnorm',
      rmsNormEps: 1e-5,
      layerNormEps: null,
      positions: 'rope',
      ropeTheta: 100000,
      tieWordEmbeddings: true,
      qkvBias: false,
      oBias: false,
      mlpBias: false,
      activation: 'silu',
      bosTokenId: 0,
      eosTokenIds: [0],
      torchDtype: 'bfloat16',
    });
  });

  it('reads TinyLlama with HF defaults for absent fields (rope_theta 10000)', () => {
    const s = parseModelConfig(TINYLLAMA);
    expect(s).toMatchObject({
      heads: 32,
      kvHeads: 4,
      headDim: 64,
      ropeTheta: 10000,
      tieWordEmbeddings: false,
    });
  });

  it('reads Qwen2.5-0.5B: q/k/v bias, eps 1e-6, θ 1e6', () => {
    const s = parseModelConfig(QWEN25_05B);
    expect(s).toMatchObject({
      family: 'qwen2',
      hidden: 896,
      heads: 14,
      kvHeads: 2,
      headDim: 64,
      qkvBias: true,
      oBias: false,
      rmsNormEps: 1e-6,
      ropeTheta: 1e6,
      tieWordEmbeddings: true,
      vocab: 151936,
    });
  });

  it('reads GPT-2: Conv1D family, learned positions, n_inner default 4·n_embd', () => {
    const s = parseModelConfig(GPT2);
    expect(s).toMatchObject({
      family: 'gpt2',
      hidden: 768,
      layers: 12,
      heads: 12,
      kvHeads: 12,
      headDim: 64,
      ffn: 3072,
      vocab: 50257,
      maxPositions: 1024,
      norm: 'layernorm',
      layerNormEps: 1e-5,
      rmsNormEps: null,
      positions: 'learned',
      ropeTheta: null,
      tieWordEmbeddings: true,
      qkvBias: true,
      oBias: true,
      mlpBias: true,
      activation: 'gelu_new',
      eosTokenIds: [50256],
      torchDtype: null,
    });
    expect(parseModelConfig({ ...GPT2, n_inner: 1000 }).ffn).toBe(1000);
  });

  it('reads Mistral without a sliding window, and eos lists, head_dim and text input', () => {
    expect(parseModelConfig(MISTRAL)).toMatchObject({ family: 'mistral', kvHeads: 8, ropeTheta: 1e6 });
    expect(parseModelConfig({ ...MISTRAL, sliding_window: 32768 }).family).toBe('mistral');
    expect(parseModelConfig({ ...SMOLLM2_135M, eos_token_id: [0, 2] }).eosTokenIds).toEqual([0, 2]);
    expect(parseModelConfig({ ...SMOLLM2_135M, head_dim: 32 }).headDim).toBe(32);
    expect(parseModelConfig(JSON.stringify(GPT2)).family).toBe('gpt2');
    expect(parseModelConfig({ ...SMOLLM2_135M, rope_scaling: { rope_type: 'default' } }).ropeTheta).toBe(1e5);
    expect(
      parseModelConfig({
        ...SMOLLM2_135M,
        rope_theta: undefined,
        rope_parameters: { rope_type: 'default', rope_theta: 5e5 },
      }).ropeTheta,
    ).toBe(5e5);
    expect(parseModelConfig({ ...SMOLLM2_135M, dtype: 'float16', torch_dtype: undefined }).torchDtype).toBe(
      'float16',
    );
  });

  it('reads sliding windows per layer as transformers applies them (Mistral all layers, Qwen2 from max_window_layers)', () => {
    const windows = (json: Record<string, unknown>) => parseModelConfig(json).layerWindows;
    // Mistral: every layer, MistralConfig's default 4096 when absent, none when null.
    expect(windows({ ...MISTRAL, sliding_window: 4096 })).toEqual(Array(32).fill(4096));
    expect(windows({ ...MISTRAL, sliding_window: undefined })).toEqual(Array(32).fill(4096));
    expect(windows(MISTRAL)).toEqual(Array(32).fill(null));
    // Qwen2: off unless use_sliding_window; then the layers from max_window_layers (default 28) on.
    expect(windows(QWEN25_05B)).toEqual(Array(24).fill(null));
    const qwen = { ...QWEN25_05B, use_sliding_window: true, sliding_window: 1024 };
    expect(windows({ ...qwen, max_window_layers: 21 })).toEqual([...Array(21).fill(null), 1024, 1024, 1024]);
    expect(windows({ ...qwen, max_window_layers: 0 })).toEqual(Array(24).fill(1024));
    expect(windows({ ...qwen, max_window_layers: undefined, num_hidden_layers: 30 })).toEqual([
      ...Array(28).fill(null),
      1024,
      1024,
    ]);
    expect(windows({ ...qwen, sliding_window: null })).toEqual(Array(24).fill(null));
    // layer_types, when listed, decides which layers slide.
    const types = Array.from({ length: 24 }, (_, l) => (l % 2 ? 'full_attention' : 'sliding_attention'));
    expect(windows({ ...qwen, layer_types: types })).toEqual(
      types.map((t) => (t === 'full_attention' ? null : 1024)),
    );
    expect(windows(SMOLLM2_135M)).toEqual(Array(30).fill(null));
    // Qwen3 as Qwen2 (max_window_layers 28 of 28 layers: none slides); SmolLM3 on its NoPE layers.
    const qwen3 = { ...QWEN3_06B, use_sliding_window: true, sliding_window: 4096 };
    expect(windows(qwen3)).toEqual(Array(28).fill(null));
    expect(windows({ ...qwen3, max_window_layers: 26 })).toEqual([...Array(26).fill(null), 4096, 4096]);
    expect(windows(SMOLLM3_3B)).toEqual(Array(36).fill(null));
    expect(windows({ ...SMOLLM3_3B, use_sliding_window: true })).toEqual(Array(36).fill(null)); // no window
    expect(windows({ ...SMOLLM3_3B, use_sliding_window: true, sliding_window: 512 })).toEqual(
      Array.from({ length: 36 }, (_, l) => ((l + 1) % 4 === 0 ? 512 : null)),
    );
  });

  it("reads Llama-3.2-1B's llama3 rope_scaling, and the same in transformers 5's rope_parameters", () => {
    const llama3 = {
      type: 'llama3',
      factor: 32,
      lowFreqFactor: 1,
      highFreqFactor: 4,
      originalMaxPositions: 8192,
    };
    expect(parseModelConfig(LLAMA32_1B)).toMatchObject({
      family: 'llama',
      headDim: 64,
      ropeTheta: 5e5,
      ropeScaling: llama3,
      maxPositions: 131072,
      tieWordEmbeddings: true,
    });
    const { rope_scaling, rope_theta, ...v5 } = LLAMA32_1B;
    const spec = parseModelConfig({ ...v5, rope_parameters: { ...rope_scaling, rope_theta } });
    expect(spec).toMatchObject({ ropeTheta: 5e5, ropeScaling: llama3 });
    const linear = { ...SMOLLM2_135M, rope_scaling: { type: 'linear', factor: 4.0 } };
    expect(parseModelConfig(linear).ropeScaling).toEqual({ type: 'linear', factor: 4 });
    expect(parseModelConfig(SMOLLM2_135M).ropeScaling).toBeNull();
  });

  it('reads Qwen3-0.6B: per-head q/k norms, head_dim 128 ≠ hidden / heads, no bias', () => {
    expect(parseModelConfig(QWEN3_06B)).toMatchObject({
      family: 'qwen3',
      hidden: 1024,
      heads: 16,
      kvHeads: 8,
      headDim: 128,
      qkNorm: true,
      qkvBias: false,
      oBias: false,
      noRopeLayers: [],
      ropeTheta: 1e6,
      tieWordEmbeddings: true,
      bosTokenId: 151643,
      eosTokenIds: [151645],
    });
    expect(parseModelConfig({ ...QWEN3_06B, attention_bias: true })).toMatchObject({
      qkvBias: true,
      oBias: true,
    });
    expect(parseModelConfig(SMOLLM2_135M).qkNorm).toBe(false);
  });

  it("reads SmolLM3-3B's NoPE layers: a 0 in no_rope_layers is a layer without RoPE", () => {
    const spec = parseModelConfig(SMOLLM3_3B);
    expect(spec).toMatchObject({ family: 'smollm3', headDim: 128, ropeTheta: 5e6, qkNorm: false });
    expect(spec.noRopeLayers).toEqual([3, 7, 11, 15, 19, 23, 27, 31, 35]);
    // Without the list, SmolLM3Config makes every no_rope_layer_interval-th layer NoPE.
    const { no_rope_layers: _, ...byInterval } = SMOLLM3_3B;
    expect(
      parseModelConfig({ ...byInterval, num_hidden_layers: 6, no_rope_layer_interval: 3 }).noRopeLayers,
    ).toEqual([2, 5]);
    expect(parseModelConfig({ ...SMOLLM3_3B, no_rope_layers: Array(36).fill(1) }).noRopeLayers).toEqual([]);
  });

  it('supports llama attention_bias (bias on q, k, v and o)', () => {
    expect(parseModelConfig({ ...SMOLLM2_135M, attention_bias: true })).toMatchObject({
      qkvBias: true,
      oBias: true,
    });
  });

  it('reads the tiny fixture configs', () => {
    for (const arch of ['llama', 'qwen2', 'mistral', 'gpt2'] as const) {
      expect(parseModelConfig(tinyConfig(arch, false, 'BF16')).family).toBe(arch);
    }
  });

  const refusals: [string, Record<string, unknown>, string][] = [
    [
      'unknown architecture',
      { ...SMOLLM2_135M, architectures: ['PhiForCausalLM'] },
      "config.json: architectures 'PhiForCausalLM' is not supported",
    ],
    ['no architecture', { hidden_size: 8 }, 'config.json: architectures is missing'],
    [
      'rope_scaling yarn (no supported family uses it)',
      { ...SMOLLM2_135M, rope_scaling: { type: 'yarn', factor: 4 } },
      "config.json: rope_scaling.type 'yarn' is not supported (supported: default, linear, llama3)",
    ],
    [
      'rope_scaling dynamic',
      { ...SMOLLM2_135M, rope_scaling: { rope_type: 'dynamic', factor: 2 } },
      "config.json: rope_scaling.rope_type 'dynamic' is not supported (supported: default, linear, llama3)",
    ],
    [
      'rope_scaling llama3 without low_freq_factor',
      { ...SMOLLM2_135M, rope_scaling: { ...LLAMA32_1B.rope_scaling, low_freq_factor: undefined } },
      'config.json: rope_scaling.low_freq_factor is missing',
    ],
    [
      'rope_scaling llama3 with high_freq_factor ≤ low_freq_factor',
      { ...SMOLLM2_135M, rope_scaling: { ...LLAMA32_1B.rope_scaling, high_freq_factor: 1 } },
      'config.json: rope_scaling.high_freq_factor 1 must be greater than low_freq_factor 1',
    ],
    [
      'rope_scaling llama3 with a string original_max_position_embeddings',
      {
        ...SMOLLM2_135M,
        rope_scaling: { ...LLAMA32_1B.rope_scaling, original_max_position_embeddings: '8k' },
      },
      'config.json: rope_scaling.original_max_position_embeddings must be a positive integer, got "8k"',
    ],
    [
      'rope_parameters linear without a factor',
      { ...SMOLLM2_135M, rope_parameters: { rope_type: 'linear' } },
      'config.json: rope_parameters.factor is missing',
    ],
    [
      'rope_parameters linear with factor 0',
      { ...SMOLLM2_135M, rope_parameters: { rope_type: 'linear', factor: 0 } },
      'config.json: rope_parameters.factor must be a finite number > 0, got 0',
    ],
    [
      'SmolLM3 no_rope_layers shorter than the layers',
      { ...SMOLLM3_3B, no_rope_layers: [1, 1, 1, 0] },
      'config.json: no_rope_layers must list 0 or 1 for each of the 36 layers, got [1,1,1,0]',
    ],
    [
      'SmolLM3 no_rope_layers with a 2',
      { ...SMOLLM3_3B, no_rope_layers: Array(36).fill(2) },
      'config.json: no_rope_layers must list 0 or 1 for each of the 36 layers',
    ],
    [
      'Qwen3 with an unsupported head_dim',
      { ...QWEN3_06B, head_dim: 100 },
      'config.json: head_dim 100 is not supported',
    ],
    [
      'rope_scaling as a list',
      { ...SMOLLM2_135M, rope_scaling: [8] },
      'config.json: rope_scaling must be null or an object',
    ],
    [
      'hidden_act gelu on llama',
      { ...SMOLLM2_135M, hidden_act: 'gelu' },
      "config.json: hidden_act 'gelu' is not supported (supported: silu)",
    ],
    [
      'gpt2 exact gelu',
      { ...GPT2, activation_function: 'gelu' },
      "config.json: activation_function 'gelu' is not supported",
    ],
    ['llama mlp_bias', { ...SMOLLM2_135M, mlp_bias: true }, 'config.json: mlp_bias true is not supported'],
    [
      'mistral window not a count',
      { ...MISTRAL, sliding_window: 0 },
      'config.json: sliding_window must be a positive integer, got 0',
    ],
    [
      'qwen2 negative max_window_layers',
      { ...QWEN25_05B, use_sliding_window: true, max_window_layers: -1 },
      'config.json: max_window_layers must be a whole number ≥ 0, got -1',
    ],
    [
      'layer_types of the wrong length',
      { ...MISTRAL, sliding_window: 4096, layer_types: ['sliding_attention'] },
      "config.json: layer_types must list 'sliding_attention' or 'full_attention' for each of the 32 layers",
    ],
    [
      'an unknown layer type',
      { ...QWEN25_05B, layer_types: [...Array(23).fill('full_attention'), 'chunked_attention'] },
      "config.json: layer_types[23] 'chunked_attention' is not supported",
    ],
    [
      'a sliding layer without a window',
      { ...QWEN25_05B, layer_types: [...Array(23).fill('full_attention'), 'sliding_attention'] },
      'config.json: layer_types[23] is sliding_attention but use_sliding_window is false',
    ],
    [
      'kv heads not dividing heads',
      { ...SMOLLM2_135M, num_key_value_heads: 4 },
      'config.json: num_key_value_heads 4 must divide num_attention_heads 9',
    ],
    [
      'missing hidden_size',
      { ...SMOLLM2_135M, hidden_size: undefined },
      'config.json: hidden_size is missing',
    ],
    [
      'bad layer count',
      { ...SMOLLM2_135M, num_hidden_layers: 0 },
      'config.json: num_hidden_layers must be a positive integer, got 0',
    ],
    [
      'bad dtype',
      { ...SMOLLM2_135M, torch_dtype: 'int8' },
      "config.json: torch_dtype 'int8' is not supported",
    ],
    [
      'gpt2 inverse layer idx scaling',
      { ...GPT2, scale_attn_by_inverse_layer_idx: true },
      'config.json: scale_attn_by_inverse_layer_idx true is not supported',
    ],
    [
      'gpt2 unscaled attention',
      { ...GPT2, scale_attn_weights: false },
      'config.json: scale_attn_weights false is not supported',
    ],
    [
      'an odd head dim',
      { ...SMOLLM2_135M, head_dim: 63 },
      'config.json: head_dim 63 is not supported: the attention kernels take a multiple of 8 from 8 to 256',
    ],
    [
      'a head dim past 256',
      { ...SMOLLM2_135M, head_dim: 264 },
      'config.json: head_dim 264 is not supported: the attention kernels take a multiple of 8 from 8 to 256',
    ],
    [
      'a head dim of 12 implied by hidden_size / num_attention_heads',
      { ...SMOLLM2_135M, hidden_size: 60, num_attention_heads: 5, num_key_value_heads: 5 },
      'config.json: num_attention_heads 5 (of hidden_size 60) makes head dim 12, which is not supported',
    ],
    [
      'a GPT-2 head dim of 4',
      { ...GPT2, n_embd: 48, n_head: 12 },
      'config.json: n_head 12 (of n_embd 48) makes head dim 4, which is not supported',
    ],
  ];
  for (const [what, config, message] of refusals) {
    it(`refuses ${what}`, () => {
      expect(() => parseModelConfig(config)).toThrow(message);
    });
  }

  it('takes every head dim the attention kernels run: multiples of 8 from 8 to 256, explicit or implied', () => {
    for (let d = 8; d <= 256; d += 8) {
      expect(parseModelConfig({ ...SMOLLM2_135M, head_dim: d }).headDim).toBe(d);
      expect(parseModelConfig({ ...SMOLLM2_135M, hidden_size: 3 * d, num_attention_heads: 3 }).headDim).toBe(
        d,
      );
    }
  });

  it('refuses malformed JSON naming the file', () => {
    expect(() => parseModelConfig('{ nope', 'models/x/config.json')).toThrow(
      'models/x/config.json: not valid JSON',
    );
    expect(() => parseModelConfig('[1]')).toThrow('config.json: expected a JSON object');
  });

  it('refuses architectures that name Object.prototype members instead of finding them', () => {
    for (const name of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      expect(() => parseModelConfig({ ...SMOLLM2_135M, architectures: [name] })).toThrow(
        `config.json: architectures '${name}' is not supported`,
      );
      const { architectures: _, ...byType } = SMOLLM2_135M;
      expect(() => parseModelConfig({ ...byType, model_type: name })).toThrow(FileFormatError);
    }
  });

  it('refuses sizes no model has and non-finite RoPE bases', () => {
    expect(() => parseModelConfig({ ...SMOLLM2_135M, num_hidden_layers: 1e300 })).toThrow(
      'config.json: num_hidden_layers 1e+300 is out of range (at most 16777216)',
    );
    expect(() => parseModelConfig({ ...SMOLLM2_135M, vocab_size: 2 ** 53 + 2 })).toThrow(
      /vocab_size .* out of range/,
    );
    expect(() => parseModelConfig({ ...SMOLLM2_135M, eos_token_id: 2 ** 40 })).toThrow(
      'config.json: eos_token_id must be a token id',
    );
    const text = JSON.stringify({ ...QWEN25_05B, rope_theta: undefined }).replace(
      /}$/,
      ',"rope_parameters":{"rope_type":"default","rope_theta":1e999}}',
    );
    expect(() => parseModelConfig(text)).toThrow(
      'config.json: rope_parameters.rope_theta must be a finite number > 0, got Infinity',
    );
  });

  it('refuses deeply nested JSON with a FileFormatError naming the file, not a stack overflow', () => {
    const deep = `{"architectures":["LlamaForCausalLM"],"x":${'['.repeat(100000)}${']'.repeat(100000)}}`;
    expect(() => parseModelConfig(deep, 'm/config.json')).toThrow(
      new FileFormatError('m/config.json', 'JSON nested deeper than 64 levels'),
    );
  });

  it('refuses a config.json that is not UTF-8, naming the byte offset', async () => {
    const bytes = new TextEncoder().encode(JSON.stringify(SMOLLM2_135M));
    const bad = new Uint8Array([...bytes.slice(0, 20), 0xff, ...bytes.slice(20)]);
    await expect(readJson(memoryFiles('m', { 'config.json': bad }), 'config.json')).rejects.toThrow(
      'config.json: not valid UTF-8 (first bad byte at offset 20)',
    );
  });
});
