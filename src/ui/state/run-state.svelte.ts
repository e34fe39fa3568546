// The Run step: one study at a time, run by the engine's coordinator (`optimize`: ask → run in a pool worker →
// report/shouldPrune or PBT at each evaluation → tell) with every study event appended to IndexedDB as it
// happens. Pause keeps work: each running trial's checkpoint (weights, optimizer, data position, loss scaler,
// step) is stored with the study and Resume continues it from there. A reload mid-run continues them too,
// from the checkpoint each running trial stores at every evaluation interval: periodic saves are the reliable
// choice, since a page being unloaded (pagehide, or a hidden tab that is then discarded) gives no time for a
// GPU readback and an IndexedDB write to finish, and a crash gives no event at all.
import {
  createStudy,
  fallbackNote,
  isFeasible,
  loadStudy,
  lossVector,
  paretoFront,
  type Direction,
  type Study,
  type StudyEvent,
  type TrialRecord,
} from '../../engine/search/index.ts';
import {
  appendEvent,
  createStudyRecord,
  deleteFile,
  getFile,
  isQuotaError,
  newStudyId,
  putFile,
  modelId,
  putStudy,
  readEvents,
  type ModelRef,
  type StudyMeta,
  type StudyStatus,
} from '../lib/db.ts';
import type { TuningRecord } from '../../engine/gpu/tuning.ts';
import type { ModelFamily } from '../../engine/model/config.ts';
import type { Example } from '../../engine/train/data.ts';
import { trialCheckpointName } from '../../engine/checkpoint/trial-checkpoint.ts';
import {
  checkConstraints,
  checkObjective,
  OBJECTIVES,
  optimize,
  PAUSE,
  StudyPlan,
  type BestTrial,
  type CheckpointStore,
  type ModelBounds,
  type Objective,
  type StudyPlanSpec,
  type TuneListener,
} from '../../engine/tune/index.ts';
import { WorkerPool } from '../../workers/pool.ts';
import { spawnBrowserWorker } from '../../workers/spawn-browser.ts';
import { describeError } from '../lib/errors.ts';
import { planInput, type SearchSettings } from '../lib/search-config.ts';
import { parseHistory, runEnded, runStarted, type TrialHistory } from '../lib/trial-history.ts';

export type RunPhase =
  'idle' | 'starting' | 'running' | 'pausing' | 'paused' | 'finished' | 'stopped' | 'error';

export interface TrialLive {
  step: number;
  tokensPerSecond: number;
  slot: number;
  /** Why a trial failed, in words. */
  error?: string;
  /** What happened to it (PBT: which trial's weights it continued from; the step a paused trial resumed from). */
  note?: string;
  /** Paused with its checkpoint stored: it continues on Resume. */
  paused?: boolean;
  /** What it is doing now: "training step k/n" or "evaluating i/m batches". */
  activity?: string;
  /** Its optimizer steps. */
  total?: number;
}

export interface RunInputs {
  modelRef: ModelRef;
  modelBlobs: Record<string, Blob>;
  family: ModelFamily;
  /** The model's bounds: the plan refuses a seq or r beyond them (a resumed or imported study too). */
  model: ModelBounds;
  dataFile: string;
  dataText: string;
  /** The dataset parsed with the model's tokenizer and split with the settings' ratio and seed. */
  train: readonly Example[];
  validation: readonly Example[];
  padId: number;
  classes: readonly string[] | null;
  settings: SearchSettings;
  /** The kernel choices tuned on this GPU by the page: every trial worker loads them. */
  tuning?: TuningRecord;
}

/** Why a run stopped when the browser refused to store more of it. */
export const STORAGE_FULL =
  "The browser's storage for this page is full, so the search stopped: nothing more of it could be saved. " +
  'The trials finished so far are kept. Delete studies you no longer need in the Studies list (or free ' +
  'disk space), then press Resume to continue.';

/** What the exports need to know of the trials beyond the study log. */
export interface TrialTimings {
  /** What the trials' GPU trained in (precision 'auto' resolved); null before a trial finished. */
  precision: 'f16' | 'f32' | null;
  /** Wall-clock seconds per trial number. */
  seconds: Record<number, number>;
}

/** Where a multi-objective study keeps a front trial's adapter file. */
const frontFile = (trial: number, name: string) => `front-${trial}.${name}`;

