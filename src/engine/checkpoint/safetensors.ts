// safetensors: an 8-byte little-endian header length N, N bytes of JSON
//   { "__metadata__": { str: str }, name: { dtype, shape, data_offsets: [begin, end] }, ... }
// padded with spaces, then the data region; offsets are relative to its start (8 + N).
// The reader takes a random-access ByteSource and reads the header, then one tensor at a time, so a
// checkpoint is never held in JS memory whole. Sharded checkpoints come with model.safetensors.index.json
// ({ metadata, weight_map: { tensor: shard file } }).

import type { ByteSource, ModelFiles } from './byte-source.ts';
import { readJson } from './byte-source.ts';
import type { SafetensorsDtype } from './dtypes.ts';
import { DTYPE_BYTES, fromFloat32 } from './dtypes.ts';
import { FileFormatError, ownValue, parseJson } from '../json.ts';

export type { SafetensorsDtype } from './dtypes.ts';

/** Dtypes the format knows but this engine does not load (named in the refusal, unlike unknown ones). */
const OTHER_DTYPES = [
  'F64',
  'F8_E4M3',
  'F8_E5M2',
  'I64',
  'I32',
  'I16',
  'I8',
  'U64',
  'U32',
  'U16',
  'U8',
  'BOOL',
];
/** The reference implementation refuses headers over 100 MB; so do we. */
const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** The file holding it. */
  file: string;
  /** Absolute byte offset in the file. */
  offset: number;
  byteLength: number;
}

