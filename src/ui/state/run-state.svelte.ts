// The Run step: one study at a time, driven ask → run in a worker → report/shouldPrune → tell, with every
// event appended to IndexedDB as it happens. A reloaded study is rebuilt from its log: finished trials are
// kept, trials that were running are run again from the start (same seed, so the same curve).
import {
  createStudy,
  loadStudy,
  type Study,
  type StudyEvent,
  type TrialRecord,
} from '../../engine/search/index.ts';
import {
  appendEvent,
  getFile,
  newStudyId,
  putFile,
  putStudy,
  readEvents,
  type ModelRef,
  type StudyMeta,
  type StudyStatus,
} from '../lib/db.ts';
import { describeError } from '../lib/errors.ts';
import { fixedParams, OBJECTIVES, prunerSpec, spaceSpec, type SearchSettings } from '../lib/search-config.ts';
import { createWorkerExecutor, type TrialExecutor } from '../run/executor.ts';
import type { TrialOutcome } from '../run/messages.ts';

export type RunPhase =
  'idle' | 'starting' | 'running' | 'pausing' | 'paused' | 'finished' | 'stopped' | 'error';

export interface TrialLive {
  step: number;
  tokensPerSecond: number;
  slot: number;
  error?: string;
}

export interface RunInputs {
  modelRef: ModelRef;
  modelBlobs: Record<string, Blob>;
  dataFile: string;
  dataText: string;
  settings: SearchSettings;
}

export class RunState {
  meta = $state.raw<StudyMeta | null>(null);
  trials = $state.raw<TrialRecord[]>([]);
  live = $state.raw<Record<number, TrialLive>>({});
  phase = $state<RunPhase>('idle');
  error = $state('');
  gpu = $state('');
  precision = $state('');
  started = $state(0);
  now = $state(0);
  /** PEFT files of the best trial so far. */
  bestAdapter = $state.raw<{ trial: number; config: string; weights: Uint8Array<ArrayBuffer> } | null>(null);
  #study: Study | null = null;
  #executor: TrialExecutor | null = null;
  #halt: 'pause' | 'stop' | null = null;
  #writes: Promise<void> = Promise.resolve();
  #inputs: RunInputs | null = null;
  #finishedAtStart = 0;

  get study(): Study | null {
    return this.#study;
  }

  get direction(): 'minimize' | 'maximize' {
    return this.meta ? OBJECTIVES[this.meta.settings.objective].direction : 'minimize';
  }

  best = $derived.by(() => {
    const sign = this.direction === 'minimize' ? 1 : -1;
    let best: TrialRecord | null = null;
    for (const t of this.trials)
      if (t.state === 'complete' && (best === null || sign * t.value! < sign * best.value!)) best = t;
    return best;
  });

