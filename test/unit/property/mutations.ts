// Fuzz targets for the engine's parsers, shared by the property tests (engine-parsers.test.ts) and the
// one-off measurement (bench/fuzz/engine.ts). A target builds a valid input from a seed, mutates it (bytes or
// JSON values), and runs the real parser on it. The outcome of one case is:
//   ok      the parser accepted the input and the result is sound;
//   clear   it threw an error that is not a bare TypeError/RangeError/SyntaxError/stack overflow and whose
//           message names the file;
//   crash   it threw anything else;
//   silent  it accepted the input but the result is not sound (each target says what it checks).

import { bytesSource, memoryFiles, readJson } from '../../../src/engine/checkpoint/byte-source.ts';
import {
  openSafetensors,
  writeSafetensors,
  type WriteTensor,
} from '../../../src/engine/checkpoint/safetensors.ts';
import { parseModelConfig, type ModelSpec } from '../../../src/engine/model/config.ts';
import { loadTokenizer } from '../../../src/engine/model/tokenizer.ts';
import { buildTinyModel } from '../../fixtures/tiny-models.ts';
import {
  blockLinears,
  resolveTargets,
  type LoraConfig,
  type LoraModelShape,
} from '../../../src/engine/lora/config.ts';
import { loraLayout, segmentView } from '../../../src/engine/lora/init.ts';
import { exportPeftAdapter, importPeftAdapter, peftKey } from '../../../src/engine/lora/peft.ts';
import { IGNORE_INDEX, parseDataset, type DataTokenizer } from '../../../src/engine/train/data.ts';
import { Rng } from '../../../src/engine/rng.ts';

export type Outcome = 'ok' | 'clear' | 'crash' | 'silent';
export type Files = Record<string, Uint8Array>;

export interface FuzzCase {
  files: Files;
  /** Dataset cases: the sequence length to parse with. */
  seq?: number;
}

export interface FuzzTarget {
  name: string;
  valid(rng: Rng): FuzzCase;
  /** Structural mutations this target knows beyond the generic byte and JSON ones. */
  special?: (c: FuzzCase, rng: Rng) => FuzzCase;
  /** Runs the parser; returns null when the result is sound, else why it is silently wrong. Throws on refusal. */
  run(c: FuzzCase): Promise<string | null>;
}

const enc = new TextEncoder();
const utf8 = (s: string): Uint8Array => enc.encode(s);
/** Lossy decoding, for reading back the valid inputs this module builds (and spotting U+FFFD). */
const lossy = (b: Uint8Array): string => new TextDecoder().decode(b);

// ---- classification ----

export function isClearError(e: unknown, files: readonly string[]): boolean {
  if (!(e instanceof Error)) return false;
  if (e instanceof TypeError || e instanceof RangeError || e instanceof SyntaxError) return false;
  if (/Maximum call stack|out of memory|Invalid array length/i.test(e.message)) return false;
  return files.some((f) => e.message.includes(f));
}

export async function classify(
  target: FuzzTarget,
  c: FuzzCase,
): Promise<{ outcome: Outcome; detail: string; error?: unknown }> {
  try {
    const silent = await target.run(c);
    return silent === null ? { outcome: 'ok', detail: '' } : { outcome: 'silent', detail: silent };
  } catch (e) {
    const detail = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return {
      outcome: isClearError(e, Object.keys(c.files)) ? 'clear' : 'crash',
      detail: detail.slice(0, 300),
      error: e,
    };
  }
}

// ---- generic mutations ----

/** Values that break parsers: wrong types, extreme numbers, prototype names. RAW:… is spliced in unquoted. */
const WEIRD_VALUES: unknown[] = [
  null,
  true,
  '',
  'x',
  '__proto__',
  'constructor',
  'toString',
  [],
  {},
  [1, 2],
  { __proto__x: 1 },
  0,
  -1,
  -100,
  0.5,
  2 ** 31,
  2 ** 53 + 2,
  1e300,
  -1e300,
  'RAW:1e999',
  'RAW:-1e999',
  'RAW:NaN',
  'RAW:' + '['.repeat(20000) + ']'.repeat(20000),
  'RAW:' + '{"a":'.repeat(20000) + '1' + '}'.repeat(20000),
];
const PROTO_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf'];

