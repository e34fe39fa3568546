// Parses and tokenises a dataset off the page's thread (a 5 MB file takes seconds of tokenising), reporting how
// much of the text has gone through the tokenizer, then splits it into training and validation examples.
// The tokenizer is built once per model from its tokenizer files.
import * as Comlink from 'comlink';
import { blobSource, sourcesFiles } from '../engine/checkpoint/byte-source.ts';
import { loadTokenizer } from '../engine/model/tokenizer.ts';
import {
  dataTokenizer,
  DatasetError,
  padIdOf,
  parseDataset,
  splitExamples,
  type Dataset,
  type DataTokenizer,
} from '../engine/train/data.ts';
import { detectColumns, type ColumnMapping } from '../engine/train/columns.ts';
import { indicesOf, packExamples, type PackedExamples } from './packed-examples.ts';

export interface DatasetTokenizer {
  /** Changes when the page loads another model. */
  key: string;
  /** tokenizer.json and tokenizer_config.json. */
  files: Record<string, Blob>;
  bosTokenId: number | null;
  eosTokenIds: number[];
}

export interface ParseJob {
  fileName: string;
  text: string;
  seq: number;
  valRatio: number;
  seed: number;
  /** The columns to read; null: the suggested mapping of the file's columns (else the fixed names). */
  columns: ColumnMapping | null;
}

/** A CSV or JSONL file's columns, and the mapping it was read with (null: the fixed names). */
export interface ParsedColumns {
  found: string[];
  used: ColumnMapping | null;
}

/** A DatasetError as data: comlink carries only an Error's message across. */
export interface ParseFailure {
  file: string;
  line: number;
  reason: string;
}

/** A dataset as it crosses to the page: its examples packed, the split as their indices. */
export interface ParsedDataset extends Omit<Dataset, 'examples'> {
  examples: PackedExamples;
  train: Int32Array;
  validation: Int32Array;
}

export type ParseResult =
  | { ok: true; dataset: ParsedDataset; padId: number; columns: ParsedColumns | null }
  | { ok: false; dataset: ParseFailure | null; message: string; columns?: ParsedColumns | null };

/** Characters tokenised so far, of the whole text. */
export type ParseProgress = (done: number, total: number) => void;

const PROGRESS_EVERY_MS = 100;

let loaded: { key: string; tokenizer: DataTokenizer } | null = null;

async function tokenizerOf(t: DatasetTokenizer): Promise<DataTokenizer> {
  if (loaded?.key === t.key) return loaded.tokenizer;
  const files = sourcesFiles(
    t.key,
    Object.entries(t.files).map(([name, blob]) => blobSource(name, blob)),
  );
  const tokenizer = dataTokenizer(
    await loadTokenizer(files, { bosTokenId: t.bosTokenId, eosTokenIds: t.eosTokenIds }),
  );
  loaded = { key: t.key, tokenizer };
  return tokenizer;
}

/** The tokenizer, counting the characters it is given (a chat row is rendered more than once: capped). */
function counting(tokenizer: DataTokenizer, total: number, onProgress: ParseProgress): DataTokenizer {
  let done = 0;
  let reported = 0;
  return {
    ...tokenizer,
    encode(text, options) {
      const ids = tokenizer.encode(text, options);
      done = Math.min(total, done + text.length);
      const now = performance.now();
      if (now - reported >= PROGRESS_EVERY_MS) {
        reported = now;
        onProgress(done, total);
      }
      return ids;
    },
  };
}

const api = {
  async parse(t: DatasetTokenizer, job: ParseJob, onProgress: ParseProgress): Promise<ParseResult> {
    const detected = detectColumns(job.fileName, job.text);
    const used = job.columns ?? detected?.suggested ?? null;
    const columns = detected ? { found: detected.columns, used } : null;
    try {
      const tokenizer = counting(await tokenizerOf(t), job.text.length, onProgress);
      const options = { seq: job.seq, ...(used && detected ? { columns: used } : {}) };
      const dataset = parseDataset(job.fileName, job.text, tokenizer, options);
      const split = splitExamples(dataset.examples, job.valRatio, job.seed, job.fileName);
      const packed = packExamples(dataset.examples);
      const parsed: ParsedDataset = {
        ...dataset,
        examples: packed,
        train: indicesOf(dataset.examples, split.train),
        validation: indicesOf(dataset.examples, split.validation),
      };
      const buffers = [packed.ids, packed.labels, packed.offsets, parsed.train, parsed.validation];
      return Comlink.transfer(
        { ok: true, dataset: parsed, padId: padIdOf(tokenizer), columns },
        buffers.map((a) => a.buffer),
      );
    } catch (e) {
      const failure = e instanceof DatasetError ? { file: e.file, line: e.line, reason: e.reason } : null;
      return { ok: false, dataset: failure, message: e instanceof Error ? e.message : String(e), columns };
    }
  },
};

export type DatasetWorker = typeof api;
Comlink.expose(api);
