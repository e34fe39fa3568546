// Training data: files → examples (token ids + HF-aligned labels) → shuffled micro-batches.
//
// An Example holds up to seq+1 tokens: the model runs on the first seq of them and predicts the next one at
// each position, so a row gives at most seq predictions and a packed text chunk gives exactly seq. (The HF
// equivalent runs the model on all seq+1 tokens with max_length = seq+1: the prediction at the last position
// has no target and causal attention keeps it from influencing the others, so the losses are the same.)
// labels[i] is the target of the prediction made at position i−1, as in HF (the model shifts); −100 = no loss.
//
// Formats (by file extension, JSONL by the keys of its first row):
//   .txt                          documents + EOS, concatenated, cut into chunks of seq+1 tokens (stride seq)
//   .jsonl {"text"}               the same, one document per row
//   .jsonl {"input_ids",["labels"]} used as-is (labels default to input_ids)
//   .jsonl {"instruction",["input"],"output"}   Alpaca prompt template; loss on output + EOS only
//   .jsonl {"prompt","completion"}              loss on completion + EOS only (TRL prompt-completion)
//   .jsonl {"messages":[{role,content}]}        the model's chat template; loss on assistant turns only
//   .csv   text,label             classification: prompt, then the label word + EOS (loss on those only)
// A column mapping (columns.ts) reads other column names, of a .csv or a .jsonl alike: a text column (packed),
// text and label (classification), prompt and completion, or a messages column (chat, JSONL only).
//
// Loss weighting follows current HF Trainer: the loss of an optimizer step is the sum of token losses over all
// its micro-batches divided by num_items_in_batch, the count of predicted tokens with a label ≠ −100 in the
// whole effective batch (OptimizerStepBatch.numItems).

import { firstInvalidUtf8, jsonDepth, MAX_JSON_DEPTH } from '../json.ts';
import { Rng } from '../rng.ts';
import { columnList, resolveMapping, type ColumnMapping, type ResolvedMapping } from './columns.ts';
import { CsvSyntaxError, parseCsv } from './csv.ts';

export const IGNORE_INDEX = -100;

export type ChatRole = 'system' | 'user' | 'assistant' | 'tool';
export const CHAT_ROLES: readonly ChatRole[] = ['system', 'user', 'assistant', 'tool'];

export interface ChatMessage {
  role: ChatRole;
  content: string;
}

/** What the data pipeline needs from a tokenizer (src/engine/model/tokenizer.ts provides more). */
export interface DataTokenizer {
  /** Token ids; with addSpecialTokens the tokenizer's post-processor adds BOS etc. as HF does by default. */
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  /** The rendered chat template (tokenize=False); throws when the model has none. */
  applyChatTemplate(messages: readonly ChatMessage[], options: { addGenerationPrompt: boolean }): string;
  readonly eosId: number;
  readonly bosId?: number | null;
  readonly padId?: number | null;
  /** When given, every id in a file is checked against it. */
  readonly vocabSize?: number;
}

/** The shape of ModelTokenizer (src/engine/model/tokenizer.ts), kept structural. */
export interface ModelTokenizerLike {
  encode(text: string, options?: { addSpecialTokens?: boolean }): number[];
  applyChatTemplate(messages: readonly ChatMessage[], options?: { addGenerationPrompt?: boolean }): string;
  readonly eosTokenId: number | null;
  readonly bosTokenId: number | null;
  readonly padTokenId: number | null;
  readonly vocabSize: number;
}

/** A DataTokenizer over the model's tokenizer; refuses one without an EOS token (documents need it). */
export function dataTokenizer(t: ModelTokenizerLike): DataTokenizer {
  const eosId = t.eosTokenId;
  if (eosId === null) throw new Error('tokenizer: no eos_token, which training data needs to end documents');
  return {
    encode: (text, options) => t.encode(text, options),
    applyChatTemplate: (messages, options) => t.applyChatTemplate(messages, options),
    eosId,
    bosId: t.bosTokenId,
    padId: t.padTokenId,
    vocabSize: t.vocabSize,
  };
}

