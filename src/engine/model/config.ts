// HF config.json → ModelSpec: the few numbers and switches the engine needs, read once, with every
// feature we do not implement refused by name (a silently ignored rope_scaling gives wrong logits, not an
// error). Defaults for absent fields are those of the transformers config classes.

import { ATTENTION_HEAD_DIMS, attentionSupportsHeadDim } from '../kernels/attention.ts';
import type { RopeScaling } from '../kernels/rope.ts';
import { FileFormatError, ownValue, parseJson, type UncheckedJson } from '../json.ts';

export type ModelFamily = 'llama' | 'qwen2' | 'qwen3' | 'smollm3' | 'mistral' | 'gemma3' | 'gpt2';
/** silu: SwiGLU MLP; gelu_tanh: Gemma's GeGLU MLP (gelu_pytorch_tanh of the gate); gelu_new: GPT-2's MLP. */
export type Activation = 'silu' | 'gelu_tanh' | 'gelu_new';
export type TorchDtype = 'float32' | 'float16' | 'bfloat16';
export type { RopeScaling } from '../kernels/rope.ts';

/** A RoPE: its base θ and frequency scaling (null: none). */
export interface Rope {
  theta: number;
  scaling: RopeScaling | null;
}

export interface ModelSpec {
  family: ModelFamily;
  /** The HF class name from `architectures[0]`, e.g. 'LlamaForCausalLM'. */
  architecture: string;
  /** C: hidden size (n_embd). */
  hidden: number;
  /** L: transformer blocks. */
  layers: number;
  /** H: query heads. */
  heads: number;
  /** Hkv: key/value heads (GQA); equals heads for plain multi-head attention. */
  kvHeads: number;
  /** D: head dimension; hidden / heads unless the config says otherwise (`head_dim`). */
  headDim: number;
  /**
   * Sliding-window attention, per layer: the keys each query sees (itself included), or null for global causal
   * attention. Absent: every layer global.
   */
  layerWindows?: (number | null)[];
  /** F: MLP inner size (intermediate_size, or n_inner, default 4·n_embd for gpt2). */
  ffn: number;
  /** V: vocabulary size (rows of the embedding). */
  vocab: number;
  /** Longest sequence the position scheme was trained for. */
  maxPositions: number;
  norm: 'rmsnorm' | 'layernorm';
  /** rms_norm_eps (rmsnorm families); null for layernorm. */
  rmsNormEps: number | null;
  /** layer_norm_epsilon (gpt2); null for rmsnorm. */
  layerNormEps: number | null;
  positions: 'rope' | 'learned';
  /** RoPE base θ; null for learned positions (gpt2). */
  ropeTheta: number | null;
  /** rope_scaling's frequency scaling (Llama 3.x 'llama3', 'linear'); null for none. */
  ropeScaling: RopeScaling | null;
  /**
   * Gemma 3: the RoPE of its sliding-window layers (rope_local_base_freq, never scaled); ropeTheta and
   * ropeScaling are then the global layers'. Absent: every layer rotates by ropeTheta / ropeScaling.
   */
  slidingRope?: Rope;
  /** Attention's score scale when it is not 1/√D (Gemma 3: query_pre_attn_scalar^−½). */
  attentionScale?: number;
  tieWordEmbeddings: boolean;
  /** Bias on the q/k/v projections (qwen2, gpt2, llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on the attention output projection (gpt2, llama with attention_bias). */
  oBias: boolean;
  /** Bias on the MLP projections (gpt2 only). */
  mlpBias: boolean;
  /** Qwen3, Gemma 3: an RMSNorm (weights (D)) over each head of q and k, before RoPE. */
  qkNorm: boolean;
  /** SmolLM3: the layers that skip RoPE (no_rope_layers entries of 0), ascending; empty for every other family. */
  noRopeLayers: number[];
  /** silu / gelu_tanh: gated MLP (gate, up, down); gelu_new: GPT-2 MLP (fc, proj). */
  activation: Activation;
  bosTokenId: number | null;
  /** All ids that end generation (configs may list several). */
  eosTokenIds: number[];
  /** Dtype the checkpoint was saved in, when the config says. */
  torchDtype: TorchDtype | null;
}

/**
 * Sizes past these are no model a browser GPU holds; refusing them keeps a typo (or 1e300) from becoming a
 * huge allocation or a silently wrapped index later.
 */
const MAX_SIZE = 2 ** 24;
/** Positions are only a bound on the sequence length, so they may be larger (2^31: an i32 index). */
const MAX_POSITIONS = 2 ** 31 - 1;

