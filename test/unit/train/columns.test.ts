import { describe, expect, it } from 'vitest';
import {
  ColumnMappingError,
  detectColumns,
  resolveMapping,
  suggestMapping,
  type ColumnMapping,
} from '../../../src/engine/train/columns.ts';
import {
  DatasetError,
  IGNORE_INDEX,
  parseDataset,
  type ChatMessage,
  type Dataset,
  type DataTokenizer,
  type DatasetOptions,
} from '../../../src/engine/train/data.ts';

// A character tokenizer (id = char code + 3; BOS 1, EOS 2) with a prefix-stable chat template.
const BOS = 1;
const EOS = 2;
const tok: DataTokenizer = {
  encode: (text, o) => [...(o?.addSpecialTokens ? [BOS] : []), ...[...text].map((c) => c.charCodeAt(0) + 3)],
  applyChatTemplate: (msgs: readonly ChatMessage[], { addGenerationPrompt }) =>
    msgs.map((m) => `<${m.role}>${m.content}|`).join('') + (addGenerationPrompt ? '<assistant>' : ''),
  eosId: EOS,
  bosId: BOS,
  padId: 0,
  vocabSize: 200,
};
const jsonl = (...rows: unknown[]): string => rows.map((r) => JSON.stringify(r)).join('\n');
const parse = (file: string, text: string, columns?: ColumnMapping, options: Partial<DatasetOptions> = {}) =>
  parseDataset(file, text, tok, { seq: 128, ...(columns ? { columns } : {}), ...options });

/** Everything a parse produced, to compare a mapped file with the same data under the fixed names. */
const contents = (d: Dataset) => ({
  format: d.format,
  classes: d.classes,
  examples: d.examples.map((e) => ({
    ids: [...e.ids],
    labels: [...e.labels],
    line: e.line,
    c: e.classIndex,
  })),
});

function datasetError(run: () => unknown): DatasetError {
  try {
    run();
  } catch (e) {
    expect(e).toBeInstanceOf(DatasetError);
    return e as DatasetError;
  }
  throw new Error('expected a DatasetError');
}