function stringifyWithRaw(value: unknown): string {
  return JSON.stringify(value).replace(/"RAW:((?:[^"\\]|\\.)*)"/g, (_, raw: string) => raw);
}

function pick<T>(rng: Rng, list: readonly T[]): T {
  return list[rng.int(list.length)];
}

/** Every (container, key) inside a JSON value, so one can be replaced. */
function slots(
  value: unknown,
  out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [],
) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push({ parent: value, key: i });
      slots(v, out);
    });
  } else if (typeof value === 'object' && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      out.push({ parent: value as Record<string, unknown>, key: k });
      slots(v, out);
    }
  }
  return out;
}

/** A JSON-level edit: a prototype-named key added (to the object holding slot `slot`), a field deleted or replaced. */
export type JsonEdit =
  | { kind: 'protoKey'; slot: number; key: string; value: unknown }
  | { kind: 'delete'; slot: number }
  | { kind: 'replace'; slot: number; value: unknown };

/** A byte-level edit: truncation, bit flips, bytes spliced in (invalid UTF-8). */
export type ByteEdit =
  | { kind: 'truncate'; at: number }
  | { kind: 'flip'; flips: [at: number, bit: number][] }
  | { kind: 'insert'; at: number; bytes: number[] };

/** One mutation of a case; indices are taken modulo what they index, so any numbers make a valid edit. */
export type Mutation =
  | { kind: 'special'; seed: number }
  | { kind: 'bytes'; file: number; edit: ByteEdit }
  | { kind: 'json'; file: number; edit: JsonEdit };

export const INVALID_UTF8 = [[0xff], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xfe, 0xfe]];
export { PROTO_KEYS, WEIRD_VALUES };

export function applyJsonEdit(value: unknown, edit: JsonEdit): string {
  const copy: unknown = structuredClone(value);
  const all = slots(copy);
  const slot = all.length > 0 ? all[Math.abs(edit.slot) % all.length] : null;
  if (edit.kind === 'protoKey' || slot === null) {
    const host = slot && !Array.isArray(slot.parent) ? slot.parent : copy;
    if (typeof host === 'object' && host !== null && !Array.isArray(host) && edit.kind === 'protoKey') {
      Object.defineProperty(host, edit.key, {
        value: edit.value,
        enumerable: true,
        configurable: true,
        writable: true,
      });
    }
    return stringifyWithRaw(copy);
  }
  if (edit.kind === 'delete' && !Array.isArray(slot.parent)) delete slot.parent[slot.key as string];
  else if (edit.kind !== 'delete') (slot.parent as Record<string | number, unknown>)[slot.key] = edit.value;
  return stringifyWithRaw(copy);
}

export function applyByteEdit(bytes: Uint8Array, edit: ByteEdit): Uint8Array {
  const out = new Uint8Array(bytes);
  const at = (i: number, n: number) => Math.abs(i) % n;
  switch (edit.kind) {
    case 'truncate':
      return out.slice(0, at(edit.at, out.length + 1));
    case 'flip':
      if (out.length > 0) for (const [i, bit] of edit.flips) out[at(i, out.length)] ^= 1 << (bit & 7);
      return out;
    case 'insert': {
      const i = at(edit.at, out.length + 1);
      return new Uint8Array([...out.slice(0, i), ...edit.bytes, ...out.slice(i)]);
    }
  }
}

function randomJsonEdit(value: unknown, rng: Rng): JsonEdit {
  const n = slots(value).length;
  const kind = rng.int(4);
  if (kind === 0 || n === 0) {
    const slot = n > 0 ? rng.int(n) : 0;
    const key = pick(rng, PROTO_KEYS);
    return { kind: 'protoKey', slot, key, value: pick(rng, WEIRD_VALUES) };
  }
  const slot = rng.int(n);
  if (kind === 1) return { kind: 'delete', slot };
  return { kind: 'replace', slot, value: pick(rng, WEIRD_VALUES) };
}

