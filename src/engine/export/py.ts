// Python source text for JSON-like values, shared by the HF snippets and the search scripts.
import type { Json } from '../json.ts';
import { doubleQuoted, hexEscape, isPrintable } from './printable.ts';

/**
 * A Python string literal that reads back as `s`, whatever it holds: quotes and backslashes escaped, and
 * NUL, control characters, line separators and lone surrogates as \x/\u/\U escapes (a raw NUL or newline
 * would make the script invalid).
 */
export function pyString(s: string): string {
  return doubleQuoted(s);
}

/** A Python literal for JSON-like data. */
export function pyLiteral(value: Json | undefined): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      return Number.isNaN(value) ? 'float("nan")' : `float("${value > 0 ? 'inf' : '-inf'}")`;
    return String(value);
  }
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) return `[${value.map(pyLiteral).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${pyString(k)}: ${pyLiteral(v)}`)
    .join(', ')}}`;
}

/**
 * Text for inside a triple-quoted docstring (not raw), on one line: whitespace runs as one space, backslashes
 * and quotes escaped, anything not printable (NUL, controls, lone surrogates) as an escape.
 */
export function pyDocText(value: unknown): string {
  const text = String(value).replace(/\s+/g, ' ');
  let out = '';
  for (const ch of text) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\' || ch === '"') out += `\\${ch}`;
    else out += isPrintable(cp) ? ch : hexEscape(cp);
  }
  return out;
}
