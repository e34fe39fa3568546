// RFC 4180 CSV: comma-separated fields, optionally double-quoted; inside quotes "" is a quote and commas and
// newlines are literal. Records end at LF or CRLF. As Python's csv module, a quote inside an unquoted field
// is a literal character and blank lines are skipped; unlike it (strict), text after a closing quote and an
// unterminated quoted field are errors, since both usually mean a broken file.

export interface CsvRecord {
  /** 1-based line on which the record starts. */
  line: number;
  fields: string[];
}

export class CsvSyntaxError extends Error {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
    this.name = 'CsvSyntaxError';
  }
}

/** Every non-blank record, header included, in file order. */
export function parseCsv(text: string): CsvRecord[] {
  const records: CsvRecord[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const n = text.length;
  let line = 1;
  while (i < n) {
    const start = line;
    const fields: string[] = [];
    let blank = true;
    // One record: fields until an unquoted newline or the end of the text.
    for (;;) {
      let field = '';
      if (text[i] === '"') {
        blank = false;
        const quoteLine = line;
        i++;
        for (;;) {
          if (i >= n) throw new CsvSyntaxError(quoteLine, 'quoted field is not closed (missing closing ")');
          const c = text[i];
          if (c === '"') {
            if (text[i + 1] === '"') {
              field += '"';
              i += 2;
              continue;
            }
            i++;
            break;
          }
          if (c === '\n') line++;
          field += c;
          i++;
        }
        if (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
          throw new CsvSyntaxError(
            line,
            `unexpected ${JSON.stringify(text[i])} after a closing quote (expected , or end of line)`,
          );
        }
      } else {
        const from = i;
        while (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n'))
          i++;
        field = text.slice(from, i);
        if (field.length > 0) blank = false;
      }
      fields.push(field);
      if (i < n && text[i] === ',') {
        blank = false;
        i++;
        continue;
      }
      // End of record: newline or end of text.
      if (i < n) {
        i += text[i] === '\r' ? 2 : 1;
        line++;
      }
      break;
    }
    if (!blank) records.push({ line: start, fields });
  }
  return records;
}
