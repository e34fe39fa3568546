// Random-access byte sources: the one interface every place a model file can come from presents (an
// ArrayBuffer, a Blob or File in the page, a Hub download, a file on disk in Node through src/node/files.ts).
// Readers ask for byte ranges, so a 1 GB checkpoint never sits in JS memory whole.

import { decodeUtf8, parseJson } from '../json.ts';

export interface ByteSource {
  /** File name as the model repo spells it (used in error messages). */
  readonly name: string;
  /** Total size in bytes. */
  readonly size: number;
  /** Exactly `length` bytes from `offset`; rejects if the range is past the end. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** A model's files by name (repo-relative paths, e.g. 'config.json', 'model.safetensors'). */
export interface ModelFiles {
  /** Where the files come from, for messages ('HuggingFaceTB/SmolLM2-135M@main', '/models/x', 'dropped files'). */
  readonly label: string;
  names(): string[];
  has(name: string): boolean;
  /** Rejects with an Error naming the file and the label when it is not there. */
  open(name: string): Promise<ByteSource>;
}

function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new RangeError(`${name}: invalid read of ${length} bytes at ${offset}`);
  }
  if (offset + length > size) {
    throw new RangeError(`${name}: read of ${length} bytes at ${offset} runs past the end (${size} bytes)`);
  }
}

/** A source over bytes already in memory; reads are views, not copies. */
export function bytesSource(name: string, bytes: Uint8Array | ArrayBuffer): ByteSource {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  return {
    name,
    size: data.byteLength,
    read: async (offset, length) => {
      checkRange(name, data.byteLength, offset, length);
      return data.subarray(offset, offset + length);
    },
  };
}

/** A source over a Blob or File: each read slices and reads only that range. */
export function blobSource(name: string, blob: Blob): ByteSource {
  return {
    name,
    size: blob.size,
    read: async (offset, length) => {
      checkRange(name, blob.size, offset, length);
      const bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      if (bytes.byteLength !== length) {
        throw new Error(`${name}: read ${bytes.byteLength} bytes at ${offset}, expected ${length}`);
      }
      return bytes;
    },
  };
}

/** The whole file as strict UTF-8 (a FileFormatError naming the file and the offset of a bad byte). */
export async function readText(source: ByteSource): Promise<string> {
  return decodeUtf8(await source.read(0, source.size), source.name);
}

/** Reads and parses a JSON file of a model; a FileFormatError names the file when it is malformed. */
export async function readJson(files: ModelFiles, name: string): Promise<unknown> {
  return parseJson(await readText(await files.open(name)), name);
}

/** ModelFiles over in-memory sources (tests, files dropped into the page after matching). */
export function sourcesFiles(label: string, sources: Iterable<ByteSource>): ModelFiles {
  const byName = new Map<string, ByteSource>();
  for (const s of sources) byName.set(s.name, s);
  return {
    label,
    names: () => [...byName.keys()].sort(),
    has: (name) => byName.has(name),
    open: async (name) => {
      const s = byName.get(name);
      if (!s) throw new Error(`${name}: not found in ${label}`);
      return s;
    },
  };
}

/** ModelFiles over a name → bytes (or text) record. */
export function memoryFiles(label: string, files: Record<string, Uint8Array | string>): ModelFiles {
  const enc = new TextEncoder();
  return sourcesFiles(
    label,
    Object.entries(files).map(([name, data]) =>
      bytesSource(name, typeof data === 'string' ? enc.encode(data) : data),
    ),
  );
}
