import { describe, expect, it } from 'vitest';
import {
  ALPACA_PROMPT_NO_INPUT,
  BatchIterator,
  DatasetError,
  IGNORE_INDEX,
  alpacaPrompt,
  collate,
  evalBatches,
  parseDataset,
  splitExamples,
  type ChatMessage,
  dataTokenizer,
  padIdOf,
  type DataTokenizer,
  type ModelTokenizerLike,
  type DatasetOptions,
  type Example,
} from '../../../src/engine/train/data.ts';
import { parseCsv } from '../../../src/engine/train/csv.ts';
import type { ModelTokenizer } from '../../../src/engine/model/tokenizer.ts';

// A character tokenizer: id = char code + 3; BOS 1, EOS 2, PAD 0. Its chat template is prefix-stable, as
// real ones are.
const BOS = 1;
const EOS = 2;
const PAD = 0;
const tok: DataTokenizer = {
  encode: (text, o) => [...(o?.addSpecialTokens ? [BOS] : []), ...[...text].map((c) => c.charCodeAt(0) + 3)],
  applyChatTemplate: (msgs: readonly ChatMessage[], { addGenerationPrompt }) =>
    msgs.map((m) => `<${m.role}>${m.content}|`).join('') + (addGenerationPrompt ? '<assistant>' : ''),
  eosId: EOS,
  bosId: BOS,
  padId: PAD,
  vocabSize: 200,
};
const enc = (s: string): number[] => tok.encode(s);
const ids = (e: Example): number[] => [...e.ids];
const labels = (e: Example): number[] => [...e.labels];
const jsonl = (...rows: unknown[]): string =>
  rows.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))).join('\n');