export class RunState {
  meta = $state.raw<StudyMeta | null>(null);
  trials = $state.raw<TrialRecord[]>([]);
  live = $state.raw<Record<number, TrialLive>>({});
  /** Training loss at every step, per trial (the study log keeps only the evaluations). */
  curves = $state.raw<Record<number, [number, number][]>>({});
  /** Seconds each finished trial ran, and the precision its GPU trained in (for trials.csv and the exports). */
  timings = $state.raw<TrialTimings>({ precision: null, seconds: {} });
  /** When, on which worker and how each run of each trial ended (the timeline and the trial detail). */
  history = $state.raw<TrialHistory>({});
  phase = $state<RunPhase>('idle');
  /** What stopped the run, in words. */
  error = $state('');
  /** Something that went wrong but did not stop the run (a worker replaced). */
  warning = $state('');
  gpu = $state('');
  precision = $state('');
  /** Validation examples each evaluation uses, of the split's total (the plan's maxEvalExamples). */
  evaluation = $state.raw<{ used: number; total: number } | null>(null);
  started = $state(0);
  now = $state(0);
  /** PEFT files of the best trial so far (multi-objective: of the front trial chosen for export). */
  bestAdapter = $state.raw<{ trial: number; config: string; weights: Uint8Array<ArrayBuffer> } | null>(null);
  /** One per objective: several in a multi-objective study. */
  directions = $state.raw<readonly Direction[]>(['minimize']);
  /** Multi-objective: the front trial chosen for export (null, or off the front: the front's best on the first). */
  picked = $state<number | null>(null);
  /** Multi-objective: adapters of the front trials finished in this session (others are read from storage). */
  #frontAdapters: Record<number, { config: string; weights: Uint8Array<ArrayBuffer> }> = {};
  #study: Study | null = null;
  #controller: AbortController | null = null;
  #halt: 'pause' | 'stop' | null = null;
  #writes: Promise<void> = Promise.resolve();
  #finishedAtStart = 0;
  /** A write failed (a full disk): nothing is written after it, so the stored log stays a clean prefix. */
  #writesStopped = false;

  get study(): Study | null {
    return this.#study;
  }

  get direction(): 'minimize' | 'maximize' {
    return this.meta ? OBJECTIVES[this.meta.settings.objective].direction : 'minimize';
  }

  get isMultiObjective(): boolean {
    return this.directions.length > 1;
  }

  /** Multi-objective: the Pareto front of the feasible complete trials, by number (as Study.bestTrials). */
  front = $derived.by(() => {
    if (this.directions.length < 2) return [];
    const feasible = this.trials.filter((t) => t.state === 'complete' && isFeasible(t));
    return paretoFront(feasible.map((t) => lossVector(t, this.directions))).map((i) => feasible[i]);
  });

  best = $derived.by(() => {
    const sign = this.direction === 'minimize' ? 1 : -1;
    if (this.isMultiObjective) {
      const picked = this.front.find((t) => t.number === this.picked);
      return (
        picked ??
        this.front.reduce<TrialRecord | null>(
          (b, t) => (b === null || sign * t.value! < sign * b.value! ? t : b),
          null,
        )
      );
    }
    let best: TrialRecord | null = null;
    for (const t of this.trials)
      if (
        t.state === 'complete' &&
        isFeasible(t) && // a trial that breaks a constraint is never the best (as Study.bestTrial)
        (best === null || sign * t.value! < sign * best.value!)
      )
        best = t;
    return best;
  });

  /** Trials that count toward the budget: complete or pruned (failed ones are asked again). */
  done = $derived(this.trials.filter((t) => t.state === 'complete' || t.state === 'pruned').length);

  /** Remaining time from the mean duration of the trials finished in this session. */
  eta = $derived.by(() => {
    const total = this.meta?.settings.trials ?? 0;
    const finishedHere = this.done - this.#finishedAtStart;
    if (this.phase !== 'running' || finishedHere <= 0) return null;
    const perTrial = (this.now - this.started) / finishedHere;
    const workers = this.meta?.settings.workers ?? 1;
    return Math.max(0, ((total - this.done) * perTrial) / workers);
  });

  get running(): boolean {
    return this.phase === 'starting' || this.phase === 'running' || this.phase === 'pausing';
  }

