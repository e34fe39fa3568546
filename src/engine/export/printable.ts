// Which characters the exports write as they are. Everything else in a string (C0 and C1 controls, DEL, NUL,
// line and paragraph separators, the BOM, lone surrogates, U+FFFE/U+FFFF) is written as an escape, so the
// file stays valid text that a YAML or Python reader reads back as the same string.

/** YAML's printable set (also fine raw in Python source), less NEL, U+2028/2029 (line breaks) and the BOM. */
export function isPrintable(cp: number): boolean {
  if (cp >= 0x20 && cp <= 0x7e) return true;
  if (cp >= 0xa0 && cp <= 0xd7ff) return cp !== 0x2028 && cp !== 0x2029;
  if (cp >= 0xe000 && cp <= 0xfffd) return cp !== 0xfeff;
  return cp >= 0x10000 && cp <= 0x10ffff;
}

/** \xXX, \uXXXX or \UXXXXXXXX: the escapes YAML's double-quoted scalars and Python's strings share. */
export function hexEscape(cp: number): string {
  const hex = cp.toString(16).toUpperCase();
  if (cp <= 0xff) return `\\x${hex.padStart(2, '0')}`;
  if (cp <= 0xffff) return `\\u${hex.padStart(4, '0')}`;
  return `\\U${hex.padStart(8, '0')}`;
}

/**
 * `s` between double quotes with `\\`, `\"`, `\t`, `\n`, `\r` and hex escapes for the rest that is not
 * printable; a string's code points, lone surrogates included (as \uD800 ...).
 */
export function doubleQuoted(s: string): string {
  let out = '"';
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\r') out += '\\r';
    else out += isPrintable(cp) ? ch : hexEscape(cp);
  }
  return `${out}"`;
}
