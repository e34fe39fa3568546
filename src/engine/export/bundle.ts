// All exports of the best trial as a list of files; the CLI writes them to a folder, the page zips them.
import { exportPeftAdapter } from '../lora/peft.ts';
import type { PeftAdapterFiles } from '../lora/peft.ts';
import type { LoraLayout } from '../lora/init.ts';
import { loraConfigOf } from '../train/config.ts';
import { axolotlYaml } from './axolotl.ts';
import { bestConfigJson } from './best-config.ts';
import type { ExportContext, ResolvedContext } from './context.ts';
import { resolveContext } from './context.ts';
import { loraConfigPython, sftConfig, trainingArguments } from './hf.ts';
import { colabNotebook } from './colab.ts';
import { optunaScript, rayTuneScript } from './python.ts';
import { trialsCsv } from './trials-csv.ts';

export interface ExportFile {
  /** Relative path inside the export folder (and the page's zip), '/'-separated. */
  path: string;
  contents: string | Uint8Array<ArrayBuffer>;
  /** What the file is and what loads it. */
  description: string;
  /** MIME type, for a download. */
  mime: string;
}

/** The trained adapter of the best trial: files as the trainer exported them, or its flat parameters. */
export type AdapterInput = PeftAdapterFiles | { layout: LoraLayout; params: Float32Array };

export const EXPORT_PATHS = {
  bestConfig: 'best-config.json',
  adapterConfig: 'adapter/adapter_config.json',
  adapterWeights: 'adapter/adapter_model.safetensors',
  trainingArguments: 'hf/training_args.json',
  sftConfig: 'hf/sft_config.json',
  loraConfig: 'hf/lora_config.py',
  axolotl: 'axolotl.yaml',
  optuna: 'optuna_search.py',
  rayTune: 'ray_tune_search.py',
  colab: 'colab.ipynb',
  trials: 'trials.csv',
  studyLog: 'study.jsonl',
} as const;

type ExportPath = (typeof EXPORT_PATHS)[keyof typeof EXPORT_PATHS];

/** What each export is and what loads it, with its MIME type. */
export const EXPORT_FORMATS: Record<ExportPath, { description: string; mime: string }> = {
  [EXPORT_PATHS.bestConfig]: {
    description: 'Best trial: every hyperparameter, its metrics, the model, the data and the search',
    mime: 'application/json',
  },
  [EXPORT_PATHS.adapterConfig]: {
    description: 'PEFT adapter configuration (PeftModel.from_pretrained loads the adapter folder)',
    mime: 'application/json',
  },
  [EXPORT_PATHS.adapterWeights]: {
    description: 'PEFT adapter weights: LoRA A and B of the best trial',
    mime: 'application/octet-stream',
  },
  [EXPORT_PATHS.trainingArguments]: {
    description: 'Hugging Face TrainingArguments (transformers)',
    mime: 'application/json',
  },
  [EXPORT_PATHS.sftConfig]: { description: 'TRL SFTConfig', mime: 'application/json' },
  [EXPORT_PATHS.loraConfig]: { description: 'peft.LoraConfig snippet', mime: 'text/x-python' },
  [EXPORT_PATHS.axolotl]: { description: 'axolotl config', mime: 'application/yaml' },
  [EXPORT_PATHS.optuna]: {
    description: 'Optuna script continuing the search over the narrowed space',
    mime: 'text/x-python',
  },
  [EXPORT_PATHS.rayTune]: {
    description: 'Ray Tune script continuing the search over the narrowed space',
    mime: 'text/x-python',
  },
  [EXPORT_PATHS.colab]: {
    description: 'Colab notebook re-running the best configuration with transformers + PEFT on a T4 (fp16)',
    mime: 'application/x-ipynb+json',
  },
  [EXPORT_PATHS.trials]: { description: 'All trials as CSV', mime: 'text/csv' },
  [EXPORT_PATHS.studyLog]: {
    description: 'Study event log with its plan (re-importable here, runnable by tunelab tune --plan)',
    mime: 'application/x-ndjson',
  },
};

/** The folder a relative model path names ('./demo-model' → 'demo-model'); null for a hub id or an absolute path. */
function relativeModelFolder(id: string): string | null {
  const m = /^\.\/([\w.-]+)\/?$/.exec(id);
  return m && m[1] !== '.' && m[1] !== '..' ? m[1] : null;
}

