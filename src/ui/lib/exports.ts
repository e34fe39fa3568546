// The Export step's files: every format of the engine's export library (src/engine/export), built from what the
// page holds — the stored study and its settings, the best trial and its PEFT adapter, the model and the
// dataset. The best trial's configuration goes through the same mapping its worker trained with
// (trialConfig in search-config.ts), so the exported hyperparameters are exactly what trained.
import { version as tunelabVersion } from '../../../package.json';
import { EXPORT_PATHS, exportBundle } from '../../engine/export/bundle.ts';
import type { AdapterInput } from '../../engine/export/bundle.ts';
import type { BestMetrics, ExportContext } from '../../engine/export/context.ts';
import type { ModelSpec } from '../../engine/model/config.ts';
import type { Study, TrialRecord } from '../../engine/search/index.ts';
import { fieldOfParam } from '../../engine/train/config.ts';
import type { TrialConfig } from '../../engine/train/config.ts';
import type { DatasetFormat } from '../../engine/train/data.ts';
import { modelId, type StudyMeta } from './db.ts';
import { describeError } from './errors.ts';
import { fixedParams, trialBudget, trialConfig, type Objective } from './search-config.ts';

export interface ExportFile {
  /** Path inside the export (and the zip), '/'-separated, e.g. 'adapter/adapter_model.safetensors'. */
  name: string;
  description: string;
  data: string | Uint8Array<ArrayBuffer>;
  type: string;
}

/** PEFT files of the best trial, as the run stored them. */
export interface BestAdapter {
  trial: number;
  config: string;
  weights: Uint8Array<ArrayBuffer>;
}

export interface ExportInput {
  meta: StudyMeta;
  study: Study;
  best: TrialRecord | null;
  adapter: BestAdapter | null;
  /** The model's architecture (OpenedModel.spec); without it the family is taken to be Llama-style. */
  spec?: ModelSpec | null;
  dataset?: {
    format?: DatasetFormat | null;
    /** datasetFingerprint() of the data text; 'unknown' when absent. */
    fingerprint?: string | null;
    examples?: number;
  };
  /** ISO date; default now. */
  date?: string;
}

export interface ExportResult {
  files: ExportFile[];
  /** Why the full export could not be built (files then hold only the study log); null when it was. */
  error: string | null;
}

/** What each export is and what loads it, with its MIME type. */
const FORMATS: Record<string, { description: string; type: string }> = {
  [EXPORT_PATHS.bestConfig]: {
    description: 'Best trial: every hyperparameter, its metrics, the model, the data and the search',
    type: 'application/json',
  },
  [EXPORT_PATHS.adapterConfig]: {
    description: 'PEFT adapter configuration (PeftModel.from_pretrained loads the adapter folder)',
    type: 'application/json',
  },
  [EXPORT_PATHS.adapterWeights]: {
    description: 'PEFT adapter weights: LoRA A and B of the best trial',
    type: 'application/octet-stream',
  },
  [EXPORT_PATHS.trainingArguments]: {
    description: 'Hugging Face TrainingArguments (transformers)',
    type: 'application/json',
  },
  [EXPORT_PATHS.sftConfig]: { description: 'TRL SFTConfig', type: 'application/json' },
  [EXPORT_PATHS.loraConfig]: { description: 'peft.LoraConfig snippet', type: 'text/x-python' },
  [EXPORT_PATHS.axolotl]: { description: 'axolotl config', type: 'application/yaml' },
  [EXPORT_PATHS.optuna]: {
    description: 'Optuna script continuing the search over the narrowed space',
    type: 'text/x-python',
  },
  [EXPORT_PATHS.rayTune]: {
    description: 'Ray Tune script continuing the search over the narrowed space',
    type: 'text/x-python',
  },
  [EXPORT_PATHS.trials]: { description: 'All trials as CSV', type: 'text/csv' },
  [EXPORT_PATHS.studyLog]: {
    description: 'Study event log (re-importable here)',
    type: 'application/x-ndjson',
  },
};

