// The Try step's generator, in a Worker of its own: one GPUDevice and one loaded base model (loaded again
// only when the page picks another model), streaming text for the base model or base + a PEFT adapter.
import * as Comlink from 'comlink';
import { acquireGpu, type Gpu, type PrecisionChoice } from '../engine/gpu/index.ts';
import { blobSource, sourcesFiles } from '../engine/checkpoint/byte-source.ts';
import { loadModel } from '../engine/model/load.ts';
import { openModel } from '../engine/model/open.ts';
import { TextGenerator, type AdapterFiles } from '../engine/model/text-generator.ts';
import type { StopReason } from '../engine/model/generate.ts';

export interface GenerateModel {
  /** Changes when the page loads another model (the worker then loads it). */
  key: string;
  files: Record<string, Blob>;
  precision: PrecisionChoice;
}

export interface GenerateJob {
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  seed: number;
  adapter: AdapterFiles | null;
}

export interface Generated {
  /** The decode of every new token (the streamed pieces may hold back a split character at the end). */
  text: string;
  /** The new token ids (prompt and EOS excluded). */
  tokens: number[];
  stopReason: StopReason;
}

let gpu: Gpu | null = null;
let generator: TextGenerator | null = null;
let loadedKey = '';
let controller: AbortController | null = null;

async function ensureModel(model: GenerateModel): Promise<TextGenerator> {
  if (generator && loadedKey === model.key) return generator;
  generator?.loaded.destroy();
  generator = null;
  gpu?.destroy();
  gpu = await acquireGpu({ precision: model.precision });
  const files = sourcesFiles(
    model.key,
    Object.entries(model.files).map(([name, blob]) => blobSource(name, blob)),
  );
  const opened = await openModel(files);
  generator = new TextGenerator(gpu, opened, await loadModel(gpu, opened, { precision: gpu.precision }));
  loadedKey = model.key;
  return generator;
}

const api = {
  async generate(
    model: GenerateModel,
    job: GenerateJob,
    onText: (piece: string) => void,
  ): Promise<Generated> {
    // Made before the model loads, so a stop during the load is not lost.
    const stop = (controller = new AbortController());
    try {
      const gen = await ensureModel(model);
      const result = await gen.generate({ ...job, signal: stop.signal, onText });
      return { text: result.text ?? '', tokens: result.tokens, stopReason: result.stopReason };
    } finally {
      controller = null;
    }
  },

  stop(): void {
    controller?.abort();
  },
};

export type GenerateWorker = typeof api;
Comlink.expose(api);
