// JSON as tunelab's code types it: values it writes (study logs, exports, configs) are `Json`; an object read
// from a file whose fields are still to be checked is `UncheckedJson`.

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A parsed JSON object, every field still `unknown` until a reader checks it. */
export type UncheckedJson = Record<string, unknown>;

/**
 * A user's file whose bytes are not what its format needs (not UTF-8, not JSON, nested too deeply, a field
 * out of range). The message names the file, and where known the field or byte offset.
 */
export class FileFormatError extends Error {
  constructor(
    readonly file: string,
    readonly reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'FileFormatError';
  }
}

/**
 * Deeper nesting than any file tunelab reads needs. Past it, code that walks the value recursively
 * (JSON.stringify in a message, a deep copy) would overflow the stack, so such files are refused up front.
 */
export const MAX_JSON_DEPTH = 64;

/** Strict UTF-8: invalid bytes are refused with their offset, never replaced by U+FFFD. */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new FileFormatError(file, `not valid UTF-8 (first bad byte at offset ${firstInvalidUtf8(bytes)})`);
  }
}

/** Offset of the first byte that does not start or continue a valid UTF-8 sequence. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const length = utf8SequenceLength(bytes, i);
    if (length === 0) return i;
    i += length;
  }
  return bytes.length;
}

/** Length of the valid UTF-8 sequence at `i` (1–4), or 0 when it is invalid (RFC 3629: no overlongs, no surrogates). */
function utf8SequenceLength(bytes: Uint8Array, i: number): number {
  const b0 = bytes[i];
  if (b0 < 0x80) return 1;
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean =>
    i + k < bytes.length && bytes[i + k] >= lo && bytes[i + k] <= hi;
  if (b0 >= 0xc2 && b0 <= 0xdf) return cont(1) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const lo = b0 === 0xe0 ? 0xa0 : 0x80;
    const hi = b0 === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const lo = b0 === 0xf0 ? 0x90 : 0x80;
    const hi = b0 === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/** Deepest nesting of arrays and objects in a JSON text (strings skipped), stopping early past `limit`. */
export function jsonDepth(text: string, limit = Infinity): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) deepest = depth;
      if (deepest > limit) return deepest;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/**
 * JSON.parse for text from a user's file: refuses nesting deeper than MAX_JSON_DEPTH and malformed JSON with
 * a FileFormatError naming `file`. Accepts bytes too, decoded as strict UTF-8.
 */
export function parseJson(input: string | Uint8Array, file: string, maxDepth = MAX_JSON_DEPTH): unknown {
  const text = typeof input === 'string' ? input : decodeUtf8(input, file);
  if (jsonDepth(text, maxDepth) > maxDepth) {
    throw new FileFormatError(file, `JSON nested deeper than ${maxDepth} levels`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new FileFormatError(file, `not valid JSON (${(e as Error).message})`);
  }
}

/** `record[key]` only when it is the record's own property (so 'constructor' or '__proto__' find nothing). */
export function ownValue<T>(record: Readonly<Record<string, T>>, key: string): T | undefined {
  return Object.hasOwn(record, key) ? record[key] : undefined;
}
