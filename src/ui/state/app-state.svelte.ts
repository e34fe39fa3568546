// The playground as a whole: the seven steps, the state of each, and what moves between them (starting a
// search, opening or resuming a stored study, importing a study log).
import type { Study } from '../../engine/search/index.ts';
import { GpuStatus } from '../gpu-status.svelte.ts';
import {
  deleteStudy,
  importStudy,
  isQuotaError,
  listStudies,
  newStudyId,
  type StudyMeta,
} from '../lib/db.ts';
import { describeError } from '../lib/errors.ts';
import { parseStudyLogInChunks, StudyLogError } from '../lib/study-import.ts';
import type { StudyPlanSpec } from '../../engine/tune/plan.ts';
import { defaultSettings, settingsFromPlan, type SearchSettings } from '../lib/search-config.ts';
import { tokenizerFiles } from '../lib/dataset-parser.ts';
import { DataState, type DataModel } from './data-state.svelte.ts';
import { ModelState } from './model-state.svelte.ts';
import { RunState, type RunInputs } from './run-state.svelte.ts';
import { SearchState } from './search-state.svelte.ts';
import { TryState } from './try-state.svelte.ts';
import { TuningState } from './tuning-state.svelte.ts';
import { workerGenerator } from '../lib/worker-generator.ts';

export const STEPS = ['Model', 'Data', 'Search', 'Run', 'Results', 'Export', 'Try'] as const;
export type StepName = (typeof STEPS)[number];

export interface ImportProgress {
  stage: 'reading' | 'saving';
  done: number;
  total: number;
}

export class AppState {
  readonly gpu = new GpuStatus();
  readonly model = new ModelState();
  readonly data = new DataState();
  readonly search = new SearchState();
  readonly run = new RunState();
  readonly try = new TryState();
  readonly tuning = new TuningState();
  step = $state<StepName>('Model');
  studies = $state.raw<StudyMeta[]>([]);
  notice = $state('');
  /** A study log being imported: lines read, then events stored. */
  importing = $state.raw<ImportProgress | null>(null);

  /**
   * What each step needs before it can be opened. Without WebGPU a stored study's Run, Results and Export can
   * still be looked at; nothing that trains or generates opens.
   */
  ready = $derived.by(() => {
    const gpu = this.gpu.phase === 'ready';
    const model = gpu && this.model.phase === 'ready';
    return {
      Model: true,
      Data: model,
      Search: model && this.data.phase === 'ready',
      Run: this.run.meta !== null || (model && this.data.phase === 'ready' && this.search.valid),
      Results: this.run.trials.some((t) => t.state === 'complete'),
      Export: this.run.best !== null,
      Try: model,
    } satisfies Record<StepName, boolean>;
  });

  /** Why a step that is not ready is disabled, in words (only Results and Export need saying). */
  whyDisabled = $derived.by((): Partial<Record<StepName, string>> => {
    const none = this.run.meta
      ? 'No trial of this study has completed yet: Results and Export open when the first one does.'
      : 'Results and Export open when a trial of a study has completed.';
    return { Results: none, Export: none };
  });