export class DatasetError extends Error {
  constructor(
    readonly file: string,
    /** 1-based line; 0 when the problem is the whole file. */
    readonly line: number,
    readonly reason: string,
  ) {
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`);
    this.name = 'DatasetError';
  }
}

export type DatasetFormat = 'text' | 'tokens' | 'alpaca' | 'prompt-completion' | 'chat' | 'classification';

export interface Example {
  /** Up to seq+1 token ids. */
  ids: Int32Array;
  /** Same length; HF-aligned (labels[i] is the target predicted at position i−1); −100 = no loss. */
  labels: Int32Array;
  /** Leading tokens that are prompt (labels −100), for the SFT and classification formats; 0 otherwise. */
  promptLength: number;
  /** Classification: index into Dataset.classes. */
  classIndex?: number;
  /** 1-based line of the row (for packed text: of the document the chunk starts in). */
  line: number;
}

export interface DatasetStats {
  /** Rows (lines, records or documents) read. */
  rows: number;
  /** Examples cut to seq+1 tokens. */
  truncated: number;
  /** Examples with nothing to predict (e.g. a prompt longer than seq): they add no loss. */
  withoutTargets: number;
  /** Tokens over all examples, after truncation. */
  tokens: number;
}

export interface Dataset {
  file: string;
  format: DatasetFormat;
  seq: number;
  examples: Example[];
  /** Classification: the label set, sorted (class i is classes[i]). */
  classes?: string[];
  stats: DatasetStats;
}

export type TextSplit = 'file' | 'blank-line' | 'line';

export interface DatasetOptions {
  /** Positions the model runs on; examples hold up to seq+1 tokens. */
  seq: number;
  /** .txt: what is a document (each gets EOS after it). Default 'file': the whole file is one. */
  textSplit?: TextSplit;
  /** Classification prompt; default `${text}\nLabel:` followed by ' ' + label. */
  classificationPrompt?: (text: string) => string;
  /** Classification: a fixed label set (e.g. the training file's, for a validation file). */
  classes?: readonly string[];
  /** .csv and .jsonl: the columns to read (absent: the fixed names, the JSONL format by the first row's keys). */
  columns?: ColumnMapping;
}

export const ALPACA_PROMPT_WITH_INPUT =
  'Below is an instruction that describes a task, paired with an input that provides further context. ' +
  'Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n';
export const ALPACA_PROMPT_NO_INPUT =
  'Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n' +
  '### Instruction:\n{instruction}\n\n### Response:\n';

/** The Stanford Alpaca prompt (train.py's PROMPT_DICT); the response follows it directly. */
export function alpacaPrompt(instruction: string, input = ''): string {
  return input.length > 0
    ? ALPACA_PROMPT_WITH_INPUT.replace('{instruction}', instruction).replace('{input}', input)
    : ALPACA_PROMPT_NO_INPUT.replace('{instruction}', instruction);
}

export function defaultClassificationPrompt(text: string): string {
  return `${text}\nLabel:`;
}

/**
 * Parses a dataset file by its extension (.txt, .jsonl, .csv). Throws DatasetError with file and line.
 * Give the file's bytes when you have them: they are decoded as strict UTF-8 (bad bytes refused by offset).
 */
export function parseDataset(
  file: string,
  input: string | Uint8Array,
  tokenizer: DataTokenizer,
  options: DatasetOptions,
): Dataset {
  const { seq } = options;
  if (!Number.isInteger(seq) || seq < 1)
    throw new RangeError(`parseDataset: seq must be a whole number ≥ 1, got ${seq}`);
  const text = typeof input === 'string' ? input : decodeDataset(file, input);
  const ext = file.toLowerCase().match(/\.([a-z]+)$/)?.[1];
  const builder = new Builder(file, seq, tokenizer);
  if (options.columns && ext === 'txt')
    builder.fail(0, 'a column mapping needs a .csv or .jsonl file (a .txt file has no columns)');
  switch (ext) {
    case 'txt':
      return parseText(builder, text, options.textSplit ?? 'file');
    case 'jsonl':
      return parseJsonl(builder, text, options);
    case 'csv':
      return parseCsvFile(builder, text, options);
    default:
      throw new DatasetError(file, 0, `unsupported file type '${ext ?? ''}' (supported: .txt, .jsonl, .csv)`);
  }
}

/** Strict UTF-8: a lossy decode would train on U+FFFD where the user's text was. */
function decodeDataset(file: string, bytes: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    const offset = firstInvalidUtf8(bytes);
    let line = 1;
    for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
    throw new DatasetError(file, line, `not valid UTF-8 (first bad byte at offset ${offset})`);
  }
}

class Builder {
  readonly examples: Example[] = [];
  readonly stats: DatasetStats = { rows: 0, truncated: 0, withoutTargets: 0, tokens: 0 };
  readonly vocab: number | undefined;

  constructor(
    readonly file: string,
    readonly seq: number,
    readonly tokenizer: DataTokenizer,
  ) {
    this.vocab = tokenizer.vocabSize;
  }

  fail(line: number, reason: string): never {
    throw new DatasetError(this.file, line, reason);
  }

  encode(line: number, text: string, addSpecialTokens: boolean): number[] {
    try {
      return this.tokenizer.encode(text, { addSpecialTokens });
    } catch (e) {
      this.fail(line, `tokenizer failed: ${(e as Error).message}`);
    }
  }

  /** Adds one example, truncated to seq+1 tokens. */
  add(
    line: number,
    ids: ArrayLike<number>,
    labels: ArrayLike<number>,
    promptLength: number,
    classIndex?: number,
  ): void {
    const max = this.seq + 1;
    const n = Math.min(ids.length, max);
    if (ids.length > max) this.stats.truncated++;
    const ex: Example = {
      ids: Int32Array.from({ length: n }, (_, i) => ids[i]),
      labels: Int32Array.from({ length: n }, (_, i) => labels[i]),
      promptLength: Math.min(promptLength, n),
      line,
    };
    if (classIndex !== undefined) ex.classIndex = classIndex;
    if (countTargets(ex.labels) === 0) this.stats.withoutTargets++;
    this.stats.tokens += n;
    this.examples.push(ex);
  }

  /** prompt tokens masked, then the response: TRL's prompt-completion tokenisation. */
  addPromptCompletion(
    line: number,
    prompt: string,
    completion: string,
    addSpecialTokens: boolean,
    classIndex?: number,
  ): void {
    const promptIds = this.encode(line, prompt, addSpecialTokens);
    const ids = this.encode(line, prompt + completion, addSpecialTokens);
    // A merge across the boundary can make the joint encoding differ from prompt ids at the seam; the first
    // differing token carries completion text, so it is trained on.
    const masked = commonPrefix(promptIds, ids);
    // TRL appends EOS unless the completion already ends with it.
    if (ids.length === masked || ids[ids.length - 1] !== this.tokenizer.eosId) ids.push(this.tokenizer.eosId);
    const labels = ids.map((id, i) => (i < masked ? IGNORE_INDEX : id));
    this.add(line, ids, labels, masked, classIndex);
  }

  done(format: DatasetFormat, classes?: string[]): Dataset {
    if (this.examples.length === 0) this.fail(0, 'no examples');
    // Training on it would report loss 0 and change nothing; evaluation refuses it too.
    if (this.stats.withoutTargets === this.examples.length) {
      this.fail(
        0,
        `no loss target: none of the ${this.examples.length} examples has a token to train on ` +
          `(every label is −100, or every prompt fills the ${this.seq} positions of seq)`,
      );
    }
    const d: Dataset = { file: this.file, format, seq: this.seq, examples: this.examples, stats: this.stats };
    if (classes) d.classes = classes;
    return d;
  }
}

function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

function countTargets(labels: Int32Array): number {
  let n = 0;
  for (let i = 1; i < labels.length; i++) if (labels[i] !== IGNORE_INDEX) n++;
  return n;
}

/** Splits a text into physical lines (LF or CRLF), 1-based numbering by index + 1. */
function lines(text: string): string[] {
  return (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

// ---- text: documents, EOS, packing ----

interface Document {
  line: number;
  text: string;
}

function splitDocuments(text: string, split: TextSplit): Document[] {
  const ls = lines(text);
  if (split === 'line') {
    return ls.map((t, i) => ({ line: i + 1, text: t })).filter((d) => d.text.trim().length > 0);
  }
  if (split === 'file') {
    const first = ls.findIndex((l) => l.trim().length > 0);
    return first < 0 ? [] : [{ line: first + 1, text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text }];
  }
  const docs: Document[] = [];
  let current: string[] = [];
  let start = 0;
  ls.forEach((l, i) => {
    if (l.trim().length === 0) {
      if (current.length > 0) docs.push({ line: start, text: current.join('\n') });
      current = [];
    } else {
      if (current.length === 0) start = i + 1;
      current.push(l);
    }
  });
  if (current.length > 0) docs.push({ line: start, text: current.join('\n') });
  return docs;
}

/**
 * Each document tokenised (with the tokenizer's special tokens, e.g. BOS) and followed by EOS, all
 * concatenated and cut into chunks of seq+1 tokens that overlap by one (stride seq), so every token after the
 * first is predicted exactly once. The tail that does not fill a chunk is dropped, as HF's group_texts does,
 * unless it is all there is.
 */
function packDocuments(b: Builder, docs: readonly Document[]): void {
  const stream: number[] = [];
  const starts: { at: number; line: number }[] = [];
  for (const d of docs) {
    starts.push({ at: stream.length, line: d.line });
    for (const id of b.encode(d.line, d.text, true)) stream.push(id);
    stream.push(b.tokenizer.eosId);
    b.stats.rows++;
  }
  const seq = b.seq;
  const lineAt = (pos: number): number => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid].at <= pos) lo = mid;
      else hi = mid - 1;
    }
    return starts[lo].line;
  };
  const full = Math.floor((stream.length - 1) / seq);
  if (full === 0) {
    if (stream.length >= 2) b.add(lineAt(0), stream, stream, 0);
    return;
  }
  for (let k = 0; k < full; k++) {
    const chunk = stream.slice(k * seq, k * seq + seq + 1);
    b.add(lineAt(k * seq), chunk, chunk, 0);
  }
}

function parseText(b: Builder, text: string, split: TextSplit): Dataset {
  const docs = splitDocuments(text, split);
  if (docs.length === 0) b.fail(0, 'no text');
  packDocuments(b, docs);
  return b.done('text');
}

// ---- JSONL ----

type Row = Record<string, unknown>;

function detectFormat(row: Row): Exclude<DatasetFormat, 'classification'> | null {
  if ('input_ids' in row) return 'tokens';
  if ('messages' in row) return 'chat';
  if ('instruction' in row) return 'alpaca';
  if ('prompt' in row) return 'prompt-completion';
  if ('text' in row) return 'text';
  return null;
}

function parseJsonl(b: Builder, text: string, options: DatasetOptions): Dataset {
  const rows: { line: number; row: Row }[] = [];
  lines(text).forEach((l, i) => {
    if (l.trim().length === 0) return;
    // Nesting past this would overflow the stack of code that walks the row (a stack overflow, not an error).
    if (jsonDepth(l, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
      b.fail(i + 1, `JSON nested deeper than ${MAX_JSON_DEPTH} levels`);
    }
    let value: unknown;
    try {
      value = JSON.parse(l);
    } catch (e) {
      b.fail(i + 1, `invalid JSON (${(e as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      b.fail(i + 1, 'expected a JSON object');
    rows.push({ line: i + 1, row: value as Row });
  });
  if (rows.length === 0) b.fail(0, 'no rows');
  if (options.columns) {
    const found = Object.keys(rows[0].row);
    return parseMapped(b, rows, resolveMapping(options.columns), found, 'in its first row', options);
  }
  const format = detectFormat(rows[0].row);
  if (format === null) {
    b.fail(
      rows[0].line,
      `unknown row format with keys ${JSON.stringify(Object.keys(rows[0].row))} (expected input_ids, messages, instruction/output, prompt/completion or text)`,
    );
  }
  if (format === 'text') {
    packDocuments(
      b,
      rows.map(({ line, row }) => ({ line, text: stringField(b, line, row, 'text') })),
    );
    return b.done('text');
  }
  for (const { line, row } of rows) {
    b.stats.rows++;
    switch (format) {
      case 'tokens':
        tokensRow(b, line, row);
        break;
      case 'alpaca': {
        const instruction = stringField(b, line, row, 'instruction');
        const input = row.input === undefined || row.input === null ? '' : stringField(b, line, row, 'input');
        const output = stringField(b, line, row, 'output');
        b.addPromptCompletion(line, alpacaPrompt(instruction, input), output, true);
        break;
      }
      case 'prompt-completion':
        b.addPromptCompletion(
          line,
          stringField(b, line, row, 'prompt'),
          stringField(b, line, row, 'completion'),
          true,
        );
        break;
      case 'chat':
        chatRow(b, line, row);
        break;
    }
  }
  return b.done(format);
}

function stringField(b: Builder, line: number, row: Row, key: string): string {
  const v = row[key];
  if (v === undefined) b.fail(line, `missing field '${key}'`);
  if (typeof v !== 'string') b.fail(line, `field '${key}' must be a string, got ${jsonType(v)}`);
  return v;
}

function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : typeof v;
}

function idList(b: Builder, line: number, row: Row, key: string, allowIgnore: boolean): number[] {
  const v = row[key];
  if (v === undefined) b.fail(line, `missing field '${key}'`);
  if (!Array.isArray(v)) b.fail(line, `field '${key}' must be an array of token ids, got ${jsonType(v)}`);
  const vocab = b.vocab;
  v.forEach((id: unknown, i) => {
    if (typeof id !== 'number' || !Number.isInteger(id)) {
      b.fail(line, `${key}[${i}] must be an integer token id, got ${JSON.stringify(id)}`);
    }
    if (allowIgnore && id === IGNORE_INDEX) return;
    // Ids are stored as i32: without a vocabulary to check against, 2^31 is the bound.
    if (id < 0 || id >= (vocab ?? 2 ** 31)) {
      const range = `[0, ${vocab ?? 2 ** 31})`;
      b.fail(
        line,
        `${key}[${i}] = ${id} is outside the token ids ${range}${allowIgnore ? ' and is not −100' : ''}`,
      );
    }
  });
  return v as number[];
}

function tokensRow(b: Builder, line: number, row: Row): void {
  const ids = idList(b, line, row, 'input_ids', false);
  if (ids.length === 0) b.fail(line, `field 'input_ids' is empty`);
  let labels = ids;
  if (row.labels !== undefined && row.labels !== null) {
    labels = idList(b, line, row, 'labels', true);
    if (labels.length !== ids.length) {
      b.fail(line, `field 'labels' has ${labels.length} entries, input_ids has ${ids.length}`);
    }
  }
  b.add(line, ids, labels, 0);
}

function chatRow(b: Builder, line: number, row: Row, key = 'messages'): void {
  const v = row[key];
  if (v === undefined) b.fail(line, `missing field '${key}'`);
  if (!Array.isArray(v)) b.fail(line, `field '${key}' must be an array, got ${jsonType(v)}`);
  if (v.length === 0) b.fail(line, `field '${key}' is empty`);
  const messages: ChatMessage[] = v.map((m: unknown, i) => {
    if (typeof m !== 'object' || m === null || Array.isArray(m))
      b.fail(line, `messages[${i}] must be an object`);
    const { role, content } = m as Row;
    if (role === undefined) b.fail(line, `messages[${i}]: missing field 'role'`);
    if (typeof role !== 'string' || !(CHAT_ROLES as readonly string[]).includes(role)) {
      b.fail(
        line,
        `messages[${i}]: unknown role ${JSON.stringify(role)} (expected one of ${CHAT_ROLES.join(', ')})`,
      );
    }
    if (content === undefined) b.fail(line, `messages[${i}]: missing field 'content'`);
    if (typeof content !== 'string')
      b.fail(line, `messages[${i}]: field 'content' must be a string, got ${jsonType(content)}`);
    return { role: role as ChatRole, content };
  });
  if (!messages.some((m) => m.role === 'assistant')) b.fail(line, 'no assistant message to train on');
  const render = (msgs: readonly ChatMessage[], addGenerationPrompt: boolean): string => {
    try {
      return b.tokenizer.applyChatTemplate(msgs, { addGenerationPrompt });
    } catch (e) {
      b.fail(line, `chat template failed: ${(e as Error).message}`);
    }
  };
  // apply_chat_template(tokenize=True) encodes without adding special tokens: the template writes them.
  const ids = b.encode(line, render(messages, false), false);
  const labels = new Array<number>(ids.length).fill(IGNORE_INDEX);
  let promptLength = -1;
  messages.forEach((m, i) => {
    if (m.role !== 'assistant') return;
    // The turn's tokens: from the end of the history rendered with the generation prompt to the end of the
    // history including this turn (its end-of-turn tokens included, as the model must learn to stop).
    const before = b.encode(line, render(messages.slice(0, i), true), false);
    const through = b.encode(line, render(messages.slice(0, i + 1), false), false);
    const from = commonPrefix(before, ids);
    const to = commonPrefix(through, ids);
    if (promptLength < 0) promptLength = from;
    for (let t = from; t < to; t++) labels[t] = ids[t];
  });
  b.add(line, ids, labels, Math.max(0, promptLength));
}

// ---- CSV, and mapped columns ----

function parseCsvFile(b: Builder, text: string, options: DatasetOptions): Dataset {
  let records;
  try {
    records = parseCsv(text);
  } catch (e) {
    if (e instanceof CsvSyntaxError) b.fail(e.line, e.reason);
    throw e;
  }
  if (records.length === 0) b.fail(0, 'empty CSV');
  const header = records[0].fields.map((h) => h.trim());
  let mapping: ResolvedMapping;
  if (options.columns) {
    mapping = resolveMapping(options.columns);
    if (mapping.format === 'chat')
      b.fail(0, 'a messages column needs a .jsonl file (a CSV cell holds text, not a list of messages)');
  } else {
    // Without a mapping: the columns named text and label, in any case.
    const named = (name: string) => header.find((h) => h.toLowerCase() === name);
    const text = named('text');
    const label = named('label');
    if (text === undefined || label === undefined) {
      b.fail(
        records[0].line,
        `CSV header must have 'text' and 'label' columns, or a column mapping must name others; ` +
          `its columns: ${columnList(header)}`,
      );
    }
    mapping = { format: 'classification', columns: { text, label } };
  }
  const rows = records.slice(1).map((r) => {
    if (r.fields.length !== header.length)
      b.fail(r.line, `expected ${header.length} fields as in the header, got ${r.fields.length}`);
    return { line: r.line, row: Object.fromEntries(header.map((h, i) => [h, r.fields[i]])) as Row };
  });
  if (rows.length === 0) b.fail(0, 'no rows after the header');
  return parseMapped(b, rows, mapping, header, 'in its header', options);
}

/** Rows read through a mapping; a mapped column that the file lacks is refused up front, naming those it has. */
function parseMapped(
  b: Builder,
  rows: readonly { line: number; row: Row }[],
  mapping: ResolvedMapping,
  found: readonly string[],
  where: string,
  options: DatasetOptions,
): Dataset {
  const { format, columns } = mapping;
  for (const [role, name] of Object.entries(columns)) {
    if (!found.includes(name))
      b.fail(
        0,
        `the ${role} column '${name}' is not in the file (its columns ${where}: ${columnList(found)})`,
      );
  }
  switch (format) {
    case 'text':
      packDocuments(
        b,
        rows.map(({ line, row }) => ({ line, text: stringField(b, line, row, columns.text!) })),
      );
      return b.done('text');
    case 'classification':
      return classify(b, rows, columns.text!, columns.label!, options);
    case 'prompt-completion':
      for (const { line, row } of rows) {
        b.stats.rows++;
        const prompt = stringField(b, line, row, columns.prompt!);
        b.addPromptCompletion(line, prompt, stringField(b, line, row, columns.completion!), true);
      }
      return b.done(format);
    case 'chat':
      for (const { line, row } of rows) {
        b.stats.rows++;
        chatRow(b, line, row, columns.messages);
      }
      return b.done(format);
  }
}

/** A label cell: CSV text, or a JSONL string, number or boolean (0/1 and true/false labels are common). */
function labelField(b: Builder, line: number, row: Row, key: string): string {
  const v = row[key];
  if (v === undefined) b.fail(line, `missing field '${key}'`);
  if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
    b.fail(line, `field '${key}' must be a string, number or boolean label, got ${jsonType(v)}`);
  const label = String(v).trim();
  if (label.length === 0) b.fail(line, `empty label`);
  return label;
}

function classify(
  b: Builder,
  rows: readonly { line: number; row: Row }[],
  textKey: string,
  labelKey: string,
  options: DatasetOptions,
): Dataset {
  const labels = rows.map(({ line, row }) => labelField(b, line, row, labelKey));
  const classes = options.classes ? [...options.classes] : [...new Set(labels)].sort();
  const prompt = options.classificationPrompt ?? defaultClassificationPrompt;
  rows.forEach(({ line, row }, i) => {
    b.stats.rows++;
    const label = labels[i];
    const classIndex = classes.indexOf(label);
    if (classIndex < 0)
      b.fail(line, `label '${label}' is not one of the known labels ${JSON.stringify(classes)}`);
    b.addPromptCompletion(line, prompt(stringField(b, line, row, textKey)), ` ${label}`, true, classIndex);
  });
  return b.done('classification', classes);
}

// ---- splits ----

export interface Splits {
  train: Example[];
  validation: Example[];
}

/**
 * A seeded shuffle split: ⌈ratio·n⌉ examples for validation (as datasets' train_test_split), the rest for
 * training, each in file order. `file` names the dataset when the training part is left with no loss target.
 */
export function splitExamples(
  examples: readonly Example[],
  ratio: number,
  seed: number,
  file = 'dataset',
): Splits {
  if (!(ratio > 0 && ratio < 1)) throw new RangeError(`splitExamples: ratio must be in (0, 1), got ${ratio}`);
  const n = examples.length;
  const nVal = Math.ceil(ratio * n);
  if (nVal >= n)
    throw new RangeError(`splitExamples: ${n} examples leave none for training at ratio ${ratio}`);
  const order = new Rng(seed, 'data-split').shuffle(Array.from({ length: n }, (_, i) => i));
  const isVal = new Uint8Array(n);
  for (let k = 0; k < nVal; k++) isVal[order[k]] = 1;
  const splits = {
    train: examples.filter((_, i) => !isVal[i]),
    validation: examples.filter((_, i) => isVal[i] === 1),
  };
  // Possible when only a few examples have targets: training would run at loss 0 and learn nothing, or the
  // evaluation would fail after training had finished.
  for (const [name, part] of Object.entries(splits)) {
    if (!part.some((e) => countTargets(e.labels) > 0)) {
      throw new DatasetError(
        file,
        0,
        `no loss target in the ${name} split: none of its ${part.length} examples has a token to predict ` +
          `(ratio ${ratio}, seed ${seed})`,
      );
    }
  }
  return splits;
}

// ---- batches ----

export interface MicroBatch {
  /** (batch, seq) i32 input ids, right-padded with the pad id. */
  inputs: Int32Array;
  /** (batch, seq) i32 next-token targets: targets[b, t] = labels[t+1]; −100 = no loss (padding included). */
  targets: Int32Array;
  /** Rows holding examples (≤ batch; the rest are padding with no targets, at the end of an epoch). */
  rows: number;
  /** Targets ≠ −100 in this micro-batch. */
  validTargets: number;
  /** Example indices of the rows. */
  indices: number[];
}

/** Collates examples into one (batch, seq) micro-batch: truncation to seq+1 tokens, right padding. */
export function collate(
  examples: readonly Example[],
  indices: readonly number[],
  batch: number,
  seq: number,
  padId: number,
): MicroBatch {
  if (indices.length > batch) throw new RangeError(`collate: ${indices.length} rows for a batch of ${batch}`);
  const inputs = new Int32Array(batch * seq).fill(padId);
  const targets = new Int32Array(batch * seq).fill(IGNORE_INDEX);
  let validTargets = 0;
  indices.forEach((idx, r) => {
    const { ids, labels } = examples[idx];
    const n = Math.min(ids.length, seq + 1);
    for (let t = 0; t < Math.min(n, seq); t++) inputs[r * seq + t] = ids[t];
    for (let t = 0; t + 1 < n; t++) {
      const y = labels[t + 1];
      targets[r * seq + t] = y;
      if (y !== IGNORE_INDEX) validTargets++;
    }
  });
  return { inputs, targets, rows: indices.length, validTargets, indices: [...indices] };
}

export interface BatchOptions {
  /** Rows per micro-batch (per_device_train_batch_size). */
  batch: number;
  /** Micro-batches per optimizer step (gradient_accumulation_steps). */
  accum: number;
  seq: number;
  seed: number;
  /** Pad id for inputs (its positions have no target). */
  padId: number;
  /** Shuffle every epoch (default true). */
  shuffle?: boolean;
}

/** Where the iterator stands: enough to resume exactly (the epoch's order is a function of seed and epoch). */
export interface BatchPosition {
  seed: number;
  epoch: number;
  /** Rows of this epoch's order already consumed. */
  index: number;
  /** Optimizer steps taken so far. */
  step: number;
}

export interface OptimizerStepBatch {
  microBatches: MicroBatch[];
  /** num_items_in_batch: targets ≠ −100 over all micro-batches; the loss of the step is Σ token losses / this. */
  numItems: number;
  epoch: number;
  /** 0-based optimizer step. */
  step: number;
}

/**
 * Micro-batches of `batch` rows in a seeded per-epoch order, `accum` of them per optimizer step, as HF Trainer
 * iterates (drop_last=False): the last micro-batch of an epoch may be short and the last optimizer step of an
 * epoch may have fewer micro-batches; steps never span two epochs.
 */
export class BatchIterator {
  readonly examples: readonly Example[];
  readonly options: Required<BatchOptions>;
  #epoch = 0;
  #index = 0;
  #step = 0;
  #order: number[] = [];
  #orderEpoch = -1;

