// Pieces every command shares: opening a model directory, reading a dataset file, and progress on stderr.
import { readFile, stat } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Gpu, Precision } from '../engine/gpu/index.ts';
import { openModel, type OpenedModel } from '../engine/model/open.ts';
import { loadModel, type LoadedModel } from '../engine/model/load.ts';
import { dataTokenizer, parseDataset, type Dataset, type DatasetOptions } from '../engine/train/data.ts';
import {
  COLUMN_ROLES,
  ColumnMappingError,
  resolveMapping,
  type ColumnMapping,
  type ColumnRole,
} from '../engine/train/columns.ts';
import { nodeDirectoryFiles } from '../node/files.ts';
import { LoraConfigError, rankProblem, resolveTargets, type LoraConfig } from '../engine/lora/config.ts';
import { decodeUtf8, FileFormatError } from '../engine/json.ts';
import { stringFlag, UsageError, type FlagValues } from './args.ts';

/**
 * A flag's file as text: unreadable, or bytes that are not UTF-8 (with the offset), is a usage error naming the
 * flag and the file; never decoded lossily.
 */
export async function readTextFile(flag: string, file: string): Promise<string> {
  const bytes = await readFile(file).catch((e: NodeJS.ErrnoException) => {
    throw new UsageError(
      `--${flag}: cannot read ${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`,
    );
  });
  try {
    return decodeUtf8(new Uint8Array(bytes), file);
  } catch (e) {
    throw e instanceof FileFormatError ? new UsageError(`--${flag}: ${e.message}`) : e;
  }
}

export async function openModelDir(dir: string): Promise<OpenedModel> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) {
    throw new UsageError(
      `--model: '${dir}' is not a directory (expected a Hugging Face model folder with config.json)`,
    );
  }
  return openModel(await nodeDirectoryFiles(dir));
}

/** --out must be a folder or not exist yet: checked before the run, not when its files are written. */
export async function checkOutDir(out: string): Promise<void> {
  const info = await stat(out).catch(() => null);
  if (info && !info.isDirectory()) throw new UsageError(`--out: '${out}' exists and is not a directory`);
}

/** The adapter the flags ask for fits the model (targets that match its layers, a rank they allow), before the GPU. */
export function checkAdapterFits(lora: LoraConfig, spec: OpenedModel['spec']): void {
  try {
    const rank = rankProblem(lora.r, resolveTargets(lora, spec));
    if (rank !== null) throw new UsageError(`--r: ${rank}`);
  } catch (error) {
    if (error instanceof LoraConfigError)
      throw new UsageError(`--${error.field}: ${error.message.replace(`LoraConfig.${error.field}: `, '')}`);
    throw error;
  }
}

export async function loadOntoGpu(gpu: Gpu, opened: OpenedModel, precision: Precision): Promise<LoadedModel> {
  const progress = new Progress('loading weights');
  const loaded = await loadModel(gpu, opened, {
    precision,
    onProgress: (p) => progress.update(p.loaded, p.total, `${(p.bytes / 2 ** 20).toFixed(1)} MiB`),
  });
  progress.done(
    `${(loaded.weightBytes / 2 ** 20).toFixed(1)} MiB of ${precision} weights on ${gpu.adapter.description || gpu.adapter.vendor}`,
  );
  if (loaded.f16Overflow > 0) {
    process.stderr.write(
      `warning: ${loaded.f16Overflow} weight values exceed the f16 range and were saturated\n`,
    );
  }
  return loaded;
}

/** --text-column, --label-column, --prompt-column, --completion-column, --messages-column. */
export const COLUMN_FLAGS = Object.fromEntries(
  COLUMN_ROLES.map((role) => [`${role}-column`, { type: 'string' }]),
) as Record<`${ColumnRole}-column`, { type: 'string' }>;

export const COLUMN_USAGE = `  columns:     --text-column NAME [--label-column NAME] | --prompt-column NAME --completion-column NAME
               | --messages-column NAME: a .csv or .jsonl file's columns by other names (a left-out one takes
               its usual name: --label-column sentiment reads the text from 'text')`;

/** The column mapping the flags give (undefined: none); one that names two tasks' columns is a usage error. */
export function columnsFromFlags(flags: FlagValues): ColumnMapping | undefined {
  const mapping: ColumnMapping = {};
  for (const role of COLUMN_ROLES) {
    const name = stringFlag(flags, `${role}-column`);
    if (name !== undefined) mapping[role] = name;
  }
  if (Object.keys(mapping).length === 0) return undefined;
  try {
    resolveMapping(mapping);
  } catch (error) {
    if (error instanceof ColumnMappingError) throw new UsageError(`--${error.role}-column: ${error.reason}`);
    throw error;
  }
  return mapping;
}

export async function readDataset(
  file: string,
  opened: OpenedModel,
  options: DatasetOptions,
): Promise<Dataset> {
  // Bytes, not text: a file that is not UTF-8 is refused (line and offset), not decoded lossily.
  const bytes = await readFile(file).catch((error: NodeJS.ErrnoException) => {
    throw new UsageError(`cannot read ${file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
  });
  return parseDataset(basename(file), new Uint8Array(bytes), dataTokenizer(opened.tokenizer), options);
}

/** A one-line progress bar on a terminal, a line every 10 % otherwise (logs, CI). */
export class Progress {
  readonly #tty = process.stderr.isTTY === true;
  #lastDecile = -1;

  constructor(readonly label: string) {}

  update(done: number, total: number, detail = ''): void {
    const fraction = total > 0 ? done / total : 1;
    if (this.#tty) {
      const width = 30;
      const filled = Math.round(fraction * width);
      process.stderr.write(
        `\r${this.label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total} ${detail}\x1b[K`,
      );
    } else {
      const decile = Math.floor(fraction * 10);
      if (decile !== this.#lastDecile) {
        this.#lastDecile = decile;
        process.stderr.write(`${this.label}: ${done}/${total} ${detail}\n`);
      }
    }
  }

  done(message: string): void {
    process.stderr.write(`${this.#tty ? '\r\x1b[K' : ''}${this.label}: ${message}\n`);
  }
}