  /** A new study from the current steps' choices. */
  async start(inputs: RunInputs, name: string): Promise<void> {
    this.#idle();
    const settings = JSON.parse(JSON.stringify(inputs.settings)) as SearchSettings;
    const id = newStudyId();
    const meta: StudyMeta = {
      id,
      name,
      created: Date.now(),
      updated: Date.now(),
      status: 'running',
      model: inputs.modelRef,
      dataFile: inputs.dataFile,
      settings,
      trials: 0,
      bestValue: null,
      bestTrial: null,
    };
    this.#reset();
    this.meta = meta;
    try {
      await createStudyRecord(meta, inputs.dataText);
      const plan = this.#plan({ ...inputs, settings });
      this.#study = createStudy({ ...plan.studyOptions(), onEvent: (e) => this.#onEvent(id, e) });
      this.directions = this.#study.directions;
    } catch (e) {
      this.phase = 'error';
      this.error = describeError(e);
      return;
    }
    await this.#run({ ...inputs, settings });
  }

  /** Opens a stored study to look at (a study that was running opens paused: `resume` continues it). */
  async open(meta: StudyMeta): Promise<void> {
    this.#idle();
    this.#reset();
    this.meta = meta;
    const events = await readEvents(meta.id);
    const { study, errors } = loadStudy(events, { onEvent: (e) => this.#onEvent(meta.id, e) });
    if (errors.length > 0)
      this.error = `${errors.length} damaged log lines were skipped (first: ${errors[0].reason}).`;
    this.#study = study;
    this.directions = study.directions;
    this.trials = study.trials.map((t) => ({ ...t }));
    if (study.isMultiObjective) {
      this.picked = meta.bestTrial;
      await this.#loadPickedAdapter();
    } else {
      const weights = await getFile(meta.id, 'adapter_model.safetensors');
      const config = await getFile(meta.id, 'adapter_config.json');
      if (weights instanceof Uint8Array && typeof config === 'string' && meta.bestTrial !== null)
        this.bestAdapter = { trial: meta.bestTrial, config, weights };
    }
    const curves = await getFile(meta.id, 'curves');
    if (typeof curves === 'string') this.curves = JSON.parse(curves) as Record<number, [number, number][]>;
    // Trials left running are paused: Resume continues them from their stored checkpoints.
    for (const t of study.trials)
      if (t.state === 'running' && meta.status !== 'stopped' && meta.status !== 'finished')
        this.#setLive(t.number, {
          step: Math.max(this.curves[t.number]?.at(-1)?.[0] ?? 0, t.intermediate.at(-1)?.[0] ?? 0),
          paused: true,
        });
    const timings = await getFile(meta.id, 'timings');
    if (typeof timings === 'string') this.timings = JSON.parse(timings) as TrialTimings;
    const history = await getFile(meta.id, 'history');
    this.history = parseHistory(typeof history === 'string' ? history : null);
    this.phase =
      meta.status === 'running'
        ? 'paused'
        : meta.status === 'finished'
          ? 'finished'
          : meta.status === 'stopped'
            ? 'stopped'
            : 'paused';
  }

  async storedData(): Promise<string | null> {
    if (!this.meta) return null;
    const d = await getFile(this.meta.id, 'data');
    return typeof d === 'string' ? d : null;
  }

