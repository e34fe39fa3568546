// The Data step: a file (a shipped sample, an upload or pasted text), parsed with the model's tokenizer
// into examples in a Worker (with progress: the page stays responsive for big files), with a preview of
// rendered and tokenised rows and the train/validation split.
import { decodeUtf8 } from '../../engine/json.ts';
import { DatasetError, IGNORE_INDEX, type Dataset, type Example } from '../../engine/train/data.ts';
import type { ColumnMapping } from '../../engine/train/columns.ts';
import { parseInWorker, unpackDataset, type DatasetTokenizer } from '../lib/dataset-parser.ts';
import { describeError, withoutFunctionName } from '../lib/errors.ts';
import { assetUrl } from '../lib/model-cache.ts';

export const SAMPLES = [
  { file: 'addition.jsonl', label: 'Two-digit addition (prompt → completion, exact match)' },
  { file: 'reverse.jsonl', label: 'Reverse a word (prompt → completion)' },
  { file: 'parity.csv', label: 'Even or odd (CSV classification, accuracy / F1)' },
  { file: 'aesop.txt', label: "Aesop's fables (plain text, public domain)" },
] as const;

export interface PreviewToken {
  text: string;
  id: number;
  response: boolean;
}

export interface PreviewRow {
  line: number;
  tokens: PreviewToken[];
  responseTokens: number;
}

/** What parsing needs of the loaded model: its tokenizer files (for the Worker) and a decoder (for the preview). */
export interface DataModel {
  tokenizer: DatasetTokenizer;
  decode(ids: number[]): string;
}

export class DataState {
  fileName = $state('');
  text = $state('');
  pasteName = $state('pasted.jsonl');
  /** The paste box's text: kept apart from `text` so a big uploaded file never lands in a textarea. */
  pasteText = $state('');
  phase = $state<'empty' | 'loading' | 'ready' | 'error'>('empty');
  error = $state('');
  dataset = $state.raw<Dataset | null>(null);
  split = $state.raw<{ train: readonly Example[]; validation: readonly Example[] } | null>(null);
  /** The id that pads short rows (the tokenizer's pad, else its EOS). */
  padId = $state(0);
  preview = $state.raw<PreviewRow[]>([]);
  /** A CSV or JSONL file's columns (empty for text), shown with the mapping they were read with. */
  columns = $state.raw<string[]>([]);
  /** The mapping the data was read with (asked for, or suggested by the column names); null: the fixed names. */
  mapping = $state.raw<ColumnMapping | null>(null);
  /** While parsing: the share of the text tokenised so far (0 to 1); null otherwise. */
  progress = $state<number | null>(null);
  /** Parses started: a result that is not the latest one's is dropped. */
  #parses = 0;
  /** What the dataset shown was parsed from: the same again (a search starting) is not parsed twice. */
  #parsed: { keys: string[]; text: string } | null = null;

  async loadSample(file: string): Promise<void> {
    this.phase = 'loading';
    try {
      const res = await fetch(assetUrl(`samples/${file}`));
      if (!res.ok) throw new Error(`${file}: could not be fetched (HTTP ${res.status})`);
      this.fileName = file;
      this.text = decodeUtf8(new Uint8Array(await res.arrayBuffer()), file);
      this.phase = 'empty';
    } catch (e) {
      this.phase = 'error';
      this.error = describeError(e);
    }
  }

  /** Text that is not UTF-8 is refused (file and byte offset), not decoded lossily; so is an empty file. */
  async loadFile(file: File): Promise<void> {
    this.fileName = file.name;
    this.phase = 'loading';
    this.progress = null;
    try {
      this.text = decodeUtf8(new Uint8Array(await file.arrayBuffer()), file.name);
      if (this.text.trim() === '')
        return this.#refuse(`${file.name} is empty: there is nothing to train on.`);
      this.phase = 'empty';
    } catch (e) {
      this.text = '';
      this.phase = 'error';
      this.error = describeError(e);
    }
  }

  /** The pasted text under the name given (its extension picks the format); empty text is refused. */
  usePasted(): void {
    this.fileName = this.pasteName.trim() || 'pasted.jsonl';
    this.text = this.pasteText;
    if (this.text.trim() === '')
      this.#refuse('Nothing was pasted: paste the rows or text to train on first.');
  }

  /** No dataset, and why. */
  #refuse(reason: string): void {
    this.dataset = null;
    this.split = null;
    this.preview = [];
    this.progress = null;
    this.phase = 'error';
    this.error = reason;
  }

  /**
   * Parses with the model's tokenizer in the Worker, reading `columns` (null: the mapping the column names
   * suggest); errors name the file, the line and the reason.
   */
  async parse(
    model: DataModel,
    seq: number,
    valRatio: number,
    seed: number,
    columns: ColumnMapping | null = null,
  ): Promise<void> {
    if (!this.fileName || this.text.trim() === '') return;
    const keyOf = (c: ColumnMapping | null) =>
      JSON.stringify([model.tokenizer.key, this.fileName, seq, valRatio, seed, c]);
    const key = keyOf(columns);
    if (this.phase === 'ready' && this.#parsed?.keys.includes(key) && this.#parsed.text === this.text) return;
    const id = ++this.#parses;
    this.#parsed = null;
    this.phase = 'loading';
    this.progress = 0;
    // A plain copy: the form's state is a proxy, which cannot be posted to the Worker.
    const job = {
      fileName: this.fileName,
      text: this.text,
      seq,
      valRatio,
      seed,
      columns: $state.snapshot(columns),
    };
    let result;
    try {
      result = await parseInWorker(model.tokenizer, job, (done, total) => {
        if (id === this.#parses) this.progress = done / total;
      });
    } catch (e) {
      result = { ok: false as const, dataset: null, message: describeError(e) };
    }
    if (id !== this.#parses) return; // a newer parse (another file, seq or split) replaced this one
    this.columns = result.columns?.found ?? [];
    this.mapping = result.columns?.used ?? null;
    if (!result.ok) {
      const failure = result.dataset;
      return this.#refuse(
        failure
          ? describeError(new DatasetError(failure.file, failure.line, failure.reason))
          : withoutFunctionName(result.message),
      );
    }
    const { dataset, split } = await unpackDataset(result.dataset);
    if (id !== this.#parses) return;
    this.dataset = dataset;
    this.split = split;
    this.padId = result.padId;
    this.preview = dataset.examples.slice(0, 4).map((ex) => {
      const tokens = Array.from(ex.ids, (id, i) => ({
        id,
        text: model.decode([id]),
        response: ex.labels[i] !== IGNORE_INDEX,
      }));
      return { line: ex.line, tokens, responseTokens: tokens.filter((t) => t.response).length };
    });
    this.progress = null;
    this.phase = 'ready';
    this.error = '';
    // Asked for again, or the mapping it was read with asked for (it is saved with the study): no second parse.
    this.#parsed = { keys: [key, keyOf(this.mapping)], text: job.text };
  }
}
