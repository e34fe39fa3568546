// Gemma 3 text configs as transformers reads them (Gemma3TextConfig, Gemma3TextModel's two rotary embeddings).
import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../../src/engine/model/config.ts';

const SLIDING = 'sliding_attention';
const FULL = 'full_attention';

// Abridged from the Hub's config.json of google/gemma-3-270m (transformers 4.55: layer_types listed).
const GEMMA3_270M = {
  _sliding_window_pattern: 6,
  architectures: ['Gemma3ForCausalLM'],
  attention_bias: false,
  attn_logit_softcapping: null,
  bos_token_id: 2,
  eos_token_id: 1,
  final_logit_softcapping: null,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 640,
  intermediate_size: 2048,
  layer_types: Array.from({ length: 18 }, (_, l) => ((l + 1) % 6 === 0 ? FULL : SLIDING)),
  max_position_embeddings: 32768,
  model_type: 'gemma3_text',
  num_attention_heads: 4,
  num_hidden_layers: 18,
  num_key_value_heads: 1,
  pad_token_id: 0,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000.0,
  rope_scaling: null,
  rope_theta: 1000000.0,
  sliding_window: 512,
  torch_dtype: 'bfloat16',
  use_bidirectional_attention: false,
  vocab_size: 262144,
};

// google/gemma-3-1b-pt (transformers 4.50: sliding_window_pattern, no layer_types).
const GEMMA3_1B = {
  architectures: ['Gemma3ForCausalLM'],
  attention_bias: false,
  attn_logit_softcapping: null,
  bos_token_id: 2,
  eos_token_id: 1,
  final_logit_softcapping: null,
  head_dim: 256,
  hidden_activation: 'gelu_pytorch_tanh',
  hidden_size: 1152,
  intermediate_size: 6912,
  max_position_embeddings: 32768,
  model_type: 'gemma3_text',
  num_attention_heads: 4,
  num_hidden_layers: 26,
  num_key_value_heads: 1,
  query_pre_attn_scalar: 256,
  rms_norm_eps: 1e-6,
  rope_local_base_freq: 10000,
  rope_scaling: null,
  rope_theta: 1000000,
  sliding_window: 512,
  sliding_window_pattern: 6,
  torch_dtype: 'bfloat16',
  vocab_size: 262144,
};

/** Layer l is global iff (l + 1) % 6 == 0: 5 sliding layers, then a global one. */
const pattern6 = (layers: number, window: number) =>
  Array.from({ length: layers }, (_, l) => ((l + 1) % 6 === 0 ? null : window));

