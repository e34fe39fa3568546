// The Data step's parsing over the dataset Worker (src/workers/dataset.worker.ts), started on first use and
// kept for the page's life so the tokenizer is built once per model.
import * as Comlink from 'comlink';
import type { Dataset, Example, Splits } from '../../engine/train/data.ts';
import { unpackExamples } from '../../workers/packed-examples.ts';
import type {
  DatasetTokenizer,
  DatasetWorker,
  ParseJob,
  ParseProgress,
  ParseResult,
  ParsedDataset,
} from '../../workers/dataset.worker.ts';

export type { DatasetTokenizer, ParseJob, ParseResult };

/** Examples unpacked between two yields to the page (a few ms of work each). */
const UNPACK_CHUNK = 4096;

/**
 * The dataset and its split as the engine's types (examples are views into the packed arrays), unpacked in
 * chunks with the page's events handled between them: tens of thousands of examples at once would be a long
 * task.
 */
export async function unpackDataset(parsed: ParsedDataset): Promise<{ dataset: Dataset; split: Splits }> {
  const { examples: packed, train, validation, ...rest } = parsed;
  const examples: Example[] = [];
  for (let from = 0; from < packed.line.length; from += UNPACK_CHUNK) {
    unpackExamples(packed, examples, from, Math.min(from + UNPACK_CHUNK, packed.line.length));
    await new Promise((resolve) => setTimeout(resolve));
  }
  return {
    dataset: { ...rest, examples },
    split: {
      train: Array.from(train, (i) => examples[i]),
      validation: Array.from(validation, (i) => examples[i]),
    },
  };
}

const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json'];

/** The model's tokenizer files out of all its files. */
export function tokenizerFiles(blobs: Record<string, Blob>): Record<string, Blob> {
  return Object.fromEntries(Object.entries(blobs).filter(([name]) => TOKENIZER_FILES.includes(name)));
}

let remote: Comlink.Remote<DatasetWorker> | null = null;

export function parseInWorker(
  tokenizer: DatasetTokenizer,
  job: ParseJob,
  onProgress: ParseProgress,
): Promise<ParseResult> {
  if (!remote) {
    // Written inline so Vite sees the worker and bundles it for `npm run build`.
    const worker = new Worker(new URL('../../workers/dataset.worker.ts', import.meta.url), {
      type: 'module',
      name: 'dataset',
    });
    remote = Comlink.wrap<DatasetWorker>(worker);
  }
  return remote.parse(tokenizer, job, Comlink.proxy(onProgress));
}