  /** The Try step's generation Worker: ended when a search starts, so trials get the GPU memory. */
  readonly #generator = workerGenerator(() => {
    const { model } = this;
    if (model.phase !== 'ready' || !model.ref) return null;
    const precision = this.search.settings.precision;
    return { key: `${model.loads}:${model.ref.label}:${precision}`, files: model.blobs, precision };
  });

  constructor() {
    this.try.generator = this.#generator.generate;
    this.model.onready = (opened) => {
      // The Search step checks seq and r against this model, and the largest batch against this GPU's buffers.
      const { family, maxPositions, hidden } = opened.spec;
      const limits = Object.fromEntries(this.gpu.limits);
      const { maxBufferSize, maxStorageBufferBindingSize } = limits;
      this.search.model = {
        family,
        maxPositions,
        hidden,
        ...(maxBufferSize && maxStorageBufferBindingSize
          ? {
              memory: {
                spec: opened.spec,
                limits: { maxBufferSize, maxStorageBufferBindingSize },
                precision: this.gpu.precision,
              },
            }
          : {}),
      };
      const gpu = this.gpu.gpu;
      if (gpu) void this.tuning.ensure(gpu, opened.spec, this.search.settings);
    };
  }

  async init(): Promise<void> {
    await this.gpu.detect();
    await this.refreshStudies();
    void this.model.refreshCache();
    // A study that was running when the page went away continues where it stopped.
    const running = this.studies.find((s) => s.status === 'running');
    if (running && this.gpu.phase === 'ready') {
      this.notice = `Resuming “${running.name}” after a reload…`;
      await this.openStudy(running, true);
    } else if (this.gpu.phase === 'ready') {
      await this.model.loadDemo();
    }
  }

  async refreshStudies(): Promise<void> {
    try {
      this.studies = await listStudies();
    } catch {
      this.studies = [];
    }
  }

  /** Parses the data again (in the dataset Worker) with the model's tokenizer and these settings' split. */
  async reparse(s: SearchSettings = this.search.settings): Promise<void> {
    const { opened, ref } = this.model;
    if (!opened || !ref) return;
    const model: DataModel = {
      tokenizer: {
        key: `${this.model.loads}:${ref.label}`,
        files: tokenizerFiles(this.model.blobs),
        bosTokenId: opened.spec.bosTokenId,
        eosTokenIds: opened.spec.eosTokenIds,
      },
      decode: (ids) => opened.tokenizer.decode(ids),
    };
    await this.data.parse(model, s.seq, s.valRatio, s.seed, s.columns ?? null);
  }

  async startSearch(): Promise<void> {
    if (!this.model.ref || !this.search.valid || !this.data.dataset) return;
    const name = `${this.model.ref.label.split(' (')[0]} · ${this.data.fileName} · ${new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'short' }).format(Date.now())}`;
    // The search needs the GPU: timing stops at the next variant, and the workers get what was chosen.
    this.tuning.stop();
    await this.tuning.settled();
    const inputs = await this.#runInputs(this.search.settings);
    if (!inputs) {
      this.notice = `The data could not be prepared for this search: ${this.data.error || 'load a model and data first'}`;
      return;
    }
    this.step = 'Run';
    this.#generator.dispose();
    const started = this.run.start(inputs, name).catch((e: unknown) => {
      this.notice = describeError(e);
    });
    await new Promise((r) => setTimeout(r, 50));
    await this.refreshStudies();
    await started;
    await this.refreshStudies();
  }

  /** Shows a stored study; with `resume`, reloads its model and data and continues it. */
  async openStudy(meta: StudyMeta, resume = false): Promise<void> {
    try {
      await this.run.open(meta);
      // Studies saved by an older version lack newer settings: those take their defaults.
      this.search.settings = {
        ...defaultSettings(),
        ...(JSON.parse(JSON.stringify(meta.settings)) as SearchSettings),
      };
      this.step = 'Run';
      // Without WebGPU the study is only looked at: its model and data are not loaded.
      if (this.gpu.phase !== 'ready') return;
      const text = await this.run.storedData();
      if (this.model.ref?.label !== meta.model.label) await this.model.loadRef(meta.model);
      // The study's model did not open (the Model step says why): another model must not continue it.
      if (this.model.ref?.label !== meta.model.label) {
        this.notice = `The study's model, ${meta.model.label}, did not open: the Model step says why.`;
        return;
      }
      if (text !== null && this.model.opened) {
        this.data.fileName = meta.dataFile;
        this.data.text = text;
        await this.reparse();
      }
      if (resume) await this.resume();
    } catch (e) {
      this.notice = `The study could not be opened: ${describeError(e)}`;
    }
  }

  async resume(): Promise<void> {
    const meta = this.run.meta;
    this.tuning.stop();
    await this.tuning.settled();
    const inputs = meta ? await this.#runInputs(meta.settings) : null;
    if (!inputs) {
      this.notice = 'To continue this study, load its model and data first.';
      return;
    }
    this.notice = '';
    this.#generator.dispose();
    await this.run.resume(inputs);
    await this.refreshStudies();
  }

  /** What a run needs from the Model and Data steps, or null while either is not ready. */
  async #runInputs(settings: SearchSettings): Promise<RunInputs | null> {
    const { model, data } = this;
    await this.reparse(settings); // the split follows the run's own seq, ratio and seed
    if (model.phase !== 'ready' || !model.ref || !model.opened || !data.dataset || !data.split) return null;
    return {
      modelRef: model.ref,
      modelBlobs: model.blobs,
      family: model.opened.spec.family,
      model: { maxPositions: model.opened.spec.maxPositions, hidden: model.opened.spec.hidden },
      dataFile: data.fileName,
      dataText: data.text,
      train: data.split.train,
      validation: data.split.validation,
      padId: data.padId,
      classes: data.dataset.classes ?? null,
      // The columns the data was read with (those the names suggested, unless the step chose others).
      settings: { ...settings, columns: data.mapping },
      tuning: this.tuning.record(this.gpu.gpu),
    };
  }

  async deleteStudy(id: string): Promise<void> {
    if (this.run.meta?.id === id && this.run.running) return;
    await deleteStudy(id);
    await this.refreshStudies();
  }

  /** Imports a study event log (JSON lines) as a finished study: the whole log, or nothing and the reason. */
  async importLog(file: File): Promise<void> {
    if (this.run.running) {
      this.notice = 'Pause or stop the running study before importing another.';
      return;
    }
    if (this.importing) return;
    let meta: StudyMeta;
    try {
      this.importing = { stage: 'reading', done: 0, total: 1 };
      const study = await parseStudyLogInChunks(await file.text(), (done, total) => {
        this.importing = { stage: 'reading', done, total };
      });
      meta = importedMeta(study, file.name);
      await importStudy(meta, study.events, (done, total) => {
        this.importing = { stage: 'saving', done, total };
      });
    } catch (e) {
      this.notice = importFailure(file.name, e);
      return;
    } finally {
      this.importing = null;
    }
    await this.refreshStudies();
    await this.run.open(meta);
    this.step = 'Results';
    this.notice = `Imported ${file.name}.`;
  }
}