  /** Continues an opened study with the model and data it was started with. */
  async resume(inputs: RunInputs): Promise<void> {
    if (!this.#study || !this.meta || this.running) return;
    // The events after a failed write were never stored: continue from the log as it is stored.
    if (this.#writesStopped) await this.open(this.meta);
    this.phase = 'starting'; // before any await: a second click finds the run started
    await this.#setStatus('running');
    await this.#run({ ...inputs, settings: this.meta.settings });
  }

  /** Multi-objective: choose front trial `number` for export (its adapter read back when stored). */
  async pick(number: number): Promise<void> {
    if (!this.front.some((t) => t.number === number)) return;
    this.picked = number;
    await this.#loadPickedAdapter();
    if (this.meta && !this.running) await this.#setStatus(this.meta.status);
  }

  /** Sets bestAdapter to the chosen front trial's: kept from this session, else as stored with the study. */
  async #loadPickedAdapter(): Promise<void> {
    const trial = this.best?.number;
    const id = this.meta?.id;
    if (trial === undefined || !id) return void (this.bestAdapter = null);
    const kept = this.#frontAdapters[trial];
    if (kept) return void (this.bestAdapter = { trial, ...kept });
    const config = await getFile(id, frontFile(trial, 'adapter_config.json'));
    const weights = await getFile(id, frontFile(trial, 'adapter_model.safetensors'));
    // The choice may have moved on while the files were read.
    if (this.best?.number !== trial) return;
    this.bestAdapter =
      typeof config === 'string' && weights instanceof Uint8Array ? { trial, config, weights } : null;
  }

  /** Multi-objective: keeps the adapter of every front trial (stored with the study), drops those off it. */
  #frontChanged(front: readonly BestTrial[]): void {
    const on = front.map((f) => f.number);
    for (const f of front) {
      if (!f.adapter || this.#frontAdapters[f.number]) continue;
      const kept = {
        config: f.adapter['adapter_config.json'],
        weights: f.adapter['adapter_model.safetensors'] as Uint8Array<ArrayBuffer>,
      };
      this.#frontAdapters[f.number] = kept;
      this.#save(frontFile(f.number, 'adapter_config.json'), kept.config);
      this.#save(frontFile(f.number, 'adapter_model.safetensors'), kept.weights);
    }
    const id = this.meta?.id;
    for (const t of Object.keys(this.#frontAdapters).map(Number))
      if (!on.includes(t)) {
        delete this.#frontAdapters[t];
        if (id)
          for (const name of ['adapter_config.json', 'adapter_model.safetensors'])
            void this.#queue(() => deleteFile(id, frontFile(t, name)));
      }
    void this.#loadPickedAdapter();
  }

  /** Checkpoints every running trial into the study's storage; Resume continues them from there. */
  pause(): void {
    if (!this.running) return;
    this.#halt = 'pause';
    this.phase = 'pausing';
    this.#controller?.abort(PAUSE);
  }

  stop(): void {
    if (this.running) {
      this.#halt = 'stop';
      this.#controller?.abort();
    } else if (this.phase === 'paused' || this.phase === 'error') void this.#finishStopped();
  }

  /** One study runs at a time: starting or opening another waits for a pause or a stop. */
  #idle(): void {
    if (this.running) throw new Error(`“${this.meta?.name}” is running: pause or stop it first.`);
  }

  #reset(): void {
    this.#study = null;
    this.#halt = null;
    this.trials = [];
    this.live = {};
    this.curves = {};
    this.timings = { precision: null, seconds: {} };
    this.history = {};
    this.error = '';
    this.warning = '';
    this.bestAdapter = null;
    this.directions = ['minimize'];
    this.picked = null;
    this.#frontAdapters = {};
    this.phase = 'idle';
    this.#writesStopped = false;
  }

  #onEvent(id: string, event: StudyEvent): void {
    this.#queue(() => appendEvent(id, event));
    if (this.#study)
      this.trials = this.#study.trials.map((t) => ({ ...t, intermediate: t.intermediate.slice() }));
  }

  /** Updates the study's summary (status, best) and stores it after every write queued before it. */
  async #setStatus(status: StudyStatus): Promise<void> {
    if (!this.meta) return;
    const best = this.best;
    const meta = (this.meta = {
      ...this.meta,
      status,
      updated: Date.now(),
      trials: this.trials.length,
      bestValue: best?.value ?? null,
      bestTrial: best?.number ?? null,
    });
    // Tried even after a failed write: a study left marked running would resume (and fail again) on reload.
    await this.#queue(() => putStudy(meta), { evenIfStopped: true });
  }