  constructor(examples: readonly Example[], options: BatchOptions, position?: BatchPosition) {
    const { batch, accum, seq, seed, padId, shuffle = true } = options;
    if (examples.length === 0) throw new RangeError('BatchIterator: no examples');
    for (const [name, v] of [
      ['batch', batch],
      ['accum', accum],
      ['seq', seq],
    ] as const) {
      if (!Number.isInteger(v) || v < 1)
        throw new RangeError(`BatchIterator: ${name} must be a whole number ≥ 1, got ${v}`);
    }
    if (!Number.isSafeInteger(seed))
      throw new RangeError(`BatchIterator: seed must be an integer, got ${seed}`);
    if (!Number.isInteger(padId) || padId < 0)
      throw new RangeError(`BatchIterator: padId must be a token id, got ${padId}`);
    this.examples = examples;
    this.options = { batch, accum, seq, seed, padId, shuffle };
    if (position) this.seek(position);
  }

  /** Micro-batches per epoch: ⌈n / batch⌉. */
  get microBatchesPerEpoch(): number {
    return Math.ceil(this.examples.length / this.options.batch);
  }

  /** Optimizer steps per epoch: ⌈microBatchesPerEpoch / accum⌉ (HF's num_update_steps_per_epoch). */
  get stepsPerEpoch(): number {
    return Math.ceil(this.microBatchesPerEpoch / this.options.accum);
  }

