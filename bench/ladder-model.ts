// The ladder's models for bench:train at their real shapes: each entry's config.json completed with its family's
// real structure (layer types, NoPE layers, dtype), cut to `--layers` blocks, with random weights written
// straight into safetensors bytes in memory, then opened and loaded by openModel / loadModel as a user's
// checkpoint is. The checkpoint's dtype is the one the GPU's precision reads fastest: F16 for f16 (a view, no
// conversion), BF16 for f32 (a shift); f16 → f32 on the host would take a minute for a 1B model. A bench needs shapes, not a tokenizer: the tiny fixtures' tokenizer satisfies openModel.

import { memoryFiles } from '../src/engine/checkpoint/byte-source.ts';
import { f32ToBf16Bits } from '../src/engine/checkpoint/dtypes.ts';
import { f32ToF16Bits } from '../src/engine/gpu/half.ts';
import type { Gpu, Precision } from '../src/engine/gpu/index.ts';
import { parseModelConfig, type ModelSpec } from '../src/engine/model/config.ts';
import { LADDER, type LadderEntry } from '../src/engine/model/ladder.ts';
import { loadModel, type LoadedModel } from '../src/engine/model/load.ts';
import { openModel } from '../src/engine/model/open.ts';
import { listWeights, weightNames, type WeightName } from '../src/engine/model/weights.ts';
import { tinySpecialIds, tinyTokenizer } from '../test/fixtures/tiny-models.ts';

/** A ladder entry's short name: its repo name, lower case, without '-pt' (e.g. 'qwen3-0.6b', 'gemma-3-1b'). */
export function shortName(entry: LadderEntry): string {
  return entry.id.split('/')[1].toLowerCase().replace(/-pt$/, '');
}

export const LADDER_NAMES: readonly string[] = LADDER.map(shortName);

export function ladderModel(name: string): LadderEntry | undefined {
  return LADDER.find((entry) => shortName(entry) === name);
}

/** The tiny fixtures' tokenizer has about 300 tokens: a cut vocabulary keeps at least this many rows. */
export const MIN_BENCH_VOCAB = 512;

/** How much of the model to build: all of it unless cut (a software driver's memory and binding limits). */
/** The checkpoint dtypes the bench writes. */
export type BenchDtype = 'F16' | 'BF16';

export const benchDtype = (precision: Precision): BenchDtype => (precision === 'f16' ? 'F16' : 'BF16');

export interface BenchCut {
  /** Blocks kept (the first ones); default all. */
  layers?: number;
  /** Vocabulary rows kept; default all. */
  vocab?: number;
}

/**
 * The entry's config.json as its repo has it (the fields the ladder leaves out filled with the real values),
 * cut as `cut` says: layer_types, no_rope_layers and max_window_layers follow the depth.
 */
export function benchConfig(
  entry: LadderEntry,
  cut: BenchCut = {},
  dtype: BenchDtype = 'F16',
): Record<string, unknown> {
  const full = entry.config.num_hidden_layers as number;
  const depth = cut.layers ?? full;
  if (!Number.isInteger(depth) || depth < 1 || depth > full) {
    throw new Error(`--layers: expected an integer from 1 to ${full} for ${entry.id}, got ${cut.layers}`);
  }
  const fullVocab = entry.config.vocab_size as number;
  const vocab = cut.vocab ?? fullVocab;
  if (!Number.isInteger(vocab) || vocab < MIN_BENCH_VOCAB || vocab > fullVocab) {
    throw new Error(
      `--vocab: expected an integer from ${MIN_BENCH_VOCAB} to ${fullVocab} for ${entry.id}, got ${cut.vocab}`,
    );
  }
  const ids = tinySpecialIds();
  const config: Record<string, unknown> = {
    ...entry.config,
    torch_dtype: dtype === 'F16' ? 'float16' : 'bfloat16',
    // The tiny tokenizer's ids (the bench never decodes: these only have to exist in the tokenizer).
    bos_token_id: ids.endoftext,
    eos_token_id: ids.endoftext,
  };
  const perLayer = <T>(pick: (l: number) => T) =>
    Array.from({ length: full }, (_, l) => pick(l)).slice(0, depth);
  switch (entry.config.model_type) {
    case 'gemma3_text':
      // Gemma 3: five sliding-window layers, then a global one (its configs list them in layer_types).
      Object.assign(config, {
        rms_norm_eps: 1e-6,
        attention_bias: false,
        attn_logit_softcapping: null,
        final_logit_softcapping: null,
        _sliding_window_pattern: 6,
        layer_types: perLayer((l) => ((l + 1) % 6 === 0 ? 'full_attention' : 'sliding_attention')),
      });
      break;
    case 'qwen3':
      Object.assign(config, { rms_norm_eps: 1e-6, max_window_layers: depth, sliding_window: null });
      break;
    case 'qwen2':
      Object.assign(config, { rms_norm_eps: 1e-6, max_window_layers: Math.min(21, depth) });
      break;
    case 'smollm3':
      // 1 = the layer uses RoPE, 0 = NoPE: every no_rope_layer_interval-th layer without.
      Object.assign(config, {
        rms_norm_eps: 1e-6,
        no_rope_layers: perLayer((l) =>
          (l + 1) % (entry.config.no_rope_layer_interval as number) === 0 ? 0 : 1,
        ),
      });
      break;
  }
  config.num_hidden_layers = depth;
  config.vocab_size = vocab;
  return config;
}

