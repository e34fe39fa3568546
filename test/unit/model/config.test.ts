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
      'rope_scaling yarn',
      { ...SMOLLM2_135M, rope_scaling: { type: 'yarn', factor: 4 } },
      "config.json: rope_scaling.type 'yarn' is not supported (supported: none)",
    ],
    [
      'rope_scaling llama3',
      { ...SMOLLM2_135M, rope_scaling: { rope_type: 'llama3', factor: 8 } },
      "config.json: rope_scaling.rope_type 'llama3' is not supported (supported: none)",
    ],
    [
      'rope_parameters linear',
      { ...SMOLLM2_135M, rope_parameters: { rope_type: 'linear' } },
      "config.json: rope_parameters.rope_type 'linear' is not supported",
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
    ['odd head dim', { ...SMOLLM2_135M, head_dim: 63 }, 'config.json: head_dim 63 must be even for RoPE'],
  ];
  for (const [what, config, message] of refusals) {
    it(`refuses ${what}`, () => {
      expect(() => parseModelConfig(config)).toThrow(message);
    });
  }

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
