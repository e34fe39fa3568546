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
import { optunaScript, rayTuneScript } from './python.ts';
import { trialsCsv } from './trials-csv.ts';

export interface ExportFile {
  /** Relative path inside the export folder, '/'-separated. */
  path: string;
  contents: string | Uint8Array;
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
  trials: 'trials.csv',
  studyLog: 'study.jsonl',
} as const;

/** PEFT adapter files for the best trial (a model spec is needed to lay out parameters). */
export function adapterFiles(ctx: ResolvedContext, adapter: AdapterInput): ExportFile[] {
  let files: PeftAdapterFiles;
  if ('layout' in adapter) {
    if (!ctx.model.spec) throw new Error('export: the adapter needs the model spec (model.spec)');
    files = exportPeftAdapter(loraConfigOf(ctx.config), ctx.model.spec, adapter.layout, adapter.params, {
      baseModel: ctx.model.id,
      revision: ctx.model.revision,
    });
  } else files = adapter;
  return [
    { path: EXPORT_PATHS.adapterConfig, contents: files['adapter_config.json'] },
    { path: EXPORT_PATHS.adapterWeights, contents: files['adapter_model.safetensors'] },
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
  const hf = { outputDir: ctx.outputDir };
  return [
    { path: EXPORT_PATHS.bestConfig, contents: bestConfigJson(ctx) },
    ...(adapter ? adapterFiles(ctx, adapter) : []),
    { path: EXPORT_PATHS.trainingArguments, contents: json(trainingArguments(ctx.config, hf)) },
    { path: EXPORT_PATHS.sftConfig, contents: json(sftConfig(ctx.config, ctx.dataset.format, hf)) },
    { path: EXPORT_PATHS.loraConfig, contents: loraConfigPython(ctx.config, ctx.model.family) },
    { path: EXPORT_PATHS.axolotl, contents: axolotlYaml(ctx) },
    { path: EXPORT_PATHS.optuna, contents: optunaScript(ctx) },
    { path: EXPORT_PATHS.rayTune, contents: rayTuneScript(ctx) },
    { path: EXPORT_PATHS.trials, contents: trialsCsv(ctx.study, ctx.timings) },
    { path: EXPORT_PATHS.studyLog, contents: ctx.study.log() },
  ];
}