/** Stored values of one kind of parameter: a uniform draw's half-width and centre. */
function valueRange(spec: ModelSpec, t: WeightName): { scale: number; centre: number } {
  if (t.layout === 'out_in' || t.layout === 'in_out') {
    const fanIn = t.layout === 'out_in' ? t.shape[1] : t.shape[0];
    return { scale: 1 / Math.sqrt(fanIn), centre: 0 };
  }
  // Gemma scales the embedding by √C: stored small so the residual stream stays in f16's range.
  if (t.layout === 'table') return { scale: spec.family === 'gemma3' ? 0.02 : 0.05, centre: 0 };
  if (t.name.endsWith('.bias')) return { scale: 0.02, centre: 0 };
  // Norm weights: Gemma stores w of (1 + w), around 0; the others the scale itself, around 1.
  return { scale: 0.1, centre: spec.family === 'gemma3' ? 0 : 1 };
}

/**
 * model.safetensors of random `dtype` values for every parameter of `spec`, written into one buffer: a table
 * of 4,096 values per tensor, indexed by an LCG, so a billion parameters take seconds and no f32 copy.
 */
export function randomCheckpoint(
  spec: ModelSpec,
  dtype: BenchDtype = 'F16',
  seed = 1,
): Uint8Array<ArrayBuffer> {
  const tensors = listWeights(weightNames(spec)).sort((a, b) => (a.name < b.name ? -1 : 1));
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  let offset = 0;
  for (const t of tensors) {
    const bytes = 2 * t.shape.reduce((a, b) => a * b, 1);
    header[t.name] = { dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  const text = JSON.stringify(header);
  const json = new TextEncoder().encode(text + ' '.repeat((8 - (text.length % 8)) % 8));
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  const values = new Uint16Array(out.buffer, 8 + json.byteLength, offset / 2);
  const table = new Uint16Array(4096);
  const bits = dtype === 'F16' ? f32ToF16Bits : f32ToBf16Bits;
  let s = seed >>> 0;
  let at = 0;
  for (const t of tensors) {
    const { scale, centre } = valueRange(spec, t);
    for (let i = 0; i < table.length; i++) table[i] = bits(centre + scale * ((2 * i + 1) / 4096 - 1));
    const end = at + t.shape.reduce((a, b) => a * b, 1);
    for (; at < end; at++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      values[at] = table[s >>> 20];
    }
  }
  return out;
}

/** The ladder model `entry`, cut as `cut` says, through openModel and loadModel; its files as a user's would be. */
export async function loadLadderModel(
  gpu: Gpu,
  entry: LadderEntry,
  cut: BenchCut,
  precision: Precision,
): Promise<LoadedModel> {
  const dtype = benchDtype(precision);
  const config = benchConfig(entry, cut, dtype);
  const spec = parseModelConfig(config, `${entry.id}/config.json`);
  const tokenizer = tinyTokenizer(false);
  const files = memoryFiles(`${entry.id} (random weights)`, {
    'config.json': JSON.stringify(config),
    'model.safetensors': randomCheckpoint(spec, dtype),
    'tokenizer.json': JSON.stringify(tokenizer.json),
    'tokenizer_config.json': JSON.stringify(tokenizer.config),
  });
  return loadModel(gpu, await openModel(files), { precision });
}
