// Shell words for the command lines the exports print (usage lines in the scripts, the axolotl run line):
// POSIX single quotes around anything that is not plainly safe, so a model id with spaces, quotes, $ or ;
// copies into a terminal as one argument and runs nothing else.

/** Characters that need no quoting in any POSIX shell. */
const SAFE = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** `s` as one shell word. Control characters (a newline) use bash's $'…' form, which `sh` lacks. */
export function shellQuote(s: string): string {
  if (SAFE.test(s)) return s;
  // eslint-disable-next-line no-control-regex
  if (!/[\x00-\x1f\x7f]/.test(s)) return `'${s.replaceAll("'", `'\\''`)}'`;
  let out = "$'";
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    if (ch === '\\' || ch === "'") out += `\\${ch}`;
    else if (cp < 0x20 || cp === 0x7f) out += `\\x${cp.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return `${out}'`;
}

/** A command line: every word quoted as needed. */
export function shellLine(words: readonly string[]): string {
  return words.map(shellQuote).join(' ');
}