  done = $derived(this.trials.filter((t) => t.state !== 'running').length);

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
      await putStudy(meta);
      await putFile(id, 'data', inputs.dataText);
      this.#study = createStudy({
        space: spaceSpec(settings.rows),
        sampler: settings.sampler,
        pruner: prunerSpec(settings.pruner, settings.stepsPerTrial),
        direction: OBJECTIVES[settings.objective].direction,
        seed: settings.seed,
        onEvent: (e) => this.#onEvent(e),
      });
    } catch (e) {
      this.phase = 'error';
      this.error = describeError(e);
      return;
    }
    await this.#run({ ...inputs, settings });
  }

  /** Opens a stored study: shows it, and continues it when it was running and `continueWith` is given. */
  async open(meta: StudyMeta): Promise<void> {
    this.#reset();
    this.meta = meta;
    const events = await readEvents(meta.id);
    const { study, errors } = loadStudy(events, { onEvent: (e) => this.#onEvent(e) });
    if (errors.length > 0)
      this.error = `${errors.length} damaged log lines were skipped (first: ${errors[0].reason}).`;
    this.#study = study;
    this.trials = study.trials.map((t) => ({ ...t }));
    const weights = await getFile(meta.id, 'adapter_model.safetensors');
    const config = await getFile(meta.id, 'adapter_config.json');
    if (weights instanceof Uint8Array && typeof config === 'string' && meta.bestTrial !== null)
      this.bestAdapter = { trial: meta.bestTrial, config, weights };
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
    await this.#setStatus('running');
    await this.#run({ ...inputs, settings: this.meta.settings });
  }

  pause(): void {
    if (!this.running) return;
    this.#halt = 'pause';
    this.phase = 'pausing';
    this.#abortAll();
  }

  stop(): void {
    if (!this.running && this.phase !== 'paused') return;
    this.#halt = 'stop';
    if (this.phase === 'paused') void this.#finishStopped();
    else this.#abortAll();
  }

  #abortAll(): void {
    const ex = this.#executor;
    if (ex) for (let s = 0; s < ex.size; s++) ex.abort(s);
  }

  #reset(): void {
    this.#executor?.dispose();
    this.#executor = null;
    this.#study = null;
    this.#halt = null;
    this.trials = [];
    this.live = {};
    this.error = '';
    this.bestAdapter = null;
    this.phase = 'idle';
  }

  #onEvent(event: StudyEvent): void {
    const id = this.meta?.id;
    if (!id) return;
    this.#writes = this.#writes
      .then(() => appendEvent(id, event))
      .catch((e: unknown) => {
        this.error = `Saving the study failed: ${describeError(e)}`;
      });
    if (this.#study)
      this.trials = this.#study.trials.map((t) => ({ ...t, intermediate: t.intermediate.slice() }));
  }

  async #setStatus(status: StudyStatus): Promise<void> {
    if (!this.meta) return;
    const best = this.best;
    this.meta = {
      ...this.meta,
      status,
      updated: Date.now(),
      trials: this.trials.length,
      bestValue: best?.value ?? null,
      bestTrial: best?.number ?? null,
    };
    await this.#writes;
    await putStudy(this.meta);
  }

  async #run(inputs: RunInputs): Promise<void> {
    const study = this.#study!;
    const s = inputs.settings;
    this.#inputs = inputs;
    this.#halt = null;
    this.phase = 'starting';
    this.error = '';
    this.#executor?.dispose();
    const executor = (this.#executor = createWorkerExecutor(s.workers));
    try {
      const info = await executor.start({
        modelFiles: inputs.modelBlobs,
        modelLabel: inputs.modelRef.kind === 'hub' ? inputs.modelRef.repo : inputs.modelRef.label,
        dataFile: inputs.dataFile,
        dataText: inputs.dataText,
        seq: s.seq,
        valRatio: s.valRatio,
        seed: s.seed,
        precision: s.precision,
      });
      this.gpu = info.adapter;
      this.precision = info.precision;
    } catch (e) {
      this.phase = 'error';
      this.error = `The trial workers could not start: ${describeError(e)}`;
      await this.#setStatus('paused');
      return;
    }
    this.phase = 'running';
    this.started = this.now = performance.now();
    this.#finishedAtStart = this.done;
    const tick = setInterval(() => (this.now = performance.now()), 1000);
    // Trials a reload interrupted go first, with their original numbers and params.
    const queue = study.trials.filter((t) => t.state === 'running').map((t) => t.number);
    const deadline = s.timeLimit > 0 ? Date.now() + s.timeLimit * 60_000 : Infinity;
    try {
      await Promise.all(
        Array.from({ length: executor.size }, (_, slot) => this.#slotLoop(slot, queue, deadline)),
      );
    } finally {
      clearInterval(tick);
    }
    executor.dispose();
    if (this.#executor === executor) this.#executor = null;
    if (this.#halt === 'pause') {
      this.phase = 'paused';
      await this.#setStatus('paused');
    } else if (this.#halt === 'stop') await this.#finishStopped();
    else {
      this.phase = 'finished';
      await this.#setStatus('finished');
    }
  }

  async #finishStopped(): Promise<void> {
    const study = this.#study;
    if (study)
      for (const t of study.trials) if (t.state === 'running') study.tell(t.number, { state: 'failed' });
    this.phase = 'stopped';
    await this.#setStatus('stopped');
  }

  async #slotLoop(slot: number, queue: number[], deadline: number): Promise<void> {
    const study = this.#study!;
    const s = this.#inputs!.settings;
    while (!this.#halt && Date.now() < deadline) {
      let number: number;
      if (queue.length > 0) number = queue.shift()!;
      else if (study.trials.length < s.trials) number = study.ask().number;
      else break;
      await this.#runTrial(slot, number);
    }
  }

  async #runTrial(slot: number, number: number): Promise<void> {
    const study = this.#study!;
    const s = this.#inputs!.settings;
    const record = study.trial(number);
    const params = { ...fixedParams(s.rows), ...record.params };
    const lastReported = record.intermediate.at(-1)?.[0] ?? 0;
    let pruned = false;
    this.live = { ...this.live, [number]: { step: lastReported, tokensPerSecond: 0, slot } };
    let outcome: TrialOutcome;
    try {
      outcome = await this.#executor!.run(
        slot,
        { number, params, steps: s.stepsPerTrial, seed: s.seed + number },
        (m) => {
          if (study.trial(number).state !== 'running') return false;
          if (m.step > lastReported) study.report(number, m.step, m.loss);
          this.live = { ...this.live, [number]: { step: m.step, tokensPerSecond: m.tokensPerSecond, slot } };
          if (this.#halt) return false;
          if (study.shouldPrune(number)) {
            pruned = true;
            return false;
          }
          return true;
        },
      );
    } catch (e) {
      this.live = { ...this.live, [number]: { ...this.live[number], error: describeError(e) } };
      if (study.trial(number).state === 'running') study.tell(number, { state: 'failed' });
      return;
    }
    if (study.trial(number).state !== 'running') return;
    if (pruned) {
      study.tell(number, { state: 'pruned' });
      return;
    }
    if (outcome.aborted) return; // paused or stopped: runs again on resume (or is marked by stop)
    const objective = s.objective;
    const value =
      objective === 'accuracy'
        ? outcome.accuracy
        : objective === 'macro_f1'
          ? outcome.macroF1
          : (outcome.valLoss ?? outcome.trainLoss);
    if (value === null || !Number.isFinite(value)) {
      this.live = {
        ...this.live,
        [number]: {
          ...this.live[number],
          error:
            value === null
              ? `${OBJECTIVES[objective].label} is not available for this data`
              : 'the loss is not finite',
        },
      };
      study.tell(number, { state: 'failed' });
      return;
    }
    study.tell(number, value);
    if (this.best?.number === number && outcome.adapter && this.meta) {
      this.bestAdapter = { trial: number, ...outcome.adapter };
      await putFile(this.meta.id, 'adapter_config.json', outcome.adapter.config);
      await putFile(this.meta.id, 'adapter_model.safetensors', outcome.adapter.weights);
    }
    await this.#setStatus('running');
  }
}