const ARCHITECTURES: Record<string, ModelFamily> = {
  LlamaForCausalLM: 'llama',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
  SmolLM3ForCausalLM: 'smollm3',
  MistralForCausalLM: 'mistral',
  Gemma3ForCausalLM: 'gemma3',
  GPT2LMHeadModel: 'gpt2',
};

class ConfigReader {
  constructor(
    readonly file: string,
    readonly json: UncheckedJson,
    /** Path of `json` inside config.json, e.g. 'rope_scaling.' ('' at the top). */
    readonly prefix = '',
  ) {}

  fail(field: string, why: string): never {
    throw new FileFormatError(this.file, `${this.prefix}${field} ${why}`);
  }

  /** A reader of the object at `field`, or null when the field is absent or null. */
  nested(field: string): ConfigReader | null {
    const v = this.json[field];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'object' || Array.isArray(v)) this.fail(field, 'must be null or an object');
    return new ConfigReader(this.file, v as UncheckedJson, `${this.prefix}${field}.`);
  }

  has(field: string): boolean {
    return this.json[field] !== undefined && this.json[field] !== null;
  }

  int(field: string, fallback?: number, max = MAX_SIZE): number {
    const v = this.json[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.fail(field, 'is missing');
    }
    if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) {
      this.fail(field, `must be a positive integer, got ${JSON.stringify(v)}`);
    }
    if (v > max) this.fail(field, `${v} is out of range (at most ${max})`);
    return v;
  }

  num(field: string, fallback?: number): number {
    const v = this.json[field];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      this.fail(field, 'is missing');
    }
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
      const got = typeof v === 'number' ? String(v) : JSON.stringify(v);
      this.fail(field, `must be a finite number > 0, got ${got}`);
    }
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.json[field];
    if (v === undefined || v === null) return fallback;
    if (typeof v !== 'boolean') this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  /** Refuses a boolean feature switched on that we do not implement. */
  refuseTrue(field: string, what: string): void {
    if (this.bool(field, false)) this.fail(field, `true is not supported (${what})`);
  }

  optionalId(field: string, fallback: number | null): number | null {
    const v = this.json[field];
    if (v === undefined) return fallback;
    if (v === null) return null;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v >= MAX_SIZE) {
      this.fail(field, `must be a token id, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  ids(field: string, fallback: number[]): number[] {
    const v = this.json[field];
    if (v === undefined || v === null) return fallback;
    const list = Array.isArray(v) ? v : [v];
    for (const id of list) {
      if (typeof id !== 'number' || !Number.isInteger(id) || id < 0 || id >= MAX_SIZE) {
        this.fail(field, `must be a token id or a list of them, got ${JSON.stringify(v)}`);
      }
    }
    return list as number[];
  }
}

/**
 * Parses a config.json (already JSON-decoded or as text). `file` names it in errors.
 * Throws an Error naming the file and the field for anything unsupported or malformed.
 */
export function parseModelConfig(input: string | UncheckedJson, file = 'config.json'): ModelSpec {
  const json = typeof input === 'string' ? parseJson(input, file) : input;
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new FileFormatError(file, 'expected a JSON object');
  }
  const r: ConfigReader = new ConfigReader(file, json as UncheckedJson);
  const archs = r.json.architectures;
  let architecture: string;
  if (Array.isArray(archs) && typeof archs[0] === 'string') architecture = archs[0];
  else if (typeof r.json.model_type === 'string') {
    const byType: Record<string, string> = {
      llama: 'LlamaForCausalLM',
      qwen2: 'Qwen2ForCausalLM',
      qwen3: 'Qwen3ForCausalLM',
      smollm3: 'SmolLM3ForCausalLM',
      mistral: 'MistralForCausalLM',
      gemma3_text: 'Gemma3ForCausalLM',
      gpt2: 'GPT2LMHeadModel',
    };
    architecture = ownValue(byType, r.json.model_type) ?? r.json.model_type;
  } else r.fail('architectures', 'is missing');
  // An own-property lookup: 'constructor' or '__proto__' must not find Object's.
  const family = ownValue(ARCHITECTURES, architecture);
  if (architecture === 'Gemma3ForConditionalGeneration' || r.json.model_type === 'gemma3') {
    // Its weights live under language_model.* beside a vision tower: not a text checkpoint this engine reads.
    r.fail(
      'architectures',
      `'${architecture}' (multimodal Gemma 3, model_type 'gemma3') is not supported: load a text-only ` +
        `Gemma 3 checkpoint (Gemma3ForCausalLM, model_type 'gemma3_text', e.g. google/gemma-3-270m or gemma-3-1b-pt)`,
    );
  }
  if (!family) {
    r.fail(
      'architectures',
      `'${architecture}' is not supported (supported: ${Object.keys(ARCHITECTURES).join(', ')})`,
    );
  }
  const spec =
    family === 'gpt2'
      ? parseGpt2(r, architecture)
      : family === 'gemma3'
        ? parseGemma3(r, architecture)
        : parseRopeFamily(r, family, architecture);
  const dtype = r.json.torch_dtype ?? r.json.dtype;
  if (dtype !== undefined && dtype !== null) {
    if (dtype !== 'float32' && dtype !== 'float16' && dtype !== 'bfloat16') {
      r.fail('torch_dtype', `'${String(dtype)}' is not supported (supported: float32, float16, bfloat16)`);
    }
    spec.torchDtype = dtype as TorchDtype;
  }
  return spec;
}

/** A config's RoPE: its base θ and the frequency scaling, if any (see RopeScaling in kernels/rope.ts). */
function ropeParameters(r: ConfigReader, fallback: number): Rope {
  // transformers ≥ 5 writes rope_parameters { rope_type, rope_theta, ...scaling }; older configs rope_theta and
  // rope_scaling { rope_type (or type), ...scaling }.
  const params = r.nested('rope_parameters');
  if (params) {
    const scaling = ropeScaling(params);
    if (!params.has('rope_theta')) return { theta: r.num('rope_theta', fallback), scaling };
    return { theta: params.num('rope_theta'), scaling };
  }
  const scaling = r.nested('rope_scaling');
  return { theta: r.num('rope_theta', fallback), scaling: scaling && ropeScaling(scaling) };
}

/** The scaling of a rope_scaling / rope_parameters object; anything but the types implemented is refused. */
function ropeScaling(s: ConfigReader): RopeScaling | null {
  const typeField = s.json.rope_type !== undefined ? 'rope_type' : 'type';
  const type = s.json.rope_type ?? s.json.type ?? 'default';
  switch (type) {
    case 'default':
      return null;
    case 'linear':
      return { type: 'linear', factor: s.num('factor') };
    case 'llama3': {
      const lowFreqFactor = s.num('low_freq_factor');
      const highFreqFactor = s.num('high_freq_factor');
      if (!(highFreqFactor > lowFreqFactor)) {
        s.fail('high_freq_factor', `${highFreqFactor} must be greater than low_freq_factor ${lowFreqFactor}`);
      }
      return {
        type: 'llama3',
        factor: s.num('factor'),
        lowFreqFactor,
        highFreqFactor,
        originalMaxPositions: s.int('original_max_position_embeddings', undefined, MAX_POSITIONS),
      };
    }
    default:
      return s.fail(typeField, `'${String(type)}' is not supported (supported: default, linear, llama3)`);
  }
}

/**
 * SmolLM3's NoPE layers: no_rope_layers has a 1 for a layer that uses RoPE and a 0 for one that does not
 * (SmolLM3Config); without it, every no_rope_layer_interval-th layer (default 4) skips RoPE.
 */
function noRopeLayers(r: ConfigReader, layers: number): number[] {
  const list = r.json.no_rope_layers;
  if (list === undefined || list === null) {
    const interval = r.int('no_rope_layer_interval', 4);
    return Array.from({ length: layers }, (_, l) => l).filter((l) => (l + 1) % interval === 0);
  }
  if (!Array.isArray(list) || list.length < layers || list.some((v) => v !== 0 && v !== 1)) {
    r.fail(
      'no_rope_layers',
      `must list 0 or 1 for each of the ${layers} layers, got ${JSON.stringify(list)}`,
    );
  }
  return Array.from({ length: layers }, (_, l) => l).filter((l) => list[l] === 0);
}

/**
 * Refuses a head dim the attention kernels cannot run, here rather than in the first step of every trial.
 * `field` is the config field to blame; `derived`, its value and what it divides when the head dim is implied.
 */
function checkHeadDim(r: ConfigReader, field: string, headDim: number, derived?: string): number {
  if (attentionSupportsHeadDim(headDim)) return headDim;
  const what = derived ? `${derived} makes head dim ${headDim}, which` : `${headDim}`;
  r.fail(field, `${what} is not supported: the attention kernels take ${ATTENTION_HEAD_DIMS}`);
}

function parseRopeFamily(r: ConfigReader, family: ModelFamily, architecture: string): ModelSpec {
  const hidden = r.int('hidden_size');
  const heads = r.int('num_attention_heads');
  const kvHeads = r.int('num_key_value_heads', heads);
  if (heads % kvHeads !== 0) {
    r.fail('num_key_value_heads', `${kvHeads} must divide num_attention_heads ${heads}`);
  }
  let headDim: number;
  if (r.has('head_dim')) headDim = checkHeadDim(r, 'head_dim', r.int('head_dim'));
  else if (family === 'qwen3')
    headDim = checkHeadDim(r, 'head_dim', 128); // Qwen3Config's default
  else {
    if (hidden % heads !== 0) r.fail('num_attention_heads', `${heads} must divide hidden_size ${hidden}`);
    headDim = checkHeadDim(r, 'num_attention_heads', hidden / heads, `${heads} (of hidden_size ${hidden})`);
  }
  const act = r.json.hidden_act ?? 'silu';
  if (act !== 'silu') r.fail('hidden_act', `'${String(act)}' is not supported (supported: silu)`);
  const maxPositions = r.int(
    'max_position_embeddings',
    family === 'mistral' ? 4096 * 32 : 2048,
    MAX_POSITIONS,
  );
  const layers = r.int('num_hidden_layers');
  // SmolLM3Config's default θ is 2e6 (its checkpoints state theirs).
  const rope = ropeParameters(r, family === 'smollm3' ? 2e6 : 10000);
  let qkvBias = false;
  let oBias = false;
  if (family === 'llama' || family === 'qwen3' || family === 'smollm3') {
    // Their attention puts the bias on all four projections when attention_bias is set.
    qkvBias = oBias = r.bool('attention_bias', false);
    r.refuseTrue('mlp_bias', 'no bias on the MLP projections in this engine');
  } else if (family === 'qwen2') {
    qkvBias = true; // Qwen2Attention: q/k/v have a bias, o_proj has none, whatever the config says.
  }
  const noRope = family === 'smollm3' ? noRopeLayers(r, layers) : [];
  return {
    family,
    architecture,
    hidden,
    layers,
    heads,
    kvHeads,
    headDim,
    layerWindows: slidingWindows(r, family, layers, noRope),
    ffn: r.int('intermediate_size'),
    vocab: r.int('vocab_size'),
    maxPositions,
    norm: 'rmsnorm',
    rmsNormEps: r.num('rms_norm_eps', 1e-6),
    layerNormEps: null,
    positions: 'rope',
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings: r.bool('tie_word_embeddings', false),
    qkvBias,
    oBias,
    mlpBias: false,
    qkNorm: family === 'qwen3',
    noRopeLayers: noRope,
    activation: 'silu',
    bosTokenId: r.optionalId('bos_token_id', family === 'qwen2' || family === 'qwen3' ? null : 1),
    eosTokenIds: r.ids('eos_token_id', family === 'qwen2' || family === 'qwen3' ? [] : [2]),
    torchDtype: null,
  };
}

function parseGpt2(r: ConfigReader, architecture: string): ModelSpec {
  const hidden = r.int('n_embd', 768);
  const heads = r.int('n_head', 12);
  if (hidden % heads !== 0) r.fail('n_head', `${heads} must divide n_embd ${hidden}`);
  checkHeadDim(r, 'n_head', hidden / heads, `${heads} (of n_embd ${hidden})`);
  const act = r.json.activation_function ?? 'gelu_new';
  // gelu_pytorch_tanh is the same tanh approximation as gelu_new.
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    r.fail(
      'activation_function',
      `'${String(act)}' is not supported (supported: gelu_new, gelu_pytorch_tanh)`,
    );
  }
  if (!r.bool('scale_attn_weights', true)) {
    r.fail('scale_attn_weights', 'false is not supported (scores are always scaled by 1/√D)');
  }
  r.refuseTrue('scale_attn_by_inverse_layer_idx', 'per-layer score scaling is not implemented');
  r.refuseTrue('add_cross_attention', 'cross-attention is not implemented');
  const eos = r.optionalId('eos_token_id', 50256);
  return {
    family: 'gpt2',
    architecture,
    hidden,
    layers: r.int('n_layer', 12),
    heads,
    kvHeads: heads,
    headDim: hidden / heads,
    ffn: r.int('n_inner', 4 * hidden),
    vocab: r.int('vocab_size', 50257),
    maxPositions: r.int('n_positions', 1024, MAX_POSITIONS),
    norm: 'layernorm',
    rmsNormEps: null,
    layerNormEps: r.num('layer_norm_epsilon', 1e-5),
    positions: 'learned',
    ropeTheta: null,
    ropeScaling: null,
    tieWordEmbeddings: r.bool('tie_word_embeddings', true),
    qkvBias: true,
    oBias: true,
    mlpBias: true,
    qkNorm: false,
    noRopeLayers: [],
    activation: 'gelu_new',
    bosTokenId: r.optionalId('bos_token_id', 50256),
    eosTokenIds: eos === null ? [] : [eos],
    torchDtype: null,
  };
}

/**
 * The sliding window of each layer (null: global causal attention), as transformers applies it. Mistral: every
 * layer when sliding_window is set (MistralConfig's default 4096; null turns it off). Qwen2 and Qwen3: only with
 * use_sliding_window, and then the layers from max_window_layers (default 28) on (their configs' layer_types).
 * SmolLM3: only with use_sliding_window and a sliding_window (default none), on its NoPE layers. `layer_types`
 * ('sliding_attention' or 'full_attention' per layer), when the config lists them, decides which layers.
 */
function slidingWindows(
  r: ConfigReader,
  family: ModelFamily,
  layers: number,
  noRope: readonly number[],
): (number | null)[] {
  if (family === 'llama' || family === 'gpt2') return Array<null>(layers).fill(null);
  const on = family === 'mistral' || r.bool('use_sliding_window', false);
  const fallback = family === 'smollm3' ? null : 4096;
  const given = r.json.sliding_window === undefined ? fallback : r.json.sliding_window;
  const window = on && given !== null ? r.int('sliding_window', 4096, MAX_POSITIONS) : null;
  const types = r.json.layer_types;
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types) || types.length !== layers) {
      r.fail(
        'layer_types',
        `must list 'sliding_attention' or 'full_attention' for each of the ${layers} layers`,
      );
    }
    return types.map((type, l) => {
      if (type === 'full_attention') return null;
      if (type !== 'sliding_attention') {
        r.fail(
          `layer_types[${l}]`,
          `'${String(type)}' is not supported (supported: sliding_attention, full_attention)`,
        );
      }
      if (window === null) {
        const off = on ? 'sliding_window is null' : 'use_sliding_window is false';
        r.fail(`layer_types[${l}]`, `is sliding_attention but ${off}`);
      }
      return window;
    });
  }
  if (family === 'smollm3')
    return Array.from({ length: layers }, (_, l) => (noRope.includes(l) ? window : null));
  const first = family === 'mistral' ? 0 : maxWindowLayers(r);
  return Array.from({ length: layers }, (_, l) => (l >= first ? window : null));
}

/** Qwen2/Qwen3's max_window_layers: the layers below it attend globally (0 and more than the layers are allowed). */
function maxWindowLayers(r: ConfigReader): number {
  const v = r.json.max_window_layers;
  if (v === undefined || v === null) return 28;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) {
    r.fail('max_window_layers', `must be a whole number ≥ 0, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * Gemma 3 text (Gemma3ForCausalLM, model_type gemma3_text), as Gemma3TextConfig and Gemma3TextModel read it:
 * sliding-window layers interleaved with global ones (layer_types, or every sliding_window_pattern-th layer
 * global), each kind with its own RoPE (global: rope_theta and rope_scaling; sliding: rope_local_base_freq,
 * unscaled; or transformers ≥ 5's rope_parameters per layer type), scores scaled by query_pre_attn_scalar^−½,
 * q/k norms, a GeGLU MLP. Defaults are Gemma3TextConfig's.
 */
function parseGemma3(r: ConfigReader, architecture: string): ModelSpec {
  for (const field of ['final_logit_softcapping', 'attn_logit_softcapping']) {
    if (r.has(field)) {
      r.fail(field, `${JSON.stringify(r.json[field])} is not supported (Gemma 3 has no softcapping: null)`);
    }
  }
  r.refuseTrue('use_bidirectional_attention', 'bidirectional attention (EmbeddingGemma) is not causal LM');
  r.refuseTrue('attention_bias', 'no Gemma 3 checkpoint has attention biases');
  const act = r.json.hidden_activation ?? 'gelu_pytorch_tanh';
  if (act !== 'gelu_pytorch_tanh' && act !== 'gelu_new') {
    r.fail('hidden_activation', `'${String(act)}' is not supported (supported: gelu_pytorch_tanh)`);
  }
  const heads = r.int('num_attention_heads');
  const kvHeads = r.int('num_key_value_heads', 4);
  if (heads % kvHeads !== 0) {
    r.fail('num_key_value_heads', `${kvHeads} must divide num_attention_heads ${heads}`);
  }
  const layers = r.int('num_hidden_layers');
  const window = r.int('sliding_window', 4096, MAX_POSITIONS);
  const sliding = gemma3SlidingLayers(r, layers);
  const { full, local } = gemma3Ropes(r);
  return {
    family: 'gemma3',
    architecture,
    hidden: r.int('hidden_size'),
    layers,
    heads,
    kvHeads,
    headDim: checkHeadDim(r, 'head_dim', r.int('head_dim', 256)),
    layerWindows: sliding.map((s) => (s ? window : null)),
    ffn: r.int('intermediate_size'),
    vocab: r.int('vocab_size', 262208),
    maxPositions: r.int('max_position_embeddings', 131072, MAX_POSITIONS),
    norm: 'rmsnorm',
    rmsNormEps: r.num('rms_norm_eps', 1e-6),
    layerNormEps: null,
    positions: 'rope',
    ropeTheta: full.theta,
    ropeScaling: full.scaling,
    slidingRope: local,
    attentionScale: r.num('query_pre_attn_scalar', 256) ** -0.5,
    tieWordEmbeddings: r.bool('tie_word_embeddings', true),
    qkvBias: false,
    oBias: false,
    mlpBias: false,
    qkNorm: true,
    noRopeLayers: [],
    activation: 'gelu_tanh',
    bosTokenId: r.optionalId('bos_token_id', 2),
    eosTokenIds: r.ids('eos_token_id', [1]),
    torchDtype: null,
  };
}

/**
 * Which Gemma 3 layers slide: layer_types ('sliding_attention' / 'full_attention' per layer), else the older
 * sliding_window_pattern (saved as _sliding_window_pattern by newer transformers; default 6): layer i is global
 * iff (i + 1) % pattern == 0.
 */
function gemma3SlidingLayers(r: ConfigReader, layers: number): boolean[] {
  const types = r.json.layer_types;
  if (types !== undefined && types !== null) {
    if (!Array.isArray(types) || types.length !== layers) {
      r.fail(
        'layer_types',
        `must list 'sliding_attention' or 'full_attention' for each of the ${layers} layers`,
      );
    }
    return types.map((type, l) => {
      if (type !== 'sliding_attention' && type !== 'full_attention') {
        r.fail(
          `layer_types[${l}]`,
          `'${String(type)}' is not supported (supported: sliding_attention, full_attention)`,
        );
      }
      return type === 'sliding_attention';
    });
  }
  const field = r.has('sliding_window_pattern') ? 'sliding_window_pattern' : '_sliding_window_pattern';
  const pattern = r.int(field, 6);
  return Array.from({ length: layers }, (_, l) => (l + 1) % pattern !== 0);
}

/**
 * Gemma 3's two RoPEs. transformers ≥ 5: rope_parameters { full_attention: {...}, sliding_attention: {...} },
 * an absent entry being the default RoPE at rope_theta / rope_local_base_freq. Older configs: rope_theta with
 * rope_scaling for the global layers, rope_local_base_freq unscaled for the sliding ones (Gemma3TextModel's
 * rotary_emb_local: rope_scaling replaced by {"rope_type": "default"}).
 */
function gemma3Ropes(r: ConfigReader): { full: Rope; local: Rope } {
  const fullTheta = r.num('rope_theta', 1_000_000);
  const localTheta = r.num('rope_local_base_freq', 10_000);
  const params = r.nested('rope_parameters');
  if (!params) {
    const scaling = r.nested('rope_scaling');
    return {
      full: { theta: fullTheta, scaling: scaling && ropeScaling(scaling) },
      local: { theta: localTheta, scaling: null },
    };
  }
  for (const key of Object.keys(params.json)) {
    if (key !== 'full_attention' && key !== 'sliding_attention') {
      params.fail(key, 'is not a layer type (Gemma 3 lists full_attention and sliding_attention)');
    }
  }
  const of = (key: string, theta: number): Rope => {
    const entry = params.nested(key);
    if (!entry) return { theta, scaling: null };
    return { theta: entry.has('rope_theta') ? entry.num('rope_theta') : theta, scaling: ropeScaling(entry) };
  };
  return { full: of('full_attention', fullTheta), local: of('sliding_attention', localTheta) };
}