function randomByteEdit(length: number, rng: Rng): ByteEdit {
  switch (rng.int(4)) {
    case 1: {
      const flips: [number, number][] = [];
      for (let k = 1 + rng.int(4); k > 0 && length > 0; k--) flips.push([rng.int(length), rng.int(8)]);
      return { kind: 'flip', flips };
    }
    case 2: {
      const bytes = pick(rng, INVALID_UTF8);
      return { kind: 'insert', at: rng.int(length + 1), bytes };
    }
    default:
      return { kind: 'truncate', at: rng.int(length + 1) };
  }
}

/** Applies one mutation to a case (bytes of one file, a JSON field of one file, or the target's own). */
export function applyMutation(target: FuzzTarget, base: FuzzCase, m: Mutation, rng?: Rng): FuzzCase {
  if (m.kind === 'special')
    return target.special ? target.special(base, rng ?? new Rng('special', m.seed)) : base;
  const names = Object.keys(base.files);
  const name = names[Math.abs(m.file) % names.length];
  const bytes = base.files[name];
  const json = m.kind === 'json' ? jsonOf(name, bytes) : undefined;
  const mutated = json && m.kind === 'json' ? json.rebuild(applyJsonEdit(json.value, m.edit)) : bytes;
  const edited = m.kind === 'bytes' ? applyByteEdit(bytes, m.edit) : mutated;
  return { ...base, files: { ...base.files, [name]: edited } };
}

/** One random mutation (the measurement's sequence of draws). */
export function mutate(target: FuzzTarget, base: FuzzCase, rng: Rng): FuzzCase {
  const names = Object.keys(base.files);
  const file = rng.int(names.length);
  const name = names[file];
  const roll = rng.int(10);
  if (target.special && roll < 3) return applyMutation(target, base, { kind: 'special', seed: 0 }, rng);
  const json = roll < 6 ? undefined : jsonOf(name, base.files[name]);
  if (json === undefined) {
    return applyMutation(target, base, {
      kind: 'bytes',
      file,
      edit: randomByteEdit(base.files[name].length, rng),
    });
  }
  return applyMutation(target, base, { kind: 'json', file, edit: randomJsonEdit(json.value, rng) });
}

/** A file's JSON part (a .json file, a safetensors header, one JSONL row) and how to put text back. */
function jsonOf(
  name: string,
  bytes: Uint8Array,
): { value: unknown; rebuild: (text: string) => Uint8Array } | undefined {
  if (name.endsWith('.json')) return { value: JSON.parse(lossy(bytes)), rebuild: utf8 };
  if (name.endsWith('.safetensors')) {
    const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
    const data = bytes.slice(8 + n);
    return {
      value: JSON.parse(lossy(bytes.slice(8, 8 + n))),
      rebuild: (text) => {
        const header = utf8(text);
        const out = new Uint8Array(8 + header.length + data.length);
        new DataView(out.buffer).setBigUint64(0, BigInt(header.length), true);
        out.set(header, 8);
        out.set(data, 8 + header.length);
        return out;
      },
    };
  }
  if (name.endsWith('.jsonl')) {
    const rows = lossy(bytes).split('\n');
    const i = rows.length > 0 ? rows.length >> 1 : 0;
    return {
      value: JSON.parse(rows[i]),
      rebuild: (text) => utf8([...rows.slice(0, i), text, ...rows.slice(i + 1)].join('\n')),
    };
  }
  return undefined;
}

// ---- safetensors ----

function someTensors(rng: Rng): Record<string, WriteTensor> {
  const tensors: Record<string, WriteTensor> = {};
  for (let k = 1 + rng.int(3); k > 0; k--) {
    const shape = [1 + rng.int(4), 1 + rng.int(4)];
    tensors[`layer.${k}.weight`] = {
      dtype: pick(rng, ['F32', 'F16', 'BF16'] as const),
      shape,
      data: Array.from({ length: shape[0] * shape[1] }, () => rng.normal()),
    };
  }
  return tensors;
}