/** The model's own files under the folder its id names, so the exports' base model loads from beside them. */
export function modelFiles(ctx: ResolvedContext): ExportFile[] {
  const model = ctx.studyModel;
  const files = model.files ?? [];
  if (files.length === 0) return [];
  const folder = relativeModelFolder(model.id);
  if (folder === null)
    throw new Error(
      `export: model files need a relative folder as the model id (like './demo-model'), got '${model.id}'`,
    );
  return files.map((f) => ({
    path: `${folder}/${f.name}`,
    contents: f.contents,
    description: `Base model file (${model.note ?? model.id})`,
    mime: f.name.endsWith('.json') ? 'application/json' : 'application/octet-stream',
  }));
}

/**
 * adapter_config.json naming the exports' base model: the run stored the model as the page showed it (the
 * demo's label), which AutoPeftModel cannot load.
 */
function withBaseModel(configJson: string, id: string): string {
  const config = JSON.parse(configJson) as Record<string, unknown>;
  if (config.base_model_name_or_path === id) return configJson;
  return JSON.stringify({ ...config, base_model_name_or_path: id }, null, 2) + '\n';
}

/** One export file, described. */
export function exportFile(path: ExportPath, contents: string | Uint8Array<ArrayBuffer>): ExportFile {
  return { path, contents, ...EXPORT_FORMATS[path] };
}

/** PEFT adapter files for the best trial (a model spec is needed to lay out parameters). */
export function adapterFiles(ctx: ResolvedContext, adapter: AdapterInput): ExportFile[] {
  let files: PeftAdapterFiles;
  if ('layout' in adapter) {
    if (!ctx.studyModel.spec) throw new Error('export: the adapter needs the model spec (model.spec)');
    files = exportPeftAdapter(
      loraConfigOf(ctx.studyConfig),
      ctx.studyModel.spec,
      adapter.layout,
      adapter.params,
      {
        baseModel: ctx.studyModel.id,
        revision: ctx.studyModel.revision,
      },
    );
  } else files = adapter;
  return [
    // The adapter is the study's: it names the model it was trained on, whatever the exports scale up to.
    exportFile(EXPORT_PATHS.adapterConfig, withBaseModel(files['adapter_config.json'], ctx.studyModel.id)),
    exportFile(EXPORT_PATHS.adapterWeights, files['adapter_model.safetensors']),
  ];
}

const json = (v: unknown): string => JSON.stringify(v, null, 2) + '\n';

/**
 * Every export: best-config.json, the PEFT adapter (when given), HF TrainingArguments / TRL SFTConfig JSON and
 * a peft.LoraConfig snippet, axolotl.yaml, Optuna and Ray Tune scripts over the narrowed space, trials.csv and
 * the study log (study.jsonl, which loadStudy re-imports).
 */
export function exportBundle(context: ExportContext, adapter?: AdapterInput): ExportFile[] {
  const ctx = resolveContext(context);
  const hf = { outputDir: ctx.outputDir, mixedPrecision: ctx.mixedPrecision };
  return [
    exportFile(EXPORT_PATHS.bestConfig, bestConfigJson(ctx)),
    ...(adapter ? adapterFiles(ctx, adapter) : []),
    exportFile(EXPORT_PATHS.trainingArguments, json(trainingArguments(ctx.config, hf))),
    exportFile(
      EXPORT_PATHS.sftConfig,
      json(sftConfig(ctx.config, ctx.dataset.format, hf, ctx.dataset.columns)),
    ),
    exportFile(
      EXPORT_PATHS.loraConfig,
      loraConfigPython(ctx.config, ctx.model.family, ctx.transferRecord?.lines ?? []),
    ),
    exportFile(EXPORT_PATHS.axolotl, axolotlYaml(ctx)),
    exportFile(EXPORT_PATHS.optuna, optunaScript(ctx)),
    exportFile(EXPORT_PATHS.rayTune, rayTuneScript(ctx)),
    exportFile(EXPORT_PATHS.colab, colabNotebook(ctx)),
    exportFile(EXPORT_PATHS.trials, trialsCsv(ctx.study, ctx.timings)),
    exportFile(EXPORT_PATHS.studyLog, ctx.study.log()),
    ...modelFiles(ctx),
  ];
}
