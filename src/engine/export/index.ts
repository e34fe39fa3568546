// Public surface of the export library (host-agnostic: returns file contents; callers write files or zips).
export {
  adapterFiles,
  exportBundle,
  modelFiles,
  exportFile,
  EXPORT_FORMATS,
  EXPORT_PATHS,
} from './bundle.ts';
export type { AdapterInput, ExportFile } from './bundle.ts';
export { planExportContext, resolveContext, samplerName } from './context.ts';
export { ExportSettingsError, studySettings } from './study-settings.ts';
export type { StudySettings } from './study-settings.ts';
export { shellLine, shellQuote } from './shell.ts';
export { colabModel, colabNotebook, HUB_MODEL_OF_FAMILY } from './colab.ts';
export { LR_RULES, transferConfig, TransferError, transferSpace } from './transfer.ts';
export type { LrRule, TransferOptions, TransferRecord } from './transfer.ts';
export type {
  BestMetrics,
  ExportContext,
  ExportDataset,
  ExportModel,
  PlanExportInput,
  ResolvedContext,
  TrialTiming,
} from './context.ts';
export { bestConfig, bestConfigJson, BEST_CONFIG_FORMAT } from './best-config.ts';
export {
  defaultMixedPrecision,
  hfNotes,
  hfSchedulerType,
  loggingSteps,
  loraConfigPython,
  MIXED_PRECISION_TARGETS,
  sftConfig,
  sftDataFields,
  trainingArguments,
} from './hf.ts';
export type { HfOptions, MixedPrecision } from './hf.ts';
export { axolotlConfig, axolotlDataset, axolotlYaml } from './axolotl.ts';
export { continuedSearch, optunaScript, pythonConfig, rayTuneScript } from './python.ts';
export { pyLiteral, pyString } from './py.ts';
export { narrowSpace } from './narrow.ts';
export type { NarrowOptions } from './narrow.ts';
export { csvField, trialsCsv } from './trials-csv.ts';
export { datasetFingerprint, sha256Hex } from './fingerprint.ts';
export { toYaml, yamlNumber, yamlString } from './yaml.ts';
export type { YamlValue } from './yaml.ts';
export {
  attentionTargets,
  defaultTrialConfig,
  fieldOfParam,
  mapTargets,
  trialConfigFromParams,
  TrialConfigError,
  validateTrialConfig,
} from '../train/config.ts';
export type { TrialConfig } from '../train/config.ts';
export { ADAPTER_FILES, HubPushError, modelCard, pushAdapter, repoNameProblem } from './hub-push.ts';
export type { HubPushInput, HubPushProblem, HubPushResult, HubPushStep, ModelCardInput } from './hub-push.ts';
