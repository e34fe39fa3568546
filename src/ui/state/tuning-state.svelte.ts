// Kernel autotuning in the page: when a model loads, the choices stored for this GPU adapter (IndexedDB) go
// into the page's device, and the model's shape classes that have none are timed there (GPU timestamps, a few
// seconds at most) and stored. The trial workers never tune: a search hands them this record.
import type { Gpu, TuningRecord } from '../../engine/gpu/index.ts';
import {
  autotune,
  DEFAULT_TUNE_RANK,
  modelTuneTasks,
  type ModelTuneOptions,
  type TuneModelShape,
} from '../../engine/kernels/autotune.ts';
import { getTuning, putTuning } from '../lib/db.ts';
import { describeError } from '../lib/errors.ts';
import { fixedParams, type SearchSettings } from '../lib/search-config.ts';

export type TuningPhase = 'idle' | 'tuning' | 'tuned' | 'cached' | 'no-timestamps' | 'error';

/** One shape class of the loaded model and what runs for it. */
export interface TuningRow {
  shapeClass: string;
  /** The class's representative launch, e.g. 'q_proj fwd X·Wᵀ 96×128×128'. */
  label: string;
  variant: string;
  /** Timed now, loaded from the stored record, never timed (the family's default), or the only variant. */
  source: 'timed' | 'cache' | 'default' | 'only';
  /** Milliseconds per launch of the chosen variant when it was timed. */
  ms: number | null;
}

/** The shapes a search of these settings trains at, as the memory estimate reads them. */
export function tuneOptionsOf(settings: SearchSettings, maxPositions: number, gpu: Gpu): ModelTuneOptions {
  const fixed = fixedParams(settings.rows);
  const batch = typeof fixed.batch === 'number' ? fixed.batch : 4;
  const rank = typeof fixed.r === 'number' ? fixed.r : DEFAULT_TUNE_RANK;
  return {
    tokens: batch * Math.min(settings.seq, maxPositions),
    rank,
    dtype: settings.precision === 'f32' ? 'f32' : gpu.precision,
  };
}

export class TuningState {
  phase = $state<TuningPhase>('idle');
  adapter = $state('');
  done = $state(0);
  total = $state(0);
  current = $state('');
  rows = $state.raw<TuningRow[]>([]);
  /** When the stored record some choices were loaded from was made (ISO date); null when none was. */
  cachedAt = $state<string | null>(null);
  message = $state('');
  /** The last timing was stopped (a search started) before it was done. */
  stopped = $state(false);
  #pending: Promise<void> = Promise.resolve();
  #stop = new AbortController();

  /** Timed choices for this model's shape classes: loaded, then the missing ones timed and stored. */
  ensure(gpu: Gpu, spec: TuneModelShape & { maxPositions: number }, settings: SearchSettings): Promise<void> {
    const options = tuneOptionsOf(settings, spec.maxPositions, gpu);
    const signal = this.#stop.signal;
    this.#pending = this.#pending.then(() => this.#tune(gpu, spec, options, signal));
    return this.#pending;
  }

  /**
   * Stops timing at the next candidate (a search starts and needs the GPU): what was timed is kept, the rest
   * runs the default kernels until the next load. Await `settled()` afterwards.
   */
  stop(): void {
    this.#stop.abort();
    this.#stop = new AbortController();
  }

  /** Resolves when no tuning is in progress (a search waits, so its workers get the choices). */
  settled(): Promise<void> {
    return this.#pending;
  }

  /** What the trial workers load: the device's choices, if it has any. */
  record(gpu: Gpu | null): TuningRecord | undefined {
    return gpu && gpu.tuning.size > 0 ? gpu.tuning.toRecord() : undefined;
  }

  async #tune(gpu: Gpu, spec: TuneModelShape, options: ModelTuneOptions, signal: AbortSignal): Promise<void> {
    this.adapter = gpu.tuning.adapterKey;
    this.phase = 'tuning';
    this.message = '';
    [this.done, this.total] = [0, 0];
    try {
      const stored = await getTuning(gpu.tuning.adapterKey).catch(() => undefined);
      if (stored && gpu.tuning.size === 0) gpu.tuning.load(stored);
      const tasks = modelTuneTasks(gpu, spec, options);
      // eslint-disable-next-line svelte/prefer-svelte-reactivity -- a local lookup, not reactive state
      const known = new Set(tasks.filter((t) => gpu.tuning.get(t.family, t.shapeClass) !== undefined));
      const result = await autotune(gpu, tasks, {
        signal,
        onProgress: (done, total, label) => {
          [this.done, this.total, this.current] = [done, total, label];
        },
      });
      const order = { timed: 0, cache: 0, default: 1, only: 2 };
      const rows = tasks.map((t) => {
        const chosen = gpu.tuning.get(t.family, t.shapeClass);
        const ms = gpu.tuning.ms(t.family, t.shapeClass) ?? null;
        const variant = chosen ?? t.heuristic(gpu);
        const only = t.candidates(gpu).length < 2;
        const source = only ? 'only' : chosen === undefined ? 'default' : known.has(t) ? 'cache' : 'timed';
        return { shapeClass: t.shapeClass, label: t.label, variant, source, ms } satisfies TuningRow;
      });
      this.rows = rows.sort((a, b) => order[a.source] - order[b.source]);
      this.cachedAt = known.size > 0 ? (stored?.tunedAt ?? null) : null;
      this.message = result.message;
      this.stopped = signal.aborted;
      this.phase = result.status;
      if (result.status === 'tuned') await putTuning(gpu.tuning.toRecord());
    } catch (e) {
      this.phase = 'error';
      this.message = `Kernel tuning failed, default kernels are used: ${describeError(e)}`;
    }
  }
}