function fails(
  file: string,
  text: string,
  line: number,
  reason: RegExp,
  options: Partial<DatasetOptions> = {},
): void {
  let err: unknown;
  try {
    parseDataset(file, text, tok, { seq: 64, ...options });
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(DatasetError);
  const d = err as DatasetError;
  expect(d.file).toBe(file);
  expect(d.line).toBe(line);
  expect(d.reason).toMatch(reason);
  expect(d.message.startsWith(line > 0 ? `${file}:${line}: ` : `${file}: `)).toBe(true);
}

describe('.txt', () => {
  it('tokenises, appends EOS, packs into seq+1-token chunks overlapping by one', () => {
    const d = parseDataset('a.txt', 'abcdefghij', tok, { seq: 4 });
    const stream = [BOS, ...enc('abcdefghij'), EOS]; // 12 tokens → ⌊11/4⌋ = 2 chunks
    expect(d.format).toBe('text');
    expect(d.examples.map(ids)).toEqual([stream.slice(0, 5), stream.slice(4, 9)]);
    expect(d.examples.map(labels)).toEqual(d.examples.map(ids));
  });

  it('puts EOS between documents split at blank lines; keeps a short file whole', () => {
    const d = parseDataset('b.txt', 'ab\n\n\ncd\r\n', tok, { seq: 64, textSplit: 'blank-line' });
    expect(d.examples.map(ids)).toEqual([[BOS, ...enc('ab'), EOS, BOS, ...enc('cd'), EOS]]);
    expect(d.stats.rows).toBe(2);
    const lines = parseDataset('c.txt', 'ab\ncd', tok, { seq: 64, textSplit: 'line' });
    expect(lines.examples[0].ids.filter((t) => t === EOS)).toHaveLength(2);
    fails('e.txt', ' \n\n', 0, /no text/);
  });
});

describe('.jsonl', () => {
  it('input_ids rows are used as-is, labels optional with −100 kept', () => {
    const d = parseDataset(
      't.jsonl',
      jsonl({ input_ids: [5, 6, 7] }, '', { input_ids: [5, 6, 7], labels: [-100, 6, -100] }),
      tok,
      {
        seq: 64,
      },
    );
    expect(d.format).toBe('tokens');
    expect(d.examples.map(labels)).toEqual([
      [5, 6, 7],
      [-100, 6, -100],
    ]);
    expect(d.examples[1].line).toBe(3);
  });

  it('alpaca: the standard prompt, loss on output + EOS only', () => {
    const d = parseDataset(
      'a.jsonl',
      jsonl({ instruction: 'Add', input: '1 2', output: '3' }, { instruction: 'Hi', output: 'yo' }),
      tok,
      { seq: 1024 },
    );
    expect(d.format).toBe('alpaca');
    const prompt = alpacaPrompt('Hi');
    expect(prompt).toBe(ALPACA_PROMPT_NO_INPUT.replace('{instruction}', 'Hi'));
    expect(alpacaPrompt('Add', '1 2')).toContain('### Input:\n1 2\n\n### Response:\n');
    const e = d.examples[1];
    const p = tok.encode(prompt, { addSpecialTokens: true });
    expect(ids(e)).toEqual([...p, ...enc('yo'), EOS]);
    expect(labels(e)).toEqual([...p.map(() => IGNORE_INDEX), ...enc('yo'), EOS]);
    expect(e.promptLength).toBe(p.length);
  });

  it('prompt/completion: loss on the completion only', () => {
    const d = parseDataset('p.jsonl', jsonl({ prompt: 'Q:', completion: ' A' }), tok, { seq: 64 });
    expect(labels(d.examples[0])).toEqual([-100, -100, -100, ...enc(' A'), EOS]);
  });

  it('trains on the token that merges across the prompt/completion seam', () => {
    // 'ab' is one token (99) in this tokenizer, so 'xa' + 'b' does not split where the prompt ends.
    const merging: DataTokenizer = {
      ...tok,
      encode: (text, o) => {
        const out = o?.addSpecialTokens ? [BOS] : [];
        for (let i = 0; i < text.length; i++) {
          if (text.startsWith('ab', i)) {
            out.push(99);
            i++;
          } else out.push(text.charCodeAt(i) + 3);
        }
        return out;
      },
    };
    const d = parseDataset('s.jsonl', jsonl({ prompt: 'xa', completion: 'b' }), merging, { seq: 64 });
    expect(ids(d.examples[0])).toEqual([BOS, 'x'.charCodeAt(0) + 3, 99, EOS]);
    expect(labels(d.examples[0])).toEqual([-100, -100, 99, EOS]);
    const eosText: DataTokenizer = {
      ...tok,
      encode: (text, o) => tok.encode(text, o).map((t) => (t === 36 + 3 ? EOS : t)),
    };
    const e = parseDataset('e.jsonl', jsonl({ prompt: 'q', completion: '$' }), eosText, { seq: 64 });
    expect(ids(e.examples[0])).toEqual([BOS, 'q'.charCodeAt(0) + 3, EOS]); // '$' is EOS here: no second one
  });

  it('chat: the chat template, loss on every assistant turn only', () => {
    const messages = [
      { role: 'system', content: 's' },
      { role: 'user', content: 'u1' },
      { role: 'assistant', content: 'a1' },
      { role: 'user', content: 'u2' },
      { role: 'assistant', content: 'a2' },
    ];
    const d = parseDataset('c.jsonl', jsonl({ messages }), tok, { seq: 256 });
    const e = d.examples[0];
    const text = '<system>s|<user>u1|<assistant>a1|<user>u2|<assistant>a2|';
    expect(ids(e)).toEqual(enc(text));
    const trained = String.fromCharCode(...[...e.labels].filter((t) => t !== IGNORE_INDEX).map((t) => t - 3));
    expect(trained).toBe('a1|a2|');
    expect(e.promptLength).toBe('<system>s|<user>u1|<assistant>'.length);
  });

  it('a text column is packed like .txt', () => {
    const d = parseDataset('x.jsonl', jsonl({ text: 'ab' }, { text: 'cd' }), tok, { seq: 64 });
    expect(d.examples.map(ids)).toEqual([[BOS, ...enc('ab'), EOS, BOS, ...enc('cd'), EOS]]);
  });

  it('fails on malformed rows with file, line and reason', () => {
    fails('m.jsonl', jsonl({ input_ids: [1] }, '{"input_ids": [1,', { input_ids: [2] }), 2, /invalid JSON/);
    fails('m.jsonl', jsonl('[1, 2]'), 1, /expected a JSON object/);
    fails('m.jsonl', jsonl({ foo: 1 }), 1, /unknown row format/);
    fails('m.jsonl', jsonl({ input_ids: [1] }, { labels: [1] }), 2, /missing field 'input_ids'/);
    fails('m.jsonl', jsonl({ input_ids: [1] }, { input_ids: 'abc' }), 2, /'input_ids' must be an array/);
    fails('m.jsonl', jsonl({ input_ids: [1, 2.5] }), 1, /input_ids\[1\] must be an integer/);
    fails(
      'm.jsonl',
      jsonl({ input_ids: [1, 200] }),
      1,
      /input_ids\[1\] = 200 is outside the token ids \[0, 200\)/,
    );
    fails('m.jsonl', jsonl({ input_ids: [] }), 1, /'input_ids' is empty/);
    fails('m.jsonl', jsonl({ input_ids: [1, 2], labels: [1] }), 1, /'labels' has 1 entries, input_ids has 2/);
    fails(
      'm.jsonl',
      jsonl({ input_ids: [1, 2], labels: [1, 500] }),
      1,
      /labels\[1\] = 500 is outside .* not −100/,
    );
    fails('m.jsonl', jsonl({ input_ids: [1, 2], labels: [1, -1] }), 1, /labels\[1\] = -1 is outside/);
    fails(
      'm.jsonl',
      jsonl({ instruction: 'a', output: 'b' }, '', { instruction: 'a' }),
      3,
      /missing field 'output'/,
    );
    fails('m.jsonl', jsonl({ instruction: 'a', output: 5 }), 1, /'output' must be a string, got number/);
    fails('m.jsonl', jsonl({ prompt: 'a', completion: null }), 1, /'completion' must be a string, got null/);
    fails('m.jsonl', jsonl({ messages: [] }), 1, /'messages' is empty/);
    fails('m.jsonl', jsonl({ messages: 'hi' }), 1, /'messages' must be an array/);
    fails('m.jsonl', jsonl({ messages: [{ role: 'bot', content: 'x' }] }), 1, /unknown role "bot"/);
    fails('m.jsonl', jsonl({ messages: [{ role: 'user' }] }), 1, /messages\[0\]: missing field 'content'/);
    fails('m.jsonl', jsonl({ messages: [{ content: 'x' }] }), 1, /messages\[0\]: missing field 'role'/);
    fails('m.jsonl', jsonl({ messages: [{ role: 'user', content: 'x' }] }), 1, /no assistant message/);
    fails('m.jsonl', '\n\n', 0, /no rows/);
    fails('m.parquet', '', 0, /unsupported file type 'parquet'/);
  });
});

describe('.csv classification', () => {
  const csv = 'id,text,label\n1,"good, really",pos\n2,"line one\nline ""two""",neg\r\n\n3,meh,neu\n';

  it('parses quoted fields (commas, newlines, escaped quotes) with record start lines', () => {
    expect(parseCsv(csv)).toEqual([
      { line: 1, fields: ['id', 'text', 'label'] },
      { line: 2, fields: ['1', 'good, really', 'pos'] },
      { line: 3, fields: ['2', 'line one\nline "two"', 'neg'] },
      { line: 6, fields: ['3', 'meh', 'neu'] },
    ]);
    expect(parseCsv('\uFEFFa,b\n1,\n')).toEqual([
      { line: 1, fields: ['a', 'b'] },
      { line: 2, fields: ['1', ''] },
    ]);
  });

  it('builds prompt + label word + EOS, loss on the label, sorted label set', () => {
    const d = parseDataset('s.csv', csv, tok, { seq: 128 });
    expect(d.format).toBe('classification');
    expect(d.classes).toEqual(['neg', 'neu', 'pos']);
    expect(d.examples.map((e) => e.classIndex)).toEqual([2, 0, 1]);
    const e = d.examples[0];
    const p = tok.encode('good, really\nLabel:', { addSpecialTokens: true });
    expect(ids(e)).toEqual([...p, ...enc(' pos'), EOS]);
    expect(labels(e).filter((t) => t !== IGNORE_INDEX)).toEqual([...enc(' pos'), EOS]);
    expect(e.line).toBe(2);
    const val = parseDataset('v.csv', 'text,label\nx,pos\n', tok, { seq: 64, classes: d.classes });
    expect(val.examples[0].classIndex).toBe(2);
    fails('v.csv', 'text,label\nx,other\n', 2, /label 'other' is not one of the known labels/, {
      classes: d.classes,
    });
  });

  it('fails on header, field-count and quoting errors with the line', () => {
    fails('h.csv', 'sentence,label\na,b\n', 1, /header must have 'text' and 'label'/);
    fails('h.csv', 'text,label\n', 0, /no rows after the header/);
    fails('h.csv', 'text,label\na,b,c\n', 2, /expected 2 fields as in the header, got 3/);
    fails('h.csv', 'text,label\na,\n', 2, /empty label/);
    fails('h.csv', 'text,label\na,b\n"open,x\ny,z\n', 3, /quoted field is not closed/);
    fails('h.csv', 'text,label\n"a"b,c\n', 2, /unexpected "b" after a closing quote/);
  });
});

describe('truncation, padding, splits', () => {
  it('truncates to seq+1 tokens and right-pads inputs with the pad id and targets with −100', () => {
    const d = parseDataset(
      't.jsonl',
      jsonl({ input_ids: [10, 11, 12, 13, 14, 15] }, { input_ids: [20, 21], labels: [-100, 21] }),
      tok,
      {
        seq: 4,
      },
    );
    expect(d.stats.truncated).toBe(1);
    expect(ids(d.examples[0])).toEqual([10, 11, 12, 13, 14]);
    const mb = collate(d.examples, [0, 1], 3, 4, PAD);
    expect([...mb.inputs]).toEqual([10, 11, 12, 13, 20, 21, PAD, PAD, PAD, PAD, PAD, PAD]);
    expect([...mb.targets]).toEqual([11, 12, 13, 14, 21, -100, -100, -100, -100, -100, -100, -100]);
    expect(mb.validTargets).toBe(5);
    expect(mb.rows).toBe(2);
  });

  it('counts examples whose prompt fills the whole window', () => {
    const rows = jsonl({ prompt: 'a long prompt', completion: 'x' }, { prompt: 'ab', completion: 'x' });
    const d = parseDataset('p.jsonl', rows, tok, { seq: 4 });
    expect(d.stats.withoutTargets).toBe(1);
    expect(collate(d.examples, [0], 1, 4, PAD).validTargets).toBe(0);
  });

  it('refuses a file with no loss target at all, naming the file and the count', () => {
    const why = /^no loss target: none of the 2 examples has a token to train on/;
    const prompts = jsonl(
      { prompt: 'a long prompt', completion: 'x' },
      { prompt: 'longer still', completion: 'y' },
    );
    fails('p.jsonl', prompts, 0, why, { seq: 4 });
    const masked = jsonl(
      { input_ids: [5, 6, 7], labels: [-100, -100, -100] },
      { input_ids: [5, 6], labels: [5, -100] },
    );
    fails('ids.jsonl', masked, 0, why);
  });

  it('refuses bytes that are not UTF-8, naming the line and the byte offset', () => {
    const bytes = new TextEncoder().encode('{"text": "fine"}\n{"text": "caf');
    const bad = new Uint8Array([...bytes, 0xe9, ...new TextEncoder().encode('"}')]);
    expect(() => parseDataset('t.jsonl', bad, tok, { seq: 8 })).toThrow(
      new DatasetError('t.jsonl', 2, `not valid UTF-8 (first bad byte at offset ${bytes.length})`),
    );
    expect(parseDataset('t.jsonl', bytes.slice(0, 16), tok, { seq: 8 }).examples).toHaveLength(1);
  });

  it('refuses deeply nested rows by line, not with a stack overflow', () => {
    const deep = `{"text": "a", "x": ${'['.repeat(100000)}${']'.repeat(100000)}}`;
    fails('d.jsonl', jsonl({ text: 'ok' }, deep), 2, /^JSON nested deeper than 64 levels$/);
  });

  it('without a vocabulary, refuses token ids an i32 cannot hold', () => {
    const noVocab: DataTokenizer = { ...tok, vocabSize: undefined };
    expect(() => parseDataset('i.jsonl', jsonl({ input_ids: [5, 2 ** 31] }), noVocab, { seq: 8 })).toThrow(
      'i.jsonl:1: input_ids[1] = 2147483648 is outside the token ids [0, 2147483648)',
    );
  });

  it('splits by ratio with a seeded shuffle, ⌈ratio·n⌉ for validation', () => {
    const ex = Array.from({ length: 10 }, (_, i) => ({
      ids: Int32Array.of(i, i),
      labels: Int32Array.of(i, i),
      promptLength: 0,
      line: i + 1,
    }));
    const a = splitExamples(ex, 0.25, 3);
    expect(a.validation).toHaveLength(3);
    expect(a.train).toHaveLength(7);
    expect([...a.train, ...a.validation].map((e) => e.line).sort((x, y) => x - y)).toEqual(
      ex.map((e) => e.line),
    );
    expect(splitExamples(ex, 0.25, 3)).toEqual(a);
    expect(splitExamples(ex, 0.25, 4).validation).not.toEqual(a.validation);
    expect(() => splitExamples(ex.slice(0, 1), 0.5, 1)).toThrow(/none for training/);
  });

  it('refuses a split that leaves either part without a loss target, naming the file', () => {
    const masked = (line: number, target: boolean): Example => ({
      ids: Int32Array.of(5, 6),
      labels: Int32Array.of(-100, target ? 6 : -100),
      promptLength: 1,
      line,
    });
    const all = [1, 2, 3].map((line) => masked(line, true));
    const seed = [0, 1, 2, 3, 4, 5, 6, 7].find((k) => splitExamples(all, 0.3, k).validation[0].line === 1)!;
    const why = (part: string, n: number) =>
      new DatasetError(
        'd.jsonl',
        0,
        `no loss target in the ${part} split: none of its ${n} examples has a token to predict (ratio 0.3, seed ${seed})`,
      );
    const onlyFirst = [masked(1, true), masked(2, false), masked(3, false)];
    expect(() => splitExamples(onlyFirst, 0.3, seed, 'd.jsonl')).toThrow(why('train', 2));
    const allButFirst = [masked(1, false), masked(2, true), masked(3, true)];
    expect(() => splitExamples(allButFirst, 0.3, seed, 'd.jsonl')).toThrow(why('validation', 1));
  });
});

describe('BatchIterator', () => {
  // Example i has i+1 predicted tokens.
  const ex: Example[] = Array.from({ length: 7 }, (_, i) => {
    const t = Int32Array.from({ length: i + 2 }, (_, k) => 3 + k);
    return { ids: t, labels: t, promptLength: 0, line: i + 1 };
  });
  const opts = { batch: 2, accum: 2, seq: 16, seed: 9, padId: PAD };

  it('groups micro-batches per optimizer step with the token count of the whole effective batch', () => {
    const it = new BatchIterator(ex, opts);
    expect(it.microBatchesPerEpoch).toBe(4);
    expect(it.stepsPerEpoch).toBe(2);
    const s0 = it.next();
    const s1 = it.next();
    expect(s0.microBatches).toHaveLength(2);
    expect(s1.microBatches).toHaveLength(2);
    expect(s1.microBatches[1].rows).toBe(1); // 7 rows: the last micro-batch is short
    for (const s of [s0, s1]) {
      const rows = s.microBatches.flatMap((m) => m.indices);
      expect(s.numItems).toBe(rows.reduce((n, i) => n + i + 1, 0));
      expect(s.numItems).toBe(s.microBatches.reduce((n, m) => n + m.validTargets, 0));
    }
    const epoch0 = [s0, s1].flatMap((s) => s.microBatches.flatMap((m) => m.indices));
    expect([...epoch0].sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
    const s2 = it.next();
    expect(s2.epoch).toBe(1);
    expect(s2.step).toBe(2);
    const epoch1 = [s2, it.next()].flatMap((s) => s.microBatches.flatMap((m) => m.indices));
    expect(epoch1).not.toEqual(epoch0); // reshuffled
    expect([...epoch1].sort()).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('ends an epoch with a shorter accumulation group, as HF does', () => {
    const it = new BatchIterator(ex, { ...opts, batch: 1, accum: 3 });
    expect(it.stepsPerEpoch).toBe(3);
    expect([it.next(), it.next(), it.next()].map((s) => s.microBatches.length)).toEqual([3, 3, 1]);
    expect(it.next().epoch).toBe(1);
  });

  it('resumes exactly from a saved position', () => {
    const a = new BatchIterator(ex, opts);
    a.next();
    a.next();
    a.next();
    const pos = a.position;
    expect(pos).toEqual({ seed: 9, epoch: 1, index: 4, step: 3 });
    const b = new BatchIterator(ex, opts, JSON.parse(JSON.stringify(pos)));
    for (let k = 0; k < 5; k++) expect(b.next()).toEqual(a.next());
    expect(() => new BatchIterator(ex, opts, { ...pos, seed: 1 })).toThrow(/seed/);
  });

  it('with one row and batch 1, every step trains on that row', () => {
    const it = new BatchIterator(ex.slice(2, 3), { ...opts, batch: 1, accum: 1 });
    for (let k = 0; k < 5; k++) {
      const s = it.next();
      expect(s.microBatches).toHaveLength(1);
      expect(s.microBatches[0].indices).toEqual([0]);
      expect(s.numItems).toBe(3);
    }
  });

  it('evaluates sequentially over the whole split', () => {
    const mbs = [...evalBatches(ex, 3, 16, PAD)];
    expect(mbs.map((m) => m.indices)).toEqual([[0, 1, 2], [3, 4, 5], [6]]);
  });
});

describe('the model tokenizer fits', () => {
  it('adapts the ModelTokenizer', () => {
    // Compile-time check: the class fits the structural interface.
    const fits = (t: ModelTokenizer): ModelTokenizerLike => t;
    expect(typeof fits).toBe('function');
    const fake: ModelTokenizerLike = {
      ...tok,
      eosTokenId: 7,
      bosTokenId: null,
      padTokenId: null,
      vocabSize: 9,
    };
    const dt = dataTokenizer(fake);
    expect([dt.eosId, dt.padId, dt.vocabSize]).toEqual([7, null, 9]);
    expect(padIdOf(dt)).toBe(7);
    expect(() => dataTokenizer({ ...fake, eosTokenId: null })).toThrow(/eos_token/);
  });
});

describe('the demo model’s chat rows (public/demo-model)', () => {
  it('start with one <|im_start|>: its BOS is the token ChatML opens each turn with', async () => {
    const { loadTokenizer } = await import('../../../src/engine/model/tokenizer.ts');
    const { nodeDirectoryFiles } = await import('../../../src/node/files.ts');
    const model = await loadTokenizer(await nodeDirectoryFiles('public/demo-model'));
    const imStart = model.bosTokenId!;
    expect(model.encode('<|im_start|>', { addSpecialTokens: false })).toEqual([imStart]);
    const row = JSON.stringify({
      messages: [
        { role: 'user', content: 'hi' },
        { role: 'assistant', content: 'yo' },
      ],
    });
    const d = parseDataset('chat.jsonl', row, dataTokenizer(model), { seq: 64 });
    const rowIds = [...d.examples[0].ids];
    expect(rowIds[0]).toBe(imStart);
    expect(rowIds[1]).not.toBe(imStart);
    expect(model.decode(rowIds)).toBe(
      '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nyo<|im_end|>\n',
    );
    expect(rowIds.filter((t) => t === imStart)).toHaveLength(2); // one per turn
  });
});
