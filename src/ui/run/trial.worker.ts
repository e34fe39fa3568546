// A trial worker: owns one GPUDevice and one loaded base model and runs trials on it one after another.
// Interim: the playground drives these directly until the shared pool in src/workers/ lands.
import * as Comlink from 'comlink';
import { acquireGpu, type Gpu } from '../../engine/gpu/index.ts';
import { blobSource, sourcesFiles } from '../../engine/model/byte-source.ts';
import { loadModel, type LoadedModel } from '../../engine/model/load.ts';
import { openModel, type OpenedModel } from '../../engine/model/open.ts';
import {
  dataTokenizer,
  padIdOf,
  parseDataset,
  splitExamples,
  type Example,
} from '../../engine/train/data.ts';
import { Trainer } from '../../engine/train/trainer.ts';
import { trainerOptions } from '../lib/search-config.ts';
import type { TrialJob, TrialOutcome, TrialStep, WorkerInfo, WorkerInit } from './messages.ts';

let gpu: Gpu | null = null;
let opened: OpenedModel | null = null;
let loaded: LoadedModel | null = null;
let train: Example[] = [];
let validation: Example[] = [];
let classes: string[] | null = null;
let padId = 0;
let seq = 0;
let modelLabel = '';
let controller: AbortController | null = null;

const api = {
  async init(init: WorkerInit): Promise<WorkerInfo> {
    gpu = await acquireGpu({ precision: init.precision });
    const files = sourcesFiles(
      init.modelLabel,
      Object.entries(init.modelFiles).map(([name, blob]) => blobSource(name, blob)),
    );
    opened = await openModel(files);
    loaded = await loadModel(gpu, opened);
    const tok = dataTokenizer(opened.tokenizer);
    const data = parseDataset(init.dataFile, init.dataText, tok, { seq: init.seq });
    ({ train, validation } = splitExamples(data.examples, init.valRatio, init.seed));
    classes = data.classes ?? null;
    padId = padIdOf(tok);
    seq = init.seq;
    modelLabel = init.modelLabel;
    return {
      adapter: [gpu.adapter.vendor, gpu.adapter.architecture, gpu.adapter.description]
        .filter(Boolean)
        .join(' · '),
      precision: gpu.precision,
      trainExamples: train.length,
      validationExamples: validation.length,
      classes,
    };
  },

  async run(job: TrialJob, onStep: (m: TrialStep) => Promise<boolean>): Promise<TrialOutcome> {
    if (!gpu || !loaded || !opened) throw new Error('the trial worker was not initialised');
    const options = trainerOptions(job.params, opened.spec.family, {
      steps: job.steps,
      seq,
      seed: job.seed,
      ...(classes ? { classes } : {}),
    });
    const trainer = new Trainer(gpu, loaded, train, validation, padId, options);
    controller = new AbortController();
    const signal = controller.signal;
    let last = { loss: NaN, tokensPerSecond: 0 };
    try {
      const { lastEval } = await trainer.run({
        signal,
        onStep: (m) => {
          last = m;
          void onStep({ step: m.step, loss: m.loss, lr: m.lr, tokensPerSecond: m.tokensPerSecond }).then(
            (go) => {
              if (!go) controller?.abort();
            },
          );
        },
      });
      const aborted = signal.aborted;
      let adapter: TrialOutcome['adapter'] = null;
      if (!aborted) {
        const files = await trainer.exportAdapter(modelLabel);
        adapter = { config: files['adapter_config.json'], weights: files['adapter_model.safetensors'] };
      }
      return {
        steps: trainer.step,
        aborted,
        trainLoss: last.loss,
        valLoss: lastEval?.valLoss ?? null,
        accuracy: lastEval?.accuracy ?? null,
        macroF1: lastEval?.macroF1 ?? null,
        tokensPerSecond: last.tokensPerSecond,
        adapter,
      };
    } finally {
      controller = null;
      trainer.destroy();
    }
  },

  abort(): void {
    controller?.abort();
  },
};

export type TrialWorkerApi = typeof api;
Comlink.expose(api);
