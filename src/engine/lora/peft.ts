// PEFT adapter I/O: adapter_config.json + adapter_model.safetensors as PEFT's save_pretrained writes them,
// so `PeftModel.from_pretrained(base, dir)` loads our adapters, and the inverse for adapters trained anywhere.
//   keys    base_model.model.<module path>.lora_A.weight  (r, in)   f32
//           base_model.model.<module path>.lora_B.weight  (out, r)  f32
// GPT-2's Conv1D layers get fan_in_fan_out = true in the config; their A and B keep the (r, in), (out, r)
// shapes (PEFT transposes the base weight, never the adapter).
// The config's field set is that of adapter_config.json files written by PEFT 0.19.1, keys sorted and
// indented by 2 as PEFT's to_json_file does.

import type { ByteSource } from '../checkpoint/byte-source.ts';
import { bytesSource } from '../checkpoint/byte-source.ts';
import { toFloat32 } from '../checkpoint/dtypes.ts';
import { openSafetensors, writeSafetensors, type WriteTensor } from '../checkpoint/safetensors.ts';
import {
  ALL_LINEAR,
  FAMILY_LINEARS,
  LoraConfigError,
  peftTargetModules,
  rankProblem,
  resolveTargets,
  validateLoraConfig,
  type LoraConfig,
  type LoraModelShape,
} from './config.ts';
import { loraLayout, segmentView, type LoraLayout } from './init.ts';
import { FileFormatError, parseJson, type UncheckedJson } from '../json.ts';

export const PEFT_VERSION = '0.19.1';
export const ADAPTER_CONFIG_FILE = 'adapter_config.json';
export const ADAPTER_WEIGHTS_FILE = 'adapter_model.safetensors';
export const PEFT_KEY_PREFIX = 'base_model.model.';

export interface PeftExportOptions {
  /** base_model_name_or_path, e.g. 'HuggingFaceTB/SmolLM2-135M'. */
  baseModel: string;
  /** The Hub revision the base model was loaded at; null when unknown. */
  revision?: string | null;
}

/** The adapter_config.json object, fields as PEFT writes them. */
export function adapterConfig(
  config: LoraConfig,
  shape: LoraModelShape,
  options: PeftExportOptions,
): Record<string, unknown> {
  validateLoraConfig(config);
  resolveTargets(config, shape); // every target must exist in this model
  const fields: Record<string, unknown> = {
    alora_invocation_tokens: null,
    alpha_pattern: {},
    arrow_config: null,
    auto_mapping: null,
    base_model_name_or_path: options.baseModel,
    bias: 'none',
    corda_config: null,
    ensure_weight_tying: false,
    eva_config: null,
    exclude_modules: null,
    fan_in_fan_out: shape.family === 'gpt2',
    inference_mode: true,
    init_lora_weights: true,
    layer_replication: null,
    layers_pattern: null,
    layers_to_transform: null,
    loftq_config: {},
    lora_alpha: config.alpha,
    lora_bias: false,
    lora_dropout: config.dropout,
    lora_ga_config: null,
    megatron_config: null,
    megatron_core: 'megatron.core',
    modules_to_save: null,
    peft_type: 'LORA',
    peft_version: PEFT_VERSION,
    qalora_group_size: 16,
    r: config.r,
    rank_pattern: {},
    revision: options.revision ?? null,
    target_modules: peftTargetModules(config, shape),
    target_parameters: null,
    task_type: 'CAUSAL_LM',
    trainable_token_indices: null,
    use_bdlora: null,
    use_dora: false,
    use_qalora: false,
    use_rslora: config.rslora,
  };
  return fields;
}

/** Serialised as json.dump(indent=2, sort_keys=True) does; lora_dropout keeps Python's float spelling. */
export function adapterConfigText(
  config: LoraConfig,
  shape: LoraModelShape,
  options: PeftExportOptions,
): string {
  const fields = adapterConfig(config, shape, options);
  const sorted = Object.fromEntries(
    Object.keys(fields)
      .sort()
      .map((k) => [k, fields[k]]),
  );
  return JSON.stringify(sorted, null, 2).replace(/("lora_dropout": )(-?\d+)(,?)$/m, '$1$2.0$3');
}

/** The safetensors key of a layout segment. */
export function peftKey(segmentName: string): string {
  return PEFT_KEY_PREFIX + segmentName;
}

export interface PeftAdapterFiles {
  [ADAPTER_CONFIG_FILE]: string;
  [ADAPTER_WEIGHTS_FILE]: Uint8Array<ArrayBuffer>;
}

