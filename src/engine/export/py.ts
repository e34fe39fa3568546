// Python source text for JSON-like values, shared by the HF snippets and the search scripts.
import type { Json } from '../json.ts';

/** A Python literal for JSON-like data (a JSON string literal is a valid Python one). */
export function pyLiteral(value: Json | undefined): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return value ? 'True' : 'False';
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      return Number.isNaN(value) ? 'float("nan")' : `float("${value > 0 ? 'inf' : '-inf'}")`;
    return String(value);
  }
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(pyLiteral).join(', ')}]`;
  return `{${Object.entries(value)
    .map(([k, v]) => `${JSON.stringify(k)}: ${pyLiteral(v)}`)
    .join(', ')}}`;
}