/** The summary of an imported study; its log's plan is how it was run (CLI or page). */
function importedMeta(study: Study, fileName: string): StudyMeta {
  const plan = study.plan as unknown as StudyPlanSpec | null;
  const settings = plan ? settingsFromPlan(plan) : defaultSettings();
  if (!plan) {
    // A log without a plan keeps the form's defaults, with its direction and size.
    settings.objective = study.direction === 'maximize' ? 'accuracy' : 'val_loss';
    settings.trials = study.trials.length;
  }
  const best = study.bestTrial;
  return {
    id: newStudyId(),
    name: `Imported: ${fileName}`,
    created: Date.now(),
    updated: Date.now(),
    status: 'finished',
    model: { kind: 'local', label: 'unknown (imported log)' },
    dataFile: '',
    settings,
    trials: study.trials.length,
    bestValue: best?.value ?? null,
    bestTrial: best?.number ?? null,
  };
}

function importFailure(fileName: string, error: unknown): string {
  if (error instanceof StudyLogError)
    return `${fileName} was not imported: line ${error.line}: ${error.reason}. Nothing of it was stored.`;
  if (isQuotaError(error))
    return `${fileName} was not imported: the browser's storage for this page is full. Nothing of it was stored; delete studies you no longer need (or free disk space) and import it again.`;
  return `${fileName} was not imported: ${describeError(error)}. Nothing of it was stored.`;
}