export const safetensorsTarget: FuzzTarget = {
  name: 'safetensors',
  valid: (rng) => ({ files: { 'model.safetensors': writeSafetensors(someTensors(rng), { format: 'pt' }) } }),
  async run(c) {
    const bytes = c.files['model.safetensors'];
    const file = await openSafetensors(bytesSource('model.safetensors', bytes));
    for (const t of file.tensors.values()) {
      if (t.offset < file.dataOffset || t.offset + t.byteLength > bytes.length)
        return `'${t.name}' outside the file`;
    }
    return null;
  },
};

// ---- HF config.json ----

const LLAMA_CONFIG = {
  architectures: ['LlamaForCausalLM'],
  hidden_size: 64,
  intermediate_size: 128,
  num_attention_heads: 4,
  num_key_value_heads: 2,
  num_hidden_layers: 2,
  vocab_size: 300,
  max_position_embeddings: 256,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  bos_token_id: 1,
  eos_token_id: 2,
  torch_dtype: 'float32',
};
const GPT2_CONFIG = {
  architectures: ['GPT2LMHeadModel'],
  n_embd: 32,
  n_head: 4,
  n_layer: 2,
  n_positions: 128,
  vocab_size: 300,
  layer_norm_epsilon: 1e-5,
};
const QWEN_CONFIG = {
  ...LLAMA_CONFIG,
  architectures: ['Qwen2ForCausalLM'],
  rope_parameters: { rope_type: 'default', rope_theta: 1000000 },
};

/** What a sound spec looks like: sizes positive safe integers within reason, every number finite. */
export function specProblem(spec: ModelSpec): string | null {
  if (!['llama', 'qwen2', 'mistral', 'gpt2'].includes(spec.family as string))
    return `family ${String(spec.family)}`;
  for (const key of [
    'hidden',
    'layers',
    'heads',
    'kvHeads',
    'headDim',
    'ffn',
    'vocab',
    'maxPositions',
  ] as const) {
    const v = spec[key];
    if (!Number.isSafeInteger(v) || v < 1 || v > 2 ** 31) return `${key} = ${v}`;
  }
  for (const key of ['rmsNormEps', 'layerNormEps', 'ropeTheta'] as const) {
    const v = spec[key];
    if (v !== null && !(Number.isFinite(v) && v > 0)) return `${key} = ${v}`;
  }
  if (spec.hidden * spec.ffn > 2 ** 40 || spec.vocab * spec.hidden > 2 ** 40) return 'weights beyond any GPU';
  return null;
}

export const configTarget: FuzzTarget = {
  name: 'hf-config',
  valid: (rng) => ({
    files: { 'config.json': utf8(JSON.stringify(pick(rng, [LLAMA_CONFIG, GPT2_CONFIG, QWEN_CONFIG]))) },
  }),
  async run(c) {
    const json = await readJson(memoryFiles('fuzz', c.files), 'config.json');
    const spec = parseModelConfig(json as Record<string, unknown>, 'config.json');
    return specProblem(spec);
  },
};

// ---- datasets ----

/** A character tokenizer: id = code unit % 250 + 3; BOS 1, EOS 2, PAD 0. */
export const charTokenizer: DataTokenizer = {
  encode: (text, o) => [
    ...(o?.addSpecialTokens ? [1] : []),
    ...[...text].map((ch) => (ch.charCodeAt(0) % 250) + 3),
  ],
  applyChatTemplate: (msgs, { addGenerationPrompt }) =>
    msgs.map((m) => `<${m.role}>${m.content}|`).join('') + (addGenerationPrompt ? '<assistant>' : ''),
  eosId: 2,
  bosId: 1,
  padId: 0,
  vocabSize: 256,
};

const WORDS = ['one', 'two', 'add', 'reverse', 'éclair', '日本', 'the', 'cat', '42', 'x y'];
const phrase = (rng: Rng): string => Array.from({ length: 1 + rng.int(4) }, () => pick(rng, WORDS)).join(' ');