/** The name a single file downloads as: the last part of its path (every export's last part is unique). */
export function downloadName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

function uiFile(path: string, contents: string | Uint8Array): ExportFile {
  const format = FORMATS[path] ?? { description: '', type: 'application/octet-stream' };
  // Bytes pass through as they are (the adapter weights are the run's own array).
  const data =
    typeof contents === 'string' || contents.buffer instanceof ArrayBuffer
      ? (contents as string | Uint8Array<ArrayBuffer>)
      : new Uint8Array(contents);
  return { name: path, description: format.description, data, type: format.type };
}

/** The best trial's value under the objective's metric name. */
function metricsOf(objective: Objective, value: number | undefined): BestMetrics {
  if (value === undefined) return {};
  if (objective === 'accuracy') return { accuracy: value };
  if (objective === 'macro_f1') return { macroF1: value };
  return { valLoss: value };
}

/**
 * The export context of a study's best trial: its configuration as the run built it (the form's fixed rows,
 * then the trial's params, over the trial's budget), and the values every trial shared.
 */
export function exportContext(input: ExportInput, best: TrialRecord): ExportContext {
  const { meta, study } = input;
  const s = meta.settings;
  const family = input.spec?.family ?? 'llama';
  const budget = trialBudget(s);
  const fixedRows = fixedParams(s.rows);
  const config = trialConfig({ ...fixedRows, ...best.params }, family, budget);
  // Not searched: the fixed rows (normalised as trained), targets (the form's default when no row gives
  // them), and the budget (the seed too: every trial shares it).
  const shared: (keyof TrialConfig)[] = ['targets', 'steps', 'seq', 'seed', 'evalEvery', 'precision'];
  for (const name of Object.keys(fixedRows)) {
    const field = fieldOfParam(name);
    if (field !== undefined && !shared.includes(field)) shared.push(field);
  }
  const searched = new Set(Object.keys(best.params).map(fieldOfParam));
  const fixed: Partial<Record<keyof TrialConfig, unknown>> = {};
  for (const field of shared) if (!searched.has(field)) fixed[field] = config[field];
  const ref = meta.model;
  return {
    study,
    best,
    config,
    fixed: fixed as Partial<TrialConfig>,
    model: {
      id: modelId(ref),
      revision: ref.kind === 'hub' ? ref.revision : null,
      family,
      ...(input.spec ? { spec: input.spec } : {}),
    },
    dataset: {
      fingerprint: input.dataset?.fingerprint ?? 'unknown',
      name: meta.dataFile,
      ...(input.dataset?.format ? { format: input.dataset.format } : {}),
      valRatio: s.valRatio,
      ...(input.dataset?.examples !== undefined ? { examples: input.dataset.examples } : {}),
    },
    tunelabVersion,
    ...(input.date ? { date: input.date } : {}),
    objective: s.objective,
    metrics: metricsOf(s.objective, best.value),
  };
}

/**
 * Every export of the study's best trial. No complete trial: no files. The adapter comes along when the run
 * kept the best trial's (an opened study may not have it). When the export cannot be built, the error in
 * words and the study log alone, so the study can still be saved.
 */
export function exportFiles(input: ExportInput): ExportResult {
  const { best, adapter, study } = input;
  if (best === null || best.state !== 'complete') return { files: [], error: null };
  try {
    const peft: AdapterInput | undefined =
      adapter && adapter.trial === best.number
        ? { 'adapter_config.json': adapter.config, 'adapter_model.safetensors': adapter.weights }
        : undefined;
    const files = exportBundle(exportContext(input, best), peft);
    return { files: files.map((f) => uiFile(f.path, f.contents)), error: null };
  } catch (e) {
    return {
      files: [uiFile(EXPORT_PATHS.studyLog, study.log())],
      error: `The exports could not be built: ${describeError(e)}`,
    };
  }
}