export interface SafetensorsFile {
  name: string;
  source: ByteSource;
  metadata: Record<string, string>;
  /** In the order of their data in the file. */
  tensors: Map<string, TensorInfo>;
  /** Byte offset of the data region (8 + header length). */
  dataOffset: number;
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** Reads and validates the header of one safetensors file. Errors name the file, the tensor and why. */
export async function openSafetensors(source: ByteSource): Promise<SafetensorsFile> {
  const file = source.name;
  const fail: (why: string) => never = (why) => {
    throw new FileFormatError(file, why);
  };
  if (source.size < 8) fail(`truncated: ${source.size} bytes, not even the 8-byte header length`);
  const lenBytes = await source.read(0, 8);
  const n = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
  if (n > source.size - 8) fail(`header length ${n} runs past the end of the file (${source.size} bytes)`);
  if (n > MAX_HEADER_BYTES) fail(`header length ${n} exceeds ${MAX_HEADER_BYTES} bytes`);
  const dataOffset = 8 + n;
  const dataBytes = source.size - dataOffset;
  let header: unknown;
  try {
    header = parseJson(await source.read(8, n), file);
  } catch (e) {
    // The offset of a bad byte is counted from the header's start (file offset 8).
    if (e instanceof FileFormatError) fail(`header is ${e.reason}`);
    throw e;
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    fail('header is not a JSON object');
  }
  const metadata: Record<string, string> = {};
  const tensors: TensorInfo[] = [];
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) {
        fail('__metadata__ must be an object of strings');
      }
      for (const [k, v] of Object.entries(entry as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(`__metadata__.${k} must be a string, got ${JSON.stringify(v)}`);
        // defineProperty: a plain assignment to '__proto__' would set the prototype, not keep the entry.
        Object.defineProperty(metadata, k, {
          value: v,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
      continue;
    }
    const bad: (why: string) => never = (why) => fail(`tensor '${name}': ${why}`);
    if (typeof entry !== 'object' || entry === null) bad('entry is not an object');
    const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>;
    if (typeof dtype !== 'string') bad('dtype is missing');
    if (!Object.hasOwn(DTYPE_BYTES, dtype as string)) {
      bad(
        OTHER_DTYPES.includes(dtype as string)
          ? `dtype ${dtype} is not supported (supported: F32, F16, BF16)`
          : `unknown dtype '${dtype}'`,
      );
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      bad(`shape must be a list of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      bad(`data_offsets must be [begin, end] with 0 ≤ begin ≤ end, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    const d = dtype as SafetensorsDtype;
    const expected = elementCount(shape as number[]) * DTYPE_BYTES[d];
    if (end - begin !== expected) {
      bad(
        `shape ${JSON.stringify(shape)} × ${DTYPE_BYTES[d]} bytes (${d}) = ${expected} bytes, ` +
          `but data_offsets [${begin}, ${end}] hold ${end - begin}`,
      );
    }
    if (end > dataBytes) {
      bad(`data_offsets [${begin}, ${end}] run past the end of the data region (${dataBytes} bytes)`);
    }
    tensors.push({
      name,
      dtype: d,
      shape: shape as number[],
      file,
      offset: dataOffset + begin,
      byteLength: end - begin,
    });
  }
  tensors.sort((a, b) => a.offset - b.offset || a.byteLength - b.byteLength);
  for (let i = 1; i < tensors.length; i++) {
    const prev = tensors[i - 1];
    const t = tensors[i];
    if (t.offset < prev.offset + prev.byteLength) {
      fail(
        `tensors '${prev.name}' [${prev.offset - dataOffset}, ${prev.offset - dataOffset + prev.byteLength}) ` +
          `and '${t.name}' [${t.offset - dataOffset}, ${t.offset - dataOffset + t.byteLength}) overlap`,
      );
    }
  }
  return { name: file, source, metadata, tensors: new Map(tensors.map((t) => [t.name, t])), dataOffset };
}

/** One checkpoint, single-file or sharded: every tensor by name, read one at a time. */
export class Checkpoint {
  readonly tensors = new Map<string, TensorInfo>();
  readonly #sources = new Map<string, ByteSource>();

  constructor(readonly files: SafetensorsFile[]) {
    for (const f of files) {
      this.#sources.set(f.name, f.source);
      for (const [name, info] of f.tensors) {
        const other = this.tensors.get(name);
        if (other) throw new Error(`${f.name}: tensor '${name}' is also in ${other.file}`);
        this.tensors.set(name, info);
      }
    }
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t)
      throw new Error(
        `checkpoint: tensor '${name}' is missing (files: ${this.files.map((f) => f.name).join(', ')})`,
      );
    return t;
  }

  /** The raw little-endian bytes of one tensor. */
  async read(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.#sources.get(t.file)!.read(t.offset, t.byteLength);
  }

  /** Tensors one at a time, in file and offset order (sequential reads), `names` or all. */
  async *stream(names?: Iterable<string>): AsyncGenerator<{ info: TensorInfo; bytes: Uint8Array }> {
    const wanted = names ? [...names].map((n) => this.info(n)) : [...this.tensors.values()];
    const order = this.files.map((f) => f.name);
    wanted.sort((a, b) => order.indexOf(a.file) - order.indexOf(b.file) || a.offset - b.offset);
    for (const info of wanted) yield { info, bytes: await this.read(info.name) };
  }
}

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';

/** Opens model.safetensors, or the shards model.safetensors.index.json lists, checking the index. */
export async function openCheckpoint(files: ModelFiles): Promise<Checkpoint> {
  if (files.has(INDEX_FILE)) {
    const index = await readJson(files, INDEX_FILE);
    const map = (index as { weight_map?: unknown } | null)?.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) {
      throw new Error(`${INDEX_FILE}: weight_map is missing or not an object`);
    }
    const byShard = new Map<string, string[]>();
    for (const [tensor, shard] of Object.entries(map as Record<string, unknown>)) {
      if (typeof shard !== 'string')
        throw new Error(`${INDEX_FILE}: weight_map['${tensor}'] is not a file name`);
      if (!byShard.has(shard)) byShard.set(shard, []);
      byShard.get(shard)!.push(tensor);
    }
    const shards: SafetensorsFile[] = [];
    for (const [shard, names] of [...byShard].sort(([a], [b]) => (a < b ? -1 : 1))) {
      if (!files.has(shard)) {
        throw new Error(`${INDEX_FILE}: shard '${shard}' (holding '${names[0]}') is not in ${files.label}`);
      }
      const f = await openSafetensors(await files.open(shard));
      for (const name of names) {
        if (!f.tensors.has(name))
          throw new Error(`${shard}: tensor '${name}' listed in ${INDEX_FILE} is missing`);
      }
      shards.push(f);
    }
    const checkpoint = new Checkpoint(shards);
    for (const name of checkpoint.tensors.keys()) {
      const listed = ownValue(map as Record<string, string>, name);
      const actual = checkpoint.tensors.get(name)!.file;
      if (listed !== undefined && listed !== actual) {
        throw new Error(`${INDEX_FILE}: tensor '${name}' is listed in ${listed} but found in ${actual}`);
      }
    }
    return checkpoint;
  }
  if (files.has(SINGLE_FILE)) return new Checkpoint([await openSafetensors(await files.open(SINGLE_FILE))]);
  const other = files.names().find((n) => n.endsWith('.bin') || n.endsWith('.pt') || n.endsWith('.gguf'));
  throw new Error(
    `${files.label}: no ${SINGLE_FILE} or ${INDEX_FILE}` +
      (other ? ` (found ${other}: only safetensors checkpoints are supported)` : ''),
  );
}

export interface WriteTensor {
  dtype: SafetensorsDtype;
  shape: readonly number[];
  /** Raw little-endian bytes, or values to convert to `dtype` (rounded to nearest even). */
  data: Uint8Array | ArrayLike<number>;
}

/**
 * Serialises tensors as the reference implementation does: header JSON (`__metadata__` first when given),
 * padded with spaces to a multiple of 8 bytes, tensors laid out in sorted name order.
 */
export function writeSafetensors(
  tensors: Record<string, WriteTensor>,
  metadata?: Record<string, string>,
): Uint8Array<ArrayBuffer> {
  const names = Object.keys(tensors).sort();
  const header: Record<string, unknown> = {};
  if (metadata && Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    const t = tensors[name];
    const bytes = t.data instanceof Uint8Array ? t.data : fromFloat32(t.data, t.dtype);
    const expected = elementCount(t.shape) * DTYPE_BYTES[t.dtype];
    if (bytes.byteLength !== expected) {
      throw new Error(
        `writeSafetensors: tensor '${name}' has ${bytes.byteLength} bytes, shape ${JSON.stringify(t.shape)} ${t.dtype} needs ${expected}`,
      );
    }
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.byteLength] };
    blobs.push(bytes);
    offset += bytes.byteLength;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const pad = (8 - (json.byteLength % 8)) % 8;
  if (pad) json = new TextEncoder().encode(JSON.stringify(header) + ' '.repeat(pad));
  const out = new Uint8Array(8 + json.byteLength + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  out.set(json, 8);
  let at = 8 + json.byteLength;
  for (const b of blobs) {
    out.set(b, at);
    at += b.byteLength;
  }
  return out;
}
