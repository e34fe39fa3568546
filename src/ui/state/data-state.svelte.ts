// The Data step: a file (a shipped sample, an upload or pasted text), parsed with the model's tokenizer
// into examples, with a preview of rendered and tokenised rows and the train/validation split.
import { decodeUtf8 } from '../../engine/json.ts';
import type { OpenedModel } from '../../engine/model/open.ts';
import {
  dataTokenizer,
  padIdOf,
  parseDataset,
  splitExamples,
  IGNORE_INDEX,
  type Dataset,
  type Example,
} from '../../engine/train/data.ts';
import { describeError } from '../lib/errors.ts';
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

export class DataState {
  fileName = $state('');
  text = $state('');
  pasteName = $state('pasted.jsonl');
  phase = $state<'empty' | 'loading' | 'ready' | 'error'>('empty');
  error = $state('');
  dataset = $state.raw<Dataset | null>(null);
  split = $state.raw<{ train: readonly Example[]; validation: readonly Example[] } | null>(null);
  /** The id that pads short rows (the tokenizer's pad, else its EOS). */
  padId = $state(0);
  preview = $state.raw<PreviewRow[]>([]);

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
    if (this.text.trim() === '')
      this.#refuse('Nothing was pasted: paste the rows or text to train on first.');
  }

  /** No dataset, and why. */
  #refuse(reason: string): void {
    this.dataset = null;
    this.split = null;
    this.preview = [];
    this.phase = 'error';
    this.error = reason;
  }

  /** Parses with the model's tokenizer; errors name the file, the line and the reason. */
  parse(model: OpenedModel, seq: number, valRatio: number, seed: number): void {
    if (!this.fileName || this.text.trim() === '') return;
    try {
      const tok = dataTokenizer(model.tokenizer);
      const data = parseDataset(this.fileName, this.text, tok, { seq });
      const s = splitExamples(data.examples, valRatio, seed, this.fileName);
      this.dataset = data;
      this.split = s;
      this.padId = padIdOf(tok);
      this.preview = data.examples.slice(0, 4).map((ex) => {
        const tokens = Array.from(ex.ids, (id, i) => ({
          id,
          text: model.tokenizer.decode([id]),
          response: ex.labels[i] !== IGNORE_INDEX,
        }));
        return { line: ex.line, tokens, responseTokens: tokens.filter((t) => t.response).length };
      });
      this.phase = 'ready';
      this.error = '';
    } catch (e) {
      this.#refuse(describeError(e));
    }
  }
}