describe('parseModelConfig: Gemma 3 text', () => {
  it('reads Gemma-3-270M: layer_types, two RoPE bases, query_pre_attn_scalar, head_dim 256 ≠ hidden / heads', () => {
    const spec = parseModelConfig(GEMMA3_270M);
    expect(spec).toMatchObject({
      family: 'gemma3',
      architecture: 'Gemma3ForCausalLM',
      hidden: 640,
      layers: 18,
      heads: 4,
      kvHeads: 1,
      headDim: 256,
      ffn: 2048,
      vocab: 262144,
      maxPositions: 32768,
      rmsNormEps: 1e-6,
      ropeTheta: 1e6,
      ropeScaling: null,
      slidingRope: { theta: 1e4, scaling: null },
      attentionScale: 1 / 16,
      tieWordEmbeddings: true,
      qkNorm: true,
      activation: 'gelu_tanh',
      bosTokenId: 2,
      eosTokenIds: [1],
      torchDtype: 'bfloat16',
    });
    expect(spec.layerWindows).toEqual(pattern6(18, 512));
  });

  it('reads Gemma-3-1B: the older sliding_window_pattern, and model_type alone', () => {
    const spec = parseModelConfig(GEMMA3_1B);
    expect(spec.layerWindows).toEqual(pattern6(26, 512));
    expect(spec.hidden).toBe(1152);
    const { architectures: _, ...byType } = GEMMA3_1B;
    expect(parseModelConfig(byType).layerWindows).toEqual(pattern6(26, 512));
    // Another pattern: every other layer global.
    expect(
      parseModelConfig({ ...GEMMA3_1B, num_hidden_layers: 4, sliding_window_pattern: 2 }).layerWindows,
    ).toEqual([512, null, 512, null]);
  });

  it('takes the defaults of Gemma3TextConfig for absent fields', () => {
    const spec = parseModelConfig({
      architectures: ['Gemma3ForCausalLM'],
      hidden_size: 64,
      intermediate_size: 96,
      num_hidden_layers: 7,
      num_attention_heads: 4,
    });
    expect(spec).toMatchObject({
      headDim: 256,
      kvHeads: 4,
      vocab: 262208,
      ropeTheta: 1e6,
      slidingRope: { theta: 1e4, scaling: null },
      attentionScale: 256 ** -0.5,
      tieWordEmbeddings: true,
      maxPositions: 131072,
    });
    expect(spec.layerWindows).toEqual([4096, 4096, 4096, 4096, 4096, null, 4096]);
  });

  it('applies rope_scaling to the global layers only (Gemma-3-4B: linear 8), as rotary_emb_local drops it', () => {
    const spec = parseModelConfig({ ...GEMMA3_1B, rope_scaling: { factor: 8.0, rope_type: 'linear' } });
    expect(spec.ropeScaling).toEqual({ type: 'linear', factor: 8 });
    expect(spec.slidingRope).toEqual({ theta: 1e4, scaling: null });
  });

  it("reads transformers 5's rope_parameters per layer type, absent entries from rope_theta / rope_local_base_freq", () => {
    const { rope_theta: _t, rope_local_base_freq: _l, rope_scaling: _s, ...rest } = GEMMA3_1B;
    const spec = parseModelConfig({
      ...rest,
      rope_parameters: {
        full_attention: { rope_type: 'linear', factor: 8.0, rope_theta: 1000000.0 },
        sliding_attention: { rope_type: 'default', rope_theta: 10000.0 },
      },
    });
    expect(spec.ropeTheta).toBe(1e6);
    expect(spec.ropeScaling).toEqual({ type: 'linear', factor: 8 });
    expect(spec.slidingRope).toEqual({ theta: 1e4, scaling: null });
    const partial = parseModelConfig({
      ...GEMMA3_1B,
      rope_theta: 5e5,
      rope_local_base_freq: 2e4,
      rope_parameters: { sliding_attention: { rope_type: 'default' } },
    });
    expect(partial.ropeTheta).toBe(5e5);
    expect(partial.slidingRope).toEqual({ theta: 2e4, scaling: null });
  });

  const refusals: [string, Record<string, unknown>, string][] = [
    [
      'final_logit_softcapping',
      { ...GEMMA3_1B, final_logit_softcapping: 30.0 },
      'config.json: final_logit_softcapping 30 is not supported (Gemma 3 has no softcapping: null)',
    ],
    [
      'attn_logit_softcapping',
      { ...GEMMA3_1B, attn_logit_softcapping: 50.0 },
      'config.json: attn_logit_softcapping 50 is not supported',
    ],
    [
      'the multimodal Gemma 3 (text_config inside)',
      {
        architectures: ['Gemma3ForConditionalGeneration'],
        model_type: 'gemma3',
        text_config: { ...GEMMA3_1B, model_type: 'gemma3_text' },
      },
      "config.json: architectures 'Gemma3ForConditionalGeneration' (multimodal Gemma 3, model_type 'gemma3') is not supported: load a text-only Gemma 3 checkpoint",
    ],
    [
      'bidirectional attention (EmbeddingGemma)',
      { ...GEMMA3_270M, use_bidirectional_attention: true },
      'config.json: use_bidirectional_attention true is not supported',
    ],
    [
      'attention biases',
      { ...GEMMA3_1B, attention_bias: true },
      'config.json: attention_bias true is not supported',
    ],
    [
      'an exact-GELU activation',
      { ...GEMMA3_1B, hidden_activation: 'gelu' },
      "config.json: hidden_activation 'gelu' is not supported (supported: gelu_pytorch_tanh)",
    ],
    [
      'layer_types of the wrong length',
      { ...GEMMA3_270M, layer_types: [SLIDING, FULL] },
      "config.json: layer_types must list 'sliding_attention' or 'full_attention' for each of the 18 layers",
    ],
    [
      'an unknown layer type',
      { ...GEMMA3_270M, layer_types: [...GEMMA3_270M.layer_types.slice(1), 'chunked_attention'] },
      "config.json: layer_types[17] 'chunked_attention' is not supported",
    ],
    [
      'a zero pattern',
      { ...GEMMA3_1B, sliding_window_pattern: 0 },
      'config.json: sliding_window_pattern must be a positive integer, got 0',
    ],
    [
      'a zero window',
      { ...GEMMA3_1B, sliding_window: 0 },
      'config.json: sliding_window must be a positive integer, got 0',
    ],
    [
      'a head dim past 256',
      { ...GEMMA3_1B, head_dim: 512 },
      'config.json: head_dim 512 is not supported: the attention kernels take a multiple of 8 from 8 to 256',
    ],
    [
      'query_pre_attn_scalar 0',
      { ...GEMMA3_1B, query_pre_attn_scalar: 0 },
      'config.json: query_pre_attn_scalar must be a finite number > 0, got 0',
    ],
    [
      'flat rope_parameters (not per layer type)',
      { ...GEMMA3_1B, rope_parameters: { rope_type: 'default', rope_theta: 1e6 } },
      'config.json: rope_parameters.rope_type is not a layer type (Gemma 3 lists full_attention and sliding_attention)',
    ],
    [
      'a yarn global RoPE',
      { ...GEMMA3_1B, rope_parameters: { full_attention: { rope_type: 'yarn', factor: 4 } } },
      "config.json: rope_parameters.full_attention.rope_type 'yarn' is not supported",
    ],
  ];
  for (const [what, config, message] of refusals) {
    it(`refuses ${what}, naming the field`, () => {
      expect(() => parseModelConfig(config)).toThrow(message);
    });
  }
});
