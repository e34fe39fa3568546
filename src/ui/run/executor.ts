// Runs trials in N dedicated Workers (one GPUDevice and one copy of the base model each). The search loop
// sees only this interface, so the shared pool of src/workers/ can replace it without touching the UI.
import * as Comlink from 'comlink';
import type { TrialJob, TrialOutcome, TrialStep, WorkerInfo, WorkerInit } from './messages.ts';
import type { TrialWorkerApi } from './trial.worker.ts';

export interface TrialExecutor {
  readonly size: number;
  /** Loads the model and data in every worker; resolves with what the first one reports. */
  start(init: WorkerInit): Promise<WorkerInfo>;
  /** `onStep` returns false to stop the trial (pruned, paused). */
  run(slot: number, job: TrialJob, onStep: (m: TrialStep) => boolean): Promise<TrialOutcome>;
  abort(slot: number): void;
  dispose(): void;
}

export function createWorkerExecutor(size: number): TrialExecutor {
  const workers: Worker[] = [];
  const remotes: Comlink.Remote<TrialWorkerApi>[] = [];
  for (let i = 0; i < size; i++) {
    // Written inline so Vite sees the worker and bundles it for `npm run build`.
    const worker = new Worker(new URL('./trial.worker.ts', import.meta.url), {
      type: 'module',
      name: `trial-${i}`,
    });
    workers.push(worker);
    remotes.push(Comlink.wrap<TrialWorkerApi>(worker));
  }
  return {
    size,
    async start(init) {
      const infos = await Promise.all(remotes.map((r) => r.init(init)));
      return infos[0];
    },
    run(slot, job, onStep) {
      return remotes[slot].run(
        job,
        Comlink.proxy(async (m: TrialStep) => onStep(m)),
      );
    },
    abort(slot) {
      void remotes[slot].abort();
    },
    dispose() {
      for (const r of remotes) r[Comlink.releaseProxy]();
      for (const w of workers) w.terminate();
    },
  };
}
