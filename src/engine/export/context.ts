// What every exporter reads: the study and its best trial, the best trial's TrialConfig, the model, the
// dataset and the version of tunelab. Exporters are pure functions of this (the date is passed in).
import type { LoraModelShape } from '../lora/config.ts';
import type { ModelFamily } from '../model/config.ts';
import type { Study } from '../search/study.ts';
import type { TrialRecord } from '../search/types.ts';
import type { ColumnMapping } from '../train/columns.ts';
import type { DatasetFormat } from '../train/data.ts';
import type { TrialConfig } from '../train/config.ts';
import { metricsOfValue, type Objective } from '../tune/objective.ts';
import type { StudyPlan, StudyPlanSpec } from '../tune/plan.ts';
import { defaultMixedPrecision, type MixedPrecision } from './hf.ts';
import { studySettings, type StudySettings } from './study-settings.ts';
import { transferConfig, type TransferOptions, type TransferRecord } from './transfer.ts';

export interface ExportModel {
  /** Hub repo id or local path, e.g. 'HuggingFaceTB/SmolLM2-135M'. */
  id: string;
  /** Hub revision (commit or branch); null when unknown or local. */
  revision: string | null;
  family: ModelFamily;
  /** The architecture (a ModelSpec will do); needed only to lay out adapter parameters. */
  spec?: LoraModelShape;
  /** What `id` is, when the id alone does not say (a local path: where its files are); the exports print it. */
  note?: string;
  /**
   * The model's own files, for a model no hub has (the page's demo): exported beside the configs in the
   * folder `id` names, which must then be a relative path such as './demo-model'.
   */
  files?: readonly { name: string; contents: string | Uint8Array<ArrayBuffer> }[];
}

export interface ExportDataset {
  /** datasetFingerprint() of the training (and validation) files. */
  fingerprint: string;
  /** File name as the user gave it, e.g. 'train.jsonl'. */
  name?: string;
  format?: DatasetFormat;
  /** Share held out for validation when no separate file was given. */
  valRatio?: number;
  /** The columns the study read (its plan's mapping); absent: each format's fixed names. */
  columns?: ColumnMapping;
  examples?: number;
}

/** Evaluation of the best trial (what the trainer's EvalMetrics held at the end). */
export interface BestMetrics {
  valLoss?: number;
  perplexity?: number;
  accuracy?: number;
  macroF1?: number;
}

export interface TrialTiming {
  /** Wall-clock seconds the trial ran. */
  duration?: number;
  /** ISO times. */
  start?: string;
  end?: string;
}

export interface ExportContext {
  study: Study;
  /** Default: study.bestTrial. */
  best?: TrialRecord;
  /** The best trial's full training configuration (trialConfigFromParams of its params). */
  config: TrialConfig;
  /** The fixed values the study ran with, when known: tells a searched value from a default. */
  fixed?: Partial<TrialConfig>;
  model: ExportModel;
  dataset: ExportDataset;
  /** package.json version. */
  tunelabVersion: string;
  /** Export date, ISO 8601; default now. */
  date?: string;
  /** Name of the objective the study optimised, e.g. 'val_loss'. Default 'val_loss'. */
  objective?: string;
  metrics?: BestMetrics;
  /** Per trial number. */
  timings?: Readonly<Record<number, TrialTiming>>;
  /** output_dir in the HF/axolotl configs. Default './tunelab-best'. */
  outputDir?: string;
  /** The recipe the study ran with: the exports state its sampler, pruner, PBT, objective and direction. */
  plan?: StudyPlanSpec;
  /** The precision the trials ran in on their GPU (what 'auto' became); unknown when absent. */
  ranPrecision?: 'f16' | 'f32';
  /** Mixed precision for the GPU the exports will run on; default: as the study trained (defaultMixedPrecision). */
  targetPrecision?: MixedPrecision;
  /** Export for a larger model of the same family, by the rules of transfer.ts; absent: for the study's model. */
  transfer?: TransferOptions;
}

/** What an export needs besides the plan: the study, the model, the data and who made it. */
export type PlanExportInput = Omit<ExportContext, 'config' | 'fixed' | 'objective' | 'plan' | 'dataset'> & {
  dataset: Omit<ExportDataset, 'valRatio' | 'columns'>;
};

/**
 * The export context of a study's best trial, read from the plan it ran with: the trial's configuration as its
 * worker trained it, the values every trial shared, the objective and the validation split. Without measured
 * metrics, the best value stands under the objective's name.
 */
export function planExportContext(plan: StudyPlan, input: PlanExportInput): ExportContext {
  const best = input.best ?? input.study.bestTrial;
  if (best === undefined) throw new Error('export: the study has no complete trial yet');
  const { objective, valRatio, columns } = plan.spec;
  return {
    ...input,
    best,
    config: plan.trialConfig(best.params),
    fixed: plan.spec.fixed,
    dataset: {
      ...input.dataset,
      ...(valRatio !== null ? { valRatio } : {}),
      ...(columns ? { columns } : {}),
    },
    objective,
    metrics: input.metrics ?? metricsOfValue(objective as Objective, best.value),
    plan: plan.toJSON(),
  };
}

export interface ResolvedContext extends ExportContext {
  best: TrialRecord;
  date: string;
  objective: string;
  outputDir: string;
  /** How the study searched, from its plan: what every export states. */
  settings: StudySettings;
  /** fp16 / bf16 / no, for every export that sets mixed precision. */
  mixedPrecision: MixedPrecision;
  /** What the exports train: the best trial's configuration, transferred to `model` when a transfer is asked. */
  config: TrialConfig;
  /** The model the exports train: the transfer's target, else the study's. */
  model: ExportModel;
  /** The best trial's configuration and model as the study ran them (the adapter belongs to these). */
  studyConfig: TrialConfig;
  studyModel: ExportModel;
  /** How the transferred values were made; null without a transfer. */
  transferRecord: TransferRecord | null;
}

export function resolveContext(ctx: ExportContext): ResolvedContext {
  const best = ctx.best ?? ctx.study.bestTrial;
  if (best === undefined) throw new Error('export: the study has no complete trial yet');
  if (best.state !== 'complete')
    throw new Error(`export: trial ${best.number} is ${best.state}, not complete`);
  const settings = studySettings(ctx.study, ctx.plan, ctx.objective);
  const transferred = ctx.transfer ? transferConfig(ctx.config, ctx.transfer) : null;
  const target = ctx.transfer?.target;
  return {
    ...ctx,
    config: transferred?.config ?? ctx.config,
    model: target
      ? { id: target.id, revision: target.revision ?? null, family: ctx.model.family }
      : ctx.model,
    studyConfig: ctx.config,
    studyModel: ctx.model,
    transferRecord: transferred?.record ?? null,
    best,
    date: ctx.date ?? new Date().toISOString(),
    objective: settings.objective,
    outputDir: ctx.outputDir ?? './tunelab-best',
    settings,
    mixedPrecision: ctx.targetPrecision ?? defaultMixedPrecision(ctx.config, ctx.ranPrecision),
  };
}

/** The sampler's name, whether the study was given a name or an options object. */
export function samplerName(study: Study): string {
  const s = study.samplerSpec;
  return typeof s === 'string' ? s : s.type;
}