  async #run(inputs: RunInputs): Promise<void> {
    const study = this.#study!;
    const s = inputs.settings;
    this.#halt = null;
    this.phase = 'starting';
    this.error = '';
    this.warning = '';
    // Made first: a Pause or Stop while the workers load the model is kept and honoured once they are up.
    const controller = (this.#controller = new AbortController());
    let evalSet = inputs.validation;
    try {
      evalSet = this.#plan(inputs).evalExamples(inputs.validation);
    } catch {
      // A plan that does not hold is reported where the search starts, below.
    }
    this.evaluation = { used: evalSet.length, total: inputs.validation.length };
    const pool = new WorkerPool(spawnBrowserWorker, s.workers, {
      model: { kind: 'files', label: modelId(inputs.modelRef), files: inputs.modelBlobs },
      precision: s.precision,
      train: inputs.train,
      validation: evalSet,
      padId: inputs.padId,
      ...(inputs.tuning ? { tuning: inputs.tuning } : {}),
    });
    try {
      for (const { metric } of this.#plan(inputs).objectives)
        if (metric in OBJECTIVES)
          checkObjective(metric as Objective, {
            validation: inputs.validation.length,
            ...(inputs.classes ? { classes: inputs.classes } : {}),
          });
      checkConstraints(this.#plan(inputs).spec.constraints ?? [], {
        ...(inputs.classes ? { classes: inputs.classes } : {}),
      });
      const [info] = await pool.start();
      this.gpu = info.adapter;
      this.precision = info.precision;
    } catch (e) {
      await pool.close();
      this.#controller = null;
      this.phase = 'error';
      this.error = `The trial workers could not start: ${describeError(e)}`;
      await this.#setStatus('paused');
      return;
    }
    if (!controller.signal.aborted) this.phase = 'running';
    this.started = this.now = performance.now();
    this.#finishedAtStart = this.done;
    const tick = setInterval(() => (this.now = performance.now()), 1000);
    let stopped = controller.signal.aborted;
    try {
      const plan = this.#plan(inputs);
      const timeout = plan.spec.timeoutSeconds;
      if (!stopped)
        ({ stopped } = await optimize(study, pool, {
          trials: plan.spec.trials,
          objective: plan.spec.objective,
          ...(plan.isMultiObjective ? { objectives: plan.objectives } : {}),
          constraints: plan.spec.constraints,
          trainerOptions: (params) => plan.trainerOptions(params, inputs.classes),
          baseModel: modelId(inputs.modelRef),
          pbt: plan.pbt(),
          ...(timeout !== null ? { timeoutMs: timeout * 1000 } : {}),
          signal: controller.signal,
          checkpoints: this.#checkpointStore(),
          checkpointEvery: plan.evalEvery,
          listener: this.#listener(),
        }));
    } catch (e) {
      this.error = describeError(e);
    } finally {
      clearInterval(tick);
      this.#controller = null;
      await pool.close();
      // Step reports travel on their own channel and can land after trialFinished saved the curves.
      this.#save('curves', JSON.stringify(this.curves));
    }
    await this.#writes;
    // A Pause or Stop that came after the last trial finished changes nothing: the study is finished.
    if (this.error) {
      this.phase = 'error';
      await this.#setStatus('paused');
    } else if (stopped && this.#halt === 'pause') {
      this.phase = 'paused';
      await this.#setStatus('paused');
    } else if (stopped) await this.#finishStopped();
    else {
      this.phase = 'finished';
      await this.#setStatus('finished');
    }
  }

