// The Export step's files: every format of the engine's export library (src/engine/export), built from what the
// page holds — the stored study and its plan, the best trial and its PEFT adapter, the model and the dataset.
// The export context comes from the study's plan (the one its workers trained with), as in `tunelab tune`.
import { version as tunelabVersion } from '../../../package.json';
import { EXPORT_PATHS, exportBundle, exportFile, type ExportFile } from '../../engine/export/bundle.ts';
import type { AdapterInput } from '../../engine/export/bundle.ts';
import { planExportContext, type ExportContext } from '../../engine/export/context.ts';
import type { ModelSpec } from '../../engine/model/config.ts';
import type { Study, TrialRecord } from '../../engine/search/index.ts';
import type { DatasetFormat } from '../../engine/train/data.ts';
import { StudyPlan, type StudyPlanSpec } from '../../engine/tune/plan.ts';
import { modelId, type StudyMeta } from './db.ts';
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
  const { meta, study } = input;
  const ref = meta.model;
  return planExportContext(planOf(input), {
    study,
    best,
    model: {
      id: modelId(ref),
      revision: ref.kind === 'hub' ? ref.revision : null,
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
  });
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
