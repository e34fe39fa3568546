// The Export step's files: every format of the engine's export library (src/engine/export), built from what the
// page holds — the stored study and its plan, the best trial and its PEFT adapter, the model and the dataset.
// The export context comes from the study's plan (the one its workers trained with), as in `tunelab tune`.
import { version as tunelabVersion } from '../../../package.json';
import { EXPORT_PATHS, exportBundle, exportFile, type ExportFile } from '../../engine/export/bundle.ts';
import type { AdapterInput } from '../../engine/export/bundle.ts';
import { planExportContext, type ExportContext, type ExportModel } from '../../engine/export/context.ts';
import type { MixedPrecision } from '../../engine/export/hf.ts';
import { TransferError, type TransferOptions } from '../../engine/export/transfer.ts';
import { parameterCount } from '../../engine/model/memory.ts';
import type { ModelSpec } from '../../engine/model/config.ts';
import type { Study, TrialRecord } from '../../engine/search/index.ts';
import type { DatasetFormat } from '../../engine/train/data.ts';
import { StudyPlan, type StudyPlanSpec } from '../../engine/tune/plan.ts';
import type { ModelRef, StudyMeta } from './db.ts';
import { describeError } from './errors.ts';
import { planInput } from './search-config.ts';

export type { ExportFile } from '../../engine/export/bundle.ts';

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
  /** Seconds per trial number (trials.csv's duration) and the precision the trials' GPU trained in. */
  timings?: { precision: 'f16' | 'f32' | null; seconds: Readonly<Record<number, number>> };
  /** Mixed precision for the GPU the exports will run on; default: as the study trained. */
  targetPrecision?: MixedPrecision;
  /** The demo model's files (a demo study's exports name them as the base model, beside the configs). */
  demoFiles?: readonly { name: string; contents: Uint8Array<ArrayBuffer> }[];
  /**
   * Export for a larger model of the same family; the study model's parameter count comes from `spec` when
   * `sourceParams` is not given.
   */
  transfer?: Omit<TransferOptions, 'sourceParams'> & { sourceParams?: number };
}

/** A parameter count as people write it: '361821120', '360M', '1.1B', '0.5b'; NaN for anything else. */
export function parseParamCount(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmb]?)\s*$/i.exec(text);
  if (!m) return NaN;
  const scale = { '': 1, k: 1e3, m: 1e6, b: 1e9 }[m[2].toLowerCase() as '' | 'k' | 'm' | 'b'];
  return Math.round(Number(m[1]) * scale);
}

/** Where a demo study's exports put the demo model's files, and the base model they name. */
export const DEMO_MODEL_PATH = './demo-model';

const DEMO_NOTE =
  "tunelab's built-in demo model (a tiny Llama with its own 320-token tokenizer, on no hub): a local path; " +
  'its files are in demo-model/ beside this file. For a real run pass a Hub id of the same family, such as ' +
  'HuggingFaceTB/SmolLM2-135M.';

/** A local folder's name as a relative path the exports can name ('my model' → './my model'). */
const localPath = (label: string): string =>
  label.startsWith('/') || label.startsWith('.') ? label : `./${label}`;

/**
 * The base model as the exports name it: a loadable id, never the page's label. The Hub repo id; the demo as
 * './demo-model' with its files in the export; a local folder as a relative path to the user's copy of it.
 */
export function exportModelOf(
  ref: ModelRef,
  demoFiles: ExportInput['demoFiles'],
): Omit<ExportModel, 'family'> {
  switch (ref.kind) {
    case 'hub':
      return { id: ref.repo, revision: ref.revision };
    case 'demo':
      return {
        id: DEMO_MODEL_PATH,
        revision: null,
        note: DEMO_NOTE,
        ...(demoFiles ? { files: demoFiles } : {}),
      };
    case 'local':
      return {
        id: localPath(ref.label),
        revision: null,
        note: `the local model folder the study loaded ('${ref.label}'): a local path; point it at your copy.`,
      };
  }
}

export interface ExportResult {
  files: ExportFile[];
  /** Why the full export could not be built (files then hold only the study log); null when it was. */
  error: string | null;
}

/** The name a single file downloads as: the last part of its path (every export's last part is unique). */
export function downloadName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** The plan the study ran with: the one in its log, else its settings' (a study stored before plans). */
export function planOf(input: Pick<ExportInput, 'meta' | 'study' | 'spec'>): StudyPlan {
  const family = input.spec?.family ?? 'llama';
  const logged = input.study.plan as unknown as StudyPlanSpec | null;
  return StudyPlan.create(logged ?? planInput(input.meta.settings), { family });
}

/** The export context of a study's best trial, from its plan, its model and its data. */
export function exportContext(input: ExportInput, best: TrialRecord): ExportContext {
  const { meta, study, timings } = input;
  const seconds = timings?.seconds ?? {};
  return planExportContext(planOf(input), {
    study,
    best,
    model: {
      ...exportModelOf(meta.model, input.demoFiles),
      family: input.spec?.family ?? 'llama',
      ...(input.spec ? { spec: input.spec } : {}),
    },
    dataset: {
      fingerprint: input.dataset?.fingerprint ?? 'unknown',
      name: meta.dataFile,
      ...(input.dataset?.format ? { format: input.dataset.format } : {}),
      ...(input.dataset?.examples !== undefined ? { examples: input.dataset.examples } : {}),
    },
    tunelabVersion,
    ...(input.date ? { date: input.date } : {}),
    timings: Object.fromEntries(Object.entries(seconds).map(([n, s]) => [n, { duration: s }])),
    ...(timings?.precision ? { ranPrecision: timings.precision } : {}),
    ...(input.targetPrecision ? { targetPrecision: input.targetPrecision } : {}),
    ...(input.transfer ? { transfer: transferOf(input) } : {}),
  });
}

/** The transfer options with the study model's parameter count filled in. */
function transferOf(input: ExportInput): TransferOptions {
  const t = input.transfer!;
  const sourceParams = t.sourceParams ?? (input.spec ? parameterCount(input.spec) : undefined);
  if (sourceParams === undefined)
    throw new TransferError(
      'sourceParams',
      "the study's model is not loaded, so its parameter count is unknown",
    );
  return { ...t, sourceParams };
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
    return { files: exportBundle(exportContext(input, best), peft), error: null };
  } catch (e) {
    return {
      files: [exportFile(EXPORT_PATHS.studyLog, study.log())],
      error: `The exports could not be built: ${describeError(e)}`,
    };
  }
}