  /**
   * The study's recipe: the plan in its log (what it was started with), else the settings' (a study stored
   * before plans were logged, or a new one).
   */
  #plan(inputs: RunInputs): StudyPlan {
    const context = { family: inputs.family, trainExamples: inputs.train.length, model: inputs.model };
    const logged = this.#study?.plan as unknown as StudyPlanSpec | null | undefined;
    return StudyPlan.create(logged ?? planInput(inputs.settings), context);
  }

  /** How the coordinator's events show on the page (the study's own events are logged by #onEvent). */
  #listener(): TuneListener {
    return {
      trialStarted: (t) => {
        // A trial resumed from a checkpoint takes again the steps it had made after it.
        const curve = this.curves[t.number];
        if (t.resumedFrom !== undefined && curve)
          this.curves = { ...this.curves, [t.number]: curve.filter(([step]) => step <= t.resumedFrom!) };
        const fallback = this.#study ? fallbackNote(this.#study.trial(t.number).system) : undefined;
        const resumed =
          t.resumedFrom !== undefined
            ? `resumed from step ${t.resumedFrom}${t.note ? ` (${t.note})` : ''}`
            : undefined;
        const note = [resumed, fallback].filter(Boolean).join('; ');
        this.history = runStarted(this.history, t.number, {
          slot: t.slot,
          at: Date.now(),
          fromStep: t.resumedFrom ?? 0,
        });
        this.#save('history', JSON.stringify(this.history)); // a reload mid-run keeps when it started
        this.#setLive(t.number, {
          step: t.resumedFrom ?? 0,
          tokensPerSecond: 0,
          slot: t.slot,
          paused: false,
          total: t.totalSteps,
          activity: 'loading',
          ...(note ? { note } : {}),
        });
      },
      step: (number, m) => {
        const activity = `training step ${m.step}/${this.live[number]?.total ?? '?'}`;
        this.#setLive(number, { step: m.step, tokensPerSecond: m.tokensPerSecond, activity });
        const curve = [...(this.curves[number] ?? []), [m.step, m.loss] as [number, number]];
        this.curves = { ...this.curves, [number]: curve };
      },
      evaluating: (number, done, total) =>
        this.#setLive(number, { activity: `evaluating ${done}/${total} batches` }),
      exploited: (number, donor, _params, note) =>
        this.#setLive(number, { note: `continued from trial ${donor}${note ? ` (${note})` : ''}` }),
      trialFinished: (r) => {
        this.#setLive(r.number, { activity: undefined });
        if (r.state === 'paused') this.#setLive(r.number, { step: r.steps, paused: true });
        if (r.state === 'failed')
          this.#setLive(r.number, {
            error: r.reason === 'stopped' ? (this.#halt === 'pause' ? 'paused' : 'stopped') : r.reason,
          });
        this.#save('curves', JSON.stringify(this.curves));
        this.history = runEnded(this.history, r.number, {
          at: Date.now(),
          toStep: r.steps,
          ended: r.state,
          ...(r.reason !== undefined ? { reason: r.reason } : {}),
        });
        this.#save('history', JSON.stringify(this.history));
        const precision = this.precision === 'f16' || this.precision === 'f32' ? this.precision : null;
        this.timings = { precision, seconds: { ...this.timings.seconds, [r.number]: r.seconds } };
        this.#save('timings', JSON.stringify(this.timings));
        // The summary names the best trial, whose adapter files newBest queued before this.
        void this.#setStatus('running');
      },
      newBest: (best) => {
        const adapter = best.adapter;
        if (!adapter) return;
        this.bestAdapter = {
          trial: best.number,
          config: adapter['adapter_config.json'],
          weights: adapter['adapter_model.safetensors'] as Uint8Array<ArrayBuffer>,
        };
        this.#save('adapter_config.json', this.bestAdapter.config);
        this.#save('adapter_model.safetensors', this.bestAdapter.weights);
      },
      frontChanged: (front) => this.#frontChanged(front),
      workerReplaced: (slot, reason) => {
        this.warning = `Trial worker ${slot} stopped (${reason}) and was replaced; the search goes on.`;
      },
      warning: (text) => {
        this.warning = text;
      },
    };
  }

  /** Paused trials' checkpoints in the study's files, written in order with its events. */
  #checkpointStore(): CheckpointStore {
    const id = this.meta!.id;
    return {
      write: (trial, bytes) => this.#queue(() => putFile(id, trialCheckpointName(trial), bytes)),
      read: async (trial) => {
        const data = await getFile(id, trialCheckpointName(trial));
        return data instanceof Uint8Array ? data : null;
      },
      remove: (trial) => this.#queue(() => deleteFile(id, trialCheckpointName(trial))),
      describe: (trial) => `the stored checkpoint of trial ${trial}`,
    };
  }

  #setLive(number: number, patch: Partial<TrialLive>): void {
    const before = this.live[number] ?? { step: 0, tokensPerSecond: 0, slot: -1 };
    this.live = { ...this.live, [number]: { ...before, ...patch } };
  }

  /** Writes a study file after the events queued before it. */
  #save(name: string, data: string | Uint8Array<ArrayBuffer>): void {
    const id = this.meta?.id;
    if (id) void this.#queue(() => putFile(id, name, data));
  }

  /**
   * Appends a write to the study's one ordered chain of IndexedDB writes. A failed write stops the chain and
   * the run: an event written after a lost one would leave a gap in the stored log.
   */
  #queue(write: () => Promise<void>, { evenIfStopped = false } = {}): Promise<void> {
    this.#writes = this.#writes
      .then(() => (this.#writesStopped && !evenIfStopped ? undefined : write()))
      .catch((e: unknown) => this.#writeFailed(e));
    return this.#writes;
  }

  #writeFailed(e: unknown): void {
    if (this.#writesStopped) return;
    this.#writesStopped = true;
    this.error = isQuotaError(e)
      ? STORAGE_FULL
      : `Saving the study failed (${describeError(e)}), so the search stopped: what came after could not be ` +
        'stored in order. The trials finished so far are kept; press Resume to continue.';
    this.#halt = 'pause';
    this.#controller?.abort();
  }

  async #finishStopped(): Promise<void> {
    const study = this.#study;
    const id = this.meta?.id;
    if (study)
      for (const t of study.trials)
        if (t.state === 'running') {
          study.tell(t.number, { state: 'failed' });
          this.#setLive(t.number, { paused: false, error: 'stopped' });
          if (id) void this.#queue(() => deleteFile(id, trialCheckpointName(t.number)));
        }
    this.phase = 'stopped';
    await this.#setStatus('stopped');
  }
}