function datasetFile(rng: Rng): [string, string] {
  const rows = 2 + rng.int(4);
  const many = <T>(f: () => T): T[] => Array.from({ length: rows }, f);
  const jsonl = (f: () => unknown): string =>
    many(f)
      .map((r) => JSON.stringify(r))
      .join('\n');
  switch (rng.int(7)) {
    case 0:
      return ['train.jsonl', jsonl(() => ({ prompt: phrase(rng), completion: ' ' + phrase(rng) }))];
    case 1:
      return [
        'train.jsonl',
        jsonl(() => ({ instruction: phrase(rng), input: phrase(rng), output: phrase(rng) })),
      ];
    case 2:
      return [
        'train.jsonl',
        jsonl(() => ({
          messages: [
            { role: 'user', content: phrase(rng) },
            { role: 'assistant', content: phrase(rng) },
          ],
        })),
      ];
    case 3:
      return [
        'train.jsonl',
        jsonl(() => {
          const n = 2 + rng.int(3);
          return { input_ids: [5, 6, 7, 8].slice(0, n), labels: [-100, 6, 7, 8].slice(0, n) };
        }),
      ];
    case 4:
      return ['train.jsonl', jsonl(() => ({ text: phrase(rng) }))];
    case 5:
      return [
        'train.csv',
        ['text,label', ...many(() => `"${phrase(rng)}",${pick(rng, ['even', 'odd'])}`)].join('\n'),
      ];
    default:
      return ['train.txt', many(() => phrase(rng)).join('\n\n')];
  }
}

/** Targets the parsed examples give: what training would compute a loss on. */
function lossTargets(labels: Int32Array): number {
  let n = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) n++;
  return n;
}

export const datasetTarget: FuzzTarget = {
  name: 'dataset',
  valid(rng) {
    const [name, text] = datasetFile(rng);
    return { files: { [name]: utf8(text) }, seq: 512 };
  },
  // A short --seq leaves prompts with no room for their completion; all-masked labels leave nothing at all.
  special(c, rng) {
    const [name] = Object.keys(c.files);
    if (rng.int(2) === 0) return { ...c, seq: 1 + rng.int(4) };
    const ids = Array.from({ length: 3 }, () =>
      JSON.stringify({ input_ids: [5, 6, 7], labels: [-100, -100, -100] }),
    );
    return name.endsWith('.jsonl')
      ? { files: { [name]: utf8(ids.join('\n')) }, seq: c.seq }
      : { ...c, seq: 1 };
  },
  async run(c) {
    const [name] = Object.keys(c.files);
    const bytes = c.files[name];
    const data = parseDataset(name, bytes, charTokenizer, { seq: c.seq ?? 512 });
    const targets = data.examples.reduce((s, e) => s + lossTargets(e.labels), 0);
    if (targets === 0) return `${data.examples.length} examples, no loss target`;
    for (const e of data.examples) {
      for (const id of e.ids) if (id < 0 || id >= (charTokenizer.vocabSize ?? 0)) return `token id ${id}`;
    }
    if (lossy(bytes).includes('\ufffd')) return 'invalid UTF-8 decoded as U+FFFD';
    return null;
  },
};

// ---- PEFT adapter import ----

export const PEFT_SHAPE: LoraModelShape = {
  family: 'llama',
  hidden: 24,
  ffn: 40,
  heads: 4,
  kvHeads: 2,
  headDim: 6,
  layers: 2,
};

function adapterFiles(config: LoraConfig, rng: Rng, poison?: number): Files {
  const layout = loraLayout(resolveTargets(config, PEFT_SHAPE), config.r);
  const params = Float32Array.from({ length: layout.totalElements }, () => rng.normal() * 0.1);
  const files = exportPeftAdapter(config, PEFT_SHAPE, layout, params, { baseModel: 'tiny' });
  let weights: Uint8Array = files['adapter_model.safetensors'];
  if (poison !== undefined) {
    // The exporter refuses non-finite weights, so a poisoned file is written directly.
    params[rng.int(params.length)] = poison;
    const tensors: Record<string, WriteTensor> = {};
    for (const s of layout.segments)
      tensors[peftKey(s.name)] = { dtype: 'F32', shape: s.shape, data: segmentView(params, s) };
    weights = writeSafetensors(tensors, { format: 'pt' });
  }
  return { 'adapter_config.json': utf8(files['adapter_config.json']), 'adapter_model.safetensors': weights };
}

