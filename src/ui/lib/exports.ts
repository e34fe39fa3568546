// The Export step's files, from a study and its best trial: the best configuration (hyperparameters and
// the trainer options they map to), the PEFT adapter, and the study's event log.
import type { Study, TrialRecord } from '../../engine/search/index.ts';
import type { StudyMeta } from './db.ts';
import { fixedParams, trainerOptions } from './search-config.ts';

export interface ExportFile {
  name: string;
  description: string;
  data: string | Uint8Array<ArrayBuffer>;
  type: string;
}

export function exportFiles(
  meta: StudyMeta,
  study: Study,
  best: TrialRecord | null,
  adapter: { trial: number; config: string; weights: Uint8Array<ArrayBuffer> } | null,
  modelName: string,
): ExportFile[] {
  const out: ExportFile[] = [];
  if (best) {
    const params = { ...fixedParams(meta.settings.rows), ...best.params };
    let training: unknown = null;
    try {
      training = trainerOptions(params, 'llama', {
        steps: meta.settings.stepsPerTrial,
        seq: meta.settings.seq,
        seed: meta.settings.seed + best.number,
      });
    } catch {
      training = null;
    }
    const config = {
      base_model: modelName,
      trial: best.number,
      objective: { name: meta.settings.objective, direction: study.direction, value: best.value },
      hyperparameters: params,
      trainer: training,
      data: { file: meta.dataFile, seq: meta.settings.seq, validation_ratio: meta.settings.valRatio },
      search: { sampler: meta.settings.sampler, pruner: meta.settings.pruner, trials: study.trials.length },
    };
    out.push({
      name: 'best_config.json',
      description: 'Best hyperparameters, objective and the training options they map to',
      data: JSON.stringify(config, null, 2) + '\n',
      type: 'application/json',
    });
  }
  if (adapter && best && adapter.trial === best.number) {
    out.push(
      {
        name: 'adapter_config.json',
        description: 'PEFT adapter configuration (PeftModel.from_pretrained loads it)',
        data: adapter.config,
        type: 'application/json',
      },
      {
        name: 'adapter_model.safetensors',
        description: 'PEFT adapter weights (LoRA A and B of the best trial)',
        data: adapter.weights,
        type: 'application/octet-stream',
      },
    );
  }
  out.push({
    name: 'study.jsonl',
    description: 'The study event log (JSON lines): import it here again, or analyse it elsewhere',
    data: study.log(),
    type: 'application/x-ndjson',
  });
  return out;
}