/** Both files of a PEFT adapter from the flat parameter buffer laid out by `layout`. */
export function exportPeftAdapter(
  config: LoraConfig,
  shape: LoraModelShape,
  layout: LoraLayout,
  params: Float32Array,
  options: PeftExportOptions,
): PeftAdapterFiles {
  const modules = resolveTargets(config, shape);
  if (layout.r !== config.r)
    throw new RangeError(`exportPeftAdapter: layout has r = ${layout.r}, config r = ${config.r}`);
  const paths = modules.map((m) => m.path).join();
  if (layout.modules.map((m) => m.path).join() !== paths) {
    throw new RangeError('exportPeftAdapter: the layout was not built for these targets of this model');
  }
  if (params.length !== layout.totalElements) {
    throw new RangeError(
      `exportPeftAdapter: params has ${params.length} elements, the layout ${layout.totalElements}`,
    );
  }
  const tensors: Record<string, WriteTensor> = {};
  for (const s of layout.segments) {
    const data = segmentView(params, s);
    const bad = firstNonFinite(data);
    if (bad >= 0) {
      // importPeftAdapter (and PEFT) would load it as is and every output would be NaN: refuse to write it.
      throw new Error(
        `exportPeftAdapter: tensor '${peftKey(s.name)}' holds ${data[bad]} at index ${bad}; not writing an adapter with non-finite weights`,
      );
    }
    tensors[peftKey(s.name)] = { dtype: 'F32', shape: s.shape, data };
  }
  return {
    [ADAPTER_CONFIG_FILE]: adapterConfigText(config, shape, options),
    [ADAPTER_WEIGHTS_FILE]: writeSafetensors(tensors, { format: 'pt' }),
  };
}

/** Index of the first NaN or ±Infinity, or −1. */
function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

export class PeftImportError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'PeftImportError';
  }
}

export interface ImportedAdapter {
  config: LoraConfig;
  baseModel: string | null;
  revision: string | null;
  layout: LoraLayout;
  /** Flat f32 buffer in `layout` (gaps zero). */
  params: Float32Array<ArrayBuffer>;
}

/**
 * Reads adapter_config.json into a LoraConfig, refusing (by field name) every PEFT option that changes the
 * adapter's math in ways this engine does not implement.
 */
