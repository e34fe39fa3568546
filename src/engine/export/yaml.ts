// A small YAML emitter for the exports (axolotl configs): block mappings and sequences of plain data, with
// comment lines. Written here rather than importing the `yaml` package (a dev dependency, used by the tests
// to parse what this writes) because engine code ships to the browser and this needs ~60 lines.
//
// Output is read the same by YAML 1.2 parsers and by PyYAML (YAML 1.1), which axolotl uses: floats always
// carry a '.' and a signed exponent (PyYAML reads `2e-4` as a string), and strings that either spec would
// read as something else (yes, no, on, off, null, numbers, ...) are double-quoted, with \x/\u/\U escapes
// for control characters (C0, C1, DEL, NUL), line separators and lone surrogates, which PyYAML reads back.

import { doubleQuoted, hexEscape, isPrintable } from './printable.ts';

export type YamlValue =
  null | boolean | number | string | readonly YamlValue[] | { [key: string]: YamlValue };

const PLAIN = /^[A-Za-z_/.][\w./-]*$/;
const RESERVED = /^(?:y|n|yes|no|on|off|true|false|null|nan|inf|\.nan|\.inf|~)$/i;

/**
 * A string as YAML: plain when no reader could take it for something else, else double-quoted with escapes
 * for anything not printable (PyYAML refuses C1 controls and DEL in a document, and folds NEL and U+2028).
 */
export function yamlString(s: string): string {
  return PLAIN.test(s) && !RESERVED.test(s) && !/^[.\d]/.test(s) ? s : doubleQuoted(s);
}

/** A comment line's text, with what YAML would refuse or break the line on escaped. */
function commentText(text: string): string {
  return Array.from(text, (ch) =>
    isPrintable(ch.codePointAt(0)!) || ch === '\t' ? ch : hexEscape(ch.codePointAt(0)!),
  ).join('');
}

export function yamlNumber(x: number): string {
  if (!Number.isFinite(x)) throw new RangeError(`yaml: cannot write ${x}`);
  if (Number.isInteger(x) && Math.abs(x) < 1e21) return String(x);
  const s = String(x);
  const m = /^(-?\d+)(\.\d+)?e([-+]?)(\d+)$/.exec(s);
  if (!m) return s; // plain decimal like 0.0002
  return `${m[1]}${m[2] ?? '.0'}e${m[3] === '-' ? '-' : '+'}${m[4]}`;
}

function scalar(v: YamlValue): string | undefined {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return yamlNumber(v);
  if (typeof v === 'string') return yamlString(v);
  if (Array.isArray(v) && v.length === 0) return '[]';
  if (!Array.isArray(v) && typeof v === 'object' && Object.keys(v).length === 0) return '{}';
  return undefined;
}

function lines(v: YamlValue, indent: string, out: string[]): void {
  if (Array.isArray(v)) {
    for (const item of v as readonly YamlValue[]) {
      const s = scalar(item);
      if (s !== undefined) out.push(`${indent}- ${s}`);
      else {
        const sub: string[] = [];
        lines(item, `${indent}  `, sub);
        out.push(`${indent}- ${sub[0].slice(indent.length + 2)}`, ...sub.slice(1));
      }
    }
    return;
  }
  for (const [key, value] of Object.entries(v as Record<string, YamlValue>)) {
    const s = scalar(value);
    if (s !== undefined) out.push(`${indent}${yamlString(key)}: ${s}`);
    else {
      out.push(`${indent}${yamlString(key)}:`);
      lines(value, `${indent}  `, out);
    }
  }
}

/**
 * A block-style YAML document of a mapping. `comments[key]` is written as comment lines above a top-level
 * key; `header` as comment lines at the top.
 */
export function toYaml(
  doc: { [key: string]: YamlValue },
  options: { header?: readonly string[]; comments?: Readonly<Record<string, string>> } = {},
): string {
  const out = (options.header ?? []).map((c) => `# ${commentText(c)}`.trimEnd());
  for (const [key, value] of Object.entries(doc)) {
    const comment = options.comments?.[key];
    if (comment !== undefined) for (const c of comment.split('\n')) out.push(`# ${commentText(c)}`.trimEnd());
    lines({ [key]: value }, '', out);
  }
  return out.join('\n') + '\n';
}