  get position(): BatchPosition {
    return { seed: this.options.seed, epoch: this.#epoch, index: this.#index, step: this.#step };
  }

  seek(position: BatchPosition): void {
    const { seed, epoch, index, step } = position;
    if (seed !== this.options.seed)
      throw new RangeError(`BatchIterator.seek: position is for seed ${seed}, not ${this.options.seed}`);
    if (!Number.isInteger(epoch) || epoch < 0) throw new RangeError(`BatchIterator.seek: bad epoch ${epoch}`);
    if (!Number.isInteger(index) || index < 0 || index > this.examples.length) {
      throw new RangeError(`BatchIterator.seek: index ${index} outside [0, ${this.examples.length}]`);
    }
    if (!Number.isInteger(step) || step < 0) throw new RangeError(`BatchIterator.seek: bad step ${step}`);
    this.#epoch = epoch;
    this.#index = index;
    this.#step = step;
  }

  /** This epoch's row order: a seeded shuffle of 0..n−1 drawn from (seed, epoch) alone. */
  order(epoch: number): number[] {
    if (this.#orderEpoch !== epoch) {
      const idx = Array.from({ length: this.examples.length }, (_, i) => i);
      this.#order = this.options.shuffle ? new Rng(this.options.seed, 'data-epoch', epoch).shuffle(idx) : idx;
      this.#orderEpoch = epoch;
    }
    return this.#order;
  }

  /** The micro-batches of the next optimizer step. */
  next(): OptimizerStepBatch {
    const { batch, accum, seq, padId } = this.options;
    const n = this.examples.length;
    if (this.#index >= n) {
      this.#epoch++;
      this.#index = 0;
    }
    const order = this.order(this.#epoch);
    const microBatches: MicroBatch[] = [];
    let numItems = 0;
    for (let k = 0; k < accum && this.#index < n; k++) {
      const rows = order.slice(this.#index, this.#index + batch);
      this.#index += rows.length;
      const mb = collate(this.examples, rows, batch, seq, padId);
      numItems += mb.validTargets;
      microBatches.push(mb);
    }
    const out = { microBatches, numItems, epoch: this.#epoch, step: this.#step };
    this.#step++;
    return out;
  }
}

/** Sequential, unshuffled micro-batches over a whole split (evaluation). */
export function* evalBatches(
  examples: readonly Example[],
  batch: number,
  seq: number,
  padId: number,
): Generator<MicroBatch> {
  for (let i = 0; i < examples.length; i += batch) {
    const rows = Array.from({ length: Math.min(batch, examples.length - i) }, (_, k) => i + k);
    yield collate(examples, rows, batch, seq, padId);
  }
}

/** The pad id HF collators would use: the tokenizer's pad token, else EOS. */
export function padIdOf(tokenizer: Pick<DataTokenizer, 'padId' | 'eosId'>): number {
  return tokenizer.padId ?? tokenizer.eosId;
}