export function parseAdapterConfig(input: string | Uint8Array | UncheckedJson): {
  config: LoraConfig;
  baseModel: string | null;
  revision: string | null;
} {
  const file = ADAPTER_CONFIG_FILE;
  let json: unknown = input;
  if (typeof input === 'string' || input instanceof Uint8Array) {
    try {
      json = parseJson(input, file);
    } catch (e) {
      if (e instanceof FileFormatError) throw new PeftImportError(file, e.reason);
      throw e;
    }
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw new PeftImportError(file, 'expected a JSON object');
  const j = json as UncheckedJson;
  const fail = (field: string, why: string): never => {
    throw new PeftImportError(file, `${field} ${why}`);
  };
  if (j.peft_type !== 'LORA') fail('peft_type', `must be "LORA", got ${JSON.stringify(j.peft_type)}`);
  const absent = (field: string, what: string, ok: (v: unknown) => boolean): void => {
    const v = j[field];
    if (v !== undefined && v !== null && !ok(v))
      fail(field, `${JSON.stringify(v)} is not supported (${what})`);
  };
  const emptyObject = (v: unknown): boolean =>
    typeof v === 'object' && v !== null && Object.keys(v).length === 0;
  const emptyList = (v: unknown): boolean => Array.isArray(v) && v.length === 0;
  absent('use_dora', 'DoRA is not implemented', (v) => v === false);
  absent('bias', "only 'none'", (v) => v === 'none');
  absent('lora_bias', 'no bias on lora_B', (v) => v === false);
  absent('modules_to_save', 'only adapters are trained', emptyList);
  absent('layers_to_transform', 'every layer is adapted', emptyList);
  absent('rank_pattern', 'one rank for every module', emptyObject);
  absent('alpha_pattern', 'one alpha for every module', emptyObject);
  absent('layer_replication', 'not implemented', () => false);
  absent('exclude_modules', 'not implemented', emptyList);
  absent('target_parameters', 'not implemented', emptyList);
  absent('trainable_token_indices', 'not implemented', () => false);
  absent('use_qalora', 'not implemented', (v) => v === false);
  absent('use_bdlora', 'not implemented', (v) => v === false);
  absent('alora_invocation_tokens', 'not implemented', () => false);
  absent('task_type', "only 'CAUSAL_LM'", (v) => v === 'CAUSAL_LM');
  const tm = j.target_modules;
  let targets: readonly string[] | typeof ALL_LINEAR;
  if (tm === ALL_LINEAR) targets = ALL_LINEAR;
  else if (Array.isArray(tm) && tm.every((t) => typeof t === 'string')) targets = tm as string[];
  else if (typeof tm === 'string') {
    return fail(
      'target_modules',
      `as a regular expression (${JSON.stringify(tm)}) is not supported; give a list of names`,
    );
  } else return fail('target_modules', `must be a list of module names, got ${JSON.stringify(tm)}`);
  const dropout = j.lora_dropout ?? 0;
  const rslora = j.use_rslora ?? false;
  const config: LoraConfig = {
    r: j.r as number,
    alpha: (j.lora_alpha ?? 8) as number,
    dropout: dropout as number,
    targets,
    rslora: rslora as boolean,
  };
  try {
    validateLoraConfig(config);
  } catch (e) {
    if (e instanceof LoraConfigError) {
      const name: Record<string, string> = {
        r: 'r',
        alpha: 'lora_alpha',
        dropout: 'lora_dropout',
        targets: 'target_modules',
        rslora: 'use_rslora',
      };
      fail(name[e.field] ?? e.field, e.message.replace(/^LoraConfig\.\w+: /, ''));
    }
    throw e;
  }
  const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return { config, baseModel: str(j.base_model_name_or_path), revision: str(j.revision) };
}

/**
 * Loads a PEFT adapter for a model of `shape`: the config is validated, every expected tensor must be present
 * with its shape, and tensors the config does not explain (other modules, DoRA magnitudes, saved embeddings)
 * are refused by name. F16 and BF16 adapters are widened to f32.
 */
export async function importPeftAdapter(
  configInput: string | Uint8Array | UncheckedJson,
  weights: Uint8Array | ByteSource,
  shape: LoraModelShape,
): Promise<ImportedAdapter> {
  const { config, baseModel, revision } = parseAdapterConfig(configInput);
  let modules;
  try {
    modules = resolveTargets(config, shape);
  } catch (e) {
    if (e instanceof LoraConfigError) {
      throw new PeftImportError(
        ADAPTER_CONFIG_FILE,
        `target_modules ${e.message.replace(/^LoraConfig\.targets: /, '')} (known: ${FAMILY_LINEARS[shape.family].join(', ')})`,
      );
    }
    throw e;
  }
  const rank = rankProblem(config.r, modules);
  if (rank !== null) throw new PeftImportError(ADAPTER_CONFIG_FILE, `r ${rank}`);
  const source = weights instanceof Uint8Array ? bytesSource(ADAPTER_WEIGHTS_FILE, weights) : weights;
  let file;
  try {
    file = await openSafetensors(source);
  } catch (e) {
    if (e instanceof FileFormatError) throw new PeftImportError(e.file, e.reason);
    throw e;
  }
  const layout = loraLayout(modules, config.r);
  const params = new Float32Array(layout.totalElements);
  const expected = new Set(layout.segments.map((s) => peftKey(s.name)));
  for (const name of file.tensors.keys()) {
    if (!expected.has(name)) {
      throw new PeftImportError(
        source.name,
        `unexpected tensor '${name}' (the config's target_modules ${JSON.stringify(peftTargetModules(config, shape))} ` +
          `with r = ${config.r} explain only lora_A/lora_B of those modules)`,
      );
    }
  }
  for (const s of layout.segments) {
    const key = peftKey(s.name);
    const info = file.tensors.get(key);
    if (!info) throw new PeftImportError(source.name, `tensor '${key}' is missing`);
    if (info.shape.length !== 2 || info.shape[0] !== s.shape[0] || info.shape[1] !== s.shape[1]) {
      throw new PeftImportError(
        source.name,
        `tensor '${key}' has shape ${JSON.stringify(info.shape)}, expected ${JSON.stringify(s.shape)} ` +
          `(${s.kind === 'A' ? '[r, in_features]' : '[out_features, r]'})`,
      );
    }
    const values = toFloat32(await source.read(info.offset, info.byteLength), info.dtype);
    const bad = firstNonFinite(values);
    if (bad >= 0)
      throw new PeftImportError(source.name, `tensor '${key}' holds ${values[bad]} at index ${bad}`);
    segmentView(params, s).set(values);
  }
  return { config, baseModel, revision, layout, params };
}