describe('resolveMapping', () => {
  it('names the task by the roles given; left-out roles take the standard name', () => {
    expect(resolveMapping({ text: 'review' })).toEqual({ format: 'text', columns: { text: 'review' } });
    expect(resolveMapping({ label: 'sentiment' })).toEqual({
      format: 'classification',
      columns: { text: 'text', label: 'sentiment' },
    });
    expect(resolveMapping({ completion: 'answer' })).toEqual({
      format: 'prompt-completion',
      columns: { prompt: 'prompt', completion: 'answer' },
    });
    expect(resolveMapping({ messages: 'conversation' })).toEqual({
      format: 'chat',
      columns: { messages: 'conversation' },
    });
  });

  it('refuses roles of two tasks, empty names and one column in two roles, naming the role', () => {
    const refused = (m: ColumnMapping, role: string, reason: RegExp) => {
      let err: unknown;
      try {
        resolveMapping(m);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(ColumnMappingError);
      expect((err as ColumnMappingError).role).toBe(role);
      expect((err as ColumnMappingError).reason).toMatch(reason);
    };
    refused(
      { text: 'a', prompt: 'b' },
      'text',
      /prompt-completion mapping has prompt and completion columns only/,
    );
    refused({ messages: 'm', label: 'l' }, 'label', /chat mapping has messages columns only; drop the label/);
    refused({ text: ' ' }, 'text', /expected a column name, got " "/);
    refused({ text: 'x', label: 'x' }, 'label', /column 'x' is already mapped to another role/);
    refused({}, 'text', /names no column/);
  });
});

describe('detectColumns', () => {
  it('reads a CSV header (quoted names too) and suggests text and label by their names', () => {
    expect(detectColumns('r.csv', 'id,"Review",Sentiment\n1,"good, really",pos\n')).toEqual({
      columns: ['id', 'Review', 'Sentiment'],
      suggested: { text: 'Review', label: 'Sentiment' },
    });
    // A header field whose quotes span past the first 64 KiB is still read whole.
    const long = `"${'x'.repeat(70_000)}",label\na,b\n`;
    expect(detectColumns('l.csv', long)?.columns).toEqual(['x'.repeat(70_000), 'label']);
  });

  it('lists the keys of the first JSONL rows in order and suggests prompt/completion or chat', () => {
    const text = jsonl({ question: 'q', answer: 'a' }, { question: 'q', answer: 'a', source: 's' });
    expect(detectColumns('qa.jsonl', text)).toEqual({
      columns: ['question', 'answer', 'source'],
      suggested: { prompt: 'question', completion: 'answer' },
    });
    expect(detectColumns('c.jsonl', jsonl({ conversations: [] }))?.suggested).toEqual({
      messages: 'conversations',
    });
  });

  it('suggests nothing for fixed-name formats, unknown names or other files', () => {
    expect(suggestMapping(['input_ids', 'labels'])).toBeNull();
    expect(suggestMapping(['instruction', 'input', 'output'])).toBeNull();
    expect(suggestMapping(['a', 'b'])).toBeNull();
    expect(suggestMapping(['only'])).toEqual({ text: 'only' });
    expect(detectColumns('a.txt', 'text,label\n')).toBeNull();
    expect(detectColumns('bad.jsonl', '{not json')).toBeNull();
  });
});

describe('parseDataset with a column mapping', () => {
  it('a CSV with other column names trains exactly as the same data under text,label', () => {
    const mapped = parse('r.csv', 'id,review,sentiment\n1,"good, really",pos\n2,bad,neg\n', {
      text: 'review',
      label: 'sentiment',
    });
    const fixed = parse('r.csv', 'id,text,label\n1,"good, really",pos\n2,bad,neg\n');
    expect(contents(mapped)).toEqual(contents(fixed));
    expect(mapped.classes).toEqual(['neg', 'pos']);
    // The label is what the loss is on: the prompt is the review.
    const e = mapped.examples[0];
    expect([...e.ids].slice(0, e.promptLength)).toEqual(
      tok.encode('good, really\nLabel:', { addSpecialTokens: true }),
    );
    expect([...e.labels].filter((t) => t !== IGNORE_INDEX)).toEqual([...tok.encode(' pos'), EOS]);
  });

  it('JSONL: prompt/completion, text+label (number labels) and chat from other keys', () => {
    const pc = parse('qa.jsonl', jsonl({ q: '1+1=', a: '2' }), { prompt: 'q', completion: 'a' });
    expect(contents(pc)).toEqual(contents(parse('qa.jsonl', jsonl({ prompt: '1+1=', completion: '2' }))));
    const cls = parse('n.jsonl', jsonl({ body: 'x', y: 1 }, { body: 'z', y: 0 }), {
      text: 'body',
      label: 'y',
    });
    expect(cls.format).toBe('classification');
    expect(cls.classes).toEqual(['0', '1']);
    const msgs = [
      { role: 'user', content: 'hi' },
      { role: 'assistant', content: 'yo' },
    ];
    const chat = parse('c.jsonl', jsonl({ conversation: msgs }), { messages: 'conversation' });
    expect(contents(chat)).toEqual(contents(parse('c.jsonl', jsonl({ messages: msgs }))));
  });

  it('a text column of a CSV or JSONL is packed as documents', () => {
    const csv = parse('t.csv', 'id,body\n1,abc\n2,de\n', { text: 'body' });
    const txt = parse('t.jsonl', jsonl({ text: 'abc' }, { text: 'de' }));
    expect(csv.format).toBe('text');
    expect(contents(csv).examples.map((e) => e.ids)).toEqual(contents(txt).examples.map((e) => e.ids));
  });

  it('a missing column names the file, the column and the columns found', () => {
    const csv = datasetError(() =>
      parse('r.csv', 'id,review,stars\n1,a,5\n', { text: 'review', label: 'sentiment' }),
    );
    expect(csv.message).toBe(
      "r.csv: the label column 'sentiment' is not in the file (its columns in its header: 'id', 'review', 'stars')",
    );
    const j = datasetError(() =>
      parse('qa.jsonl', jsonl({ q: 'a', a: 'b' }), { prompt: 'question', completion: 'a' }),
    );
    expect(j.message).toBe(
      "qa.jsonl: the prompt column 'question' is not in the file (its columns in its first row: 'q', 'a')",
    );
    // A later row without the column: by line.
    const row = datasetError(() =>
      parse('qa.jsonl', jsonl({ q: 'a', a: 'b' }, { q: 'c' }), { prompt: 'q', completion: 'a' }),
    );
    expect(row.message).toBe("qa.jsonl:2: missing field 'a'");
  });

  it('a wrong column type, a chat column in a CSV and a mapping for .txt are refused', () => {
    expect(
      datasetError(() => parse('n.jsonl', jsonl({ body: 3, y: 'a' }), { text: 'body', label: 'y' })).message,
    ).toBe("n.jsonl:1: field 'body' must be a string, got number");
    expect(datasetError(() => parse('c.jsonl', jsonl({ m: 'hi' }), { messages: 'm' })).message).toBe(
      "c.jsonl:1: field 'm' must be an array, got string",
    );
    expect(datasetError(() => parse('c.csv', 'm\nhi\n', { messages: 'm' })).reason).toMatch(
      /a messages column needs a \.jsonl file/,
    );
    expect(datasetError(() => parse('a.txt', 'abc', { text: 'x' })).reason).toMatch(
      /a column mapping needs a \.csv or \.jsonl file/,
    );
    expect(() => parse('r.csv', 'a,b\n1,2\n', { text: 'a', prompt: 'b' })).toThrow(ColumnMappingError);
  });

  it('without a mapping, a CSV lacking text,label names the columns it has', () => {
    expect(datasetError(() => parse('r.csv', 'review,sentiment\na,b\n')).message).toBe(
      "r.csv:1: CSV header must have 'text' and 'label' columns, or a column mapping must name others; its columns: 'review', 'sentiment'",
    );
  });
});