function loraConfig(rng: Rng, r = 1 + rng.int(8)): LoraConfig {
  return {
    r,
    alpha: 16,
    dropout: 0.05,
    targets: pick(rng, [['q_proj', 'v_proj'], ['down_proj'], 'all-linear'] as const),
    rslora: rng.int(2) === 1,
  };
}

export const peftTarget: FuzzTarget = {
  name: 'peft-import',
  valid: (rng) => ({ files: adapterFiles(loraConfig(rng), rng) }),
  // Weights that are consistent with their config but wrong: non-finite values, a rank beyond the layers.
  special(_c, rng) {
    if (rng.int(2) === 0)
      return { files: adapterFiles(loraConfig(rng), rng, pick(rng, [NaN, Infinity, -Infinity])) };
    return { files: adapterFiles(loraConfig(rng, pick(rng, [25, 41, 64])), rng) };
  },
  async run(c) {
    const config = c.files['adapter_config.json'];
    const adapter = await importPeftAdapter(config, c.files['adapter_model.safetensors'], PEFT_SHAPE);
    for (let i = 0; i < adapter.params.length; i++) {
      if (!Number.isFinite(adapter.params[i])) return `non-finite weight ${adapter.params[i]}`;
    }
    const modules = resolveTargets(adapter.config, PEFT_SHAPE);
    const limit = Math.min(...modules.map((m) => Math.max(m.inFeatures, m.outFeatures)));
    if (adapter.config.r > limit) return `r = ${adapter.config.r} > ${limit}`;
    if (blockLinears(PEFT_SHAPE).length === 0) return 'no layers';
    return null;
  },
};

// ---- tokenizer.json + tokenizer_config.json ----

let tinyFiles: Record<string, string | Uint8Array> | null = null;
/** The tiny llama's files (built once: its weights take a moment). */
function tokenizerFiles(): Record<string, string | Uint8Array> {
  tinyFiles ??= buildTinyModel({ arch: 'llama' }).files;
  return tinyFiles;
}

export const tokenizerTarget: FuzzTarget = {
  name: 'tokenizer',
  valid: () => {
    const files = tokenizerFiles();
    const bytes = (name: string): Uint8Array => {
      const f = files[name];
      return typeof f === 'string' ? utf8(f) : f;
    };
    return {
      files: {
        'tokenizer.json': bytes('tokenizer.json'),
        'tokenizer_config.json': bytes('tokenizer_config.json'),
      },
    };
  },
  async run(c) {
    const tokenizer = await loadTokenizer(memoryFiles('tiny', { ...tokenizerFiles(), ...c.files }));
    if (tokenizer.vocabSize > 2 ** 24) return `vocabulary of ${tokenizer.vocabSize}`;
    const ids = tokenizer.encode('hello world');
    if (ids.some((id) => !(Number.isInteger(id) && id >= 0 && id < tokenizer.vocabSize)))
      return `ids ${ids.join()}`;
    return null;
  },
};

export const TARGETS: readonly FuzzTarget[] = [
  safetensorsTarget,
  configTarget,
  datasetTarget,
  peftTarget,
  tokenizerTarget,
];

/** Runs `cases` mutated inputs through a target, counting outcomes; `examples` keeps a few per outcome. */
export async function fuzz(
  target: FuzzTarget,
  cases: number,
  seed: number,
): Promise<{ counts: Record<Outcome, number>; examples: Partial<Record<Outcome, string[]>> }> {
  const counts: Record<Outcome, number> = { ok: 0, clear: 0, crash: 0, silent: 0 };
  const examples: Partial<Record<Outcome, string[]>> = {};
  for (let i = 0; i < cases; i++) {
    const rng = new Rng(seed, target.name, i);
    const c = mutate(target, target.valid(rng), rng);
    const { outcome, detail } = await classify(target, c);
    counts[outcome]++;
    const list = (examples[outcome] ??= []);
    if (list.length < 5 && outcome !== 'ok') list.push(detail);
  }
  return { counts, examples };
}
