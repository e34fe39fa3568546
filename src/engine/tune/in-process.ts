// Trials run in this thread instead of in workers: the fallback where workers cannot get a GPU, and a way to
// debug a trial with one stack. Same contract as the worker pool; `size` runners interleave on one thread.
import type { TrainerCheckpoint } from '../train/trainer.ts';
import type {
  TrialCallbacks,
  TrialJob,
  TrialOutcome,
  TrialSlots,
  WorkerInfo,
  WorkerInit,
} from './protocol.ts';
import { createTrialRunner, type RunnerHost, type TrialRunner } from './runner.ts';

export class InProcessSlots implements TrialSlots {
  readonly #runners: TrialRunner[] = [];

  constructor(
    readonly host: Omit<RunnerHost, 'transfer'>,
    readonly size: number,
    readonly init: WorkerInit,
  ) {}

  async start(): Promise<WorkerInfo[]> {
    return Promise.all(Array.from({ length: this.size }, (_, i) => this.restart(i)));
  }

  run(slot: number, job: TrialJob, callbacks: TrialCallbacks): Promise<TrialOutcome> {
    return this.#runners[slot].run(job, callbacks);
  }

  checkpoint(slot: number, number: number): Promise<TrainerCheckpoint> {
    return this.#runners[slot].checkpoint(number);
  }

  stop(slot: number): void {
    this.#runners[slot].stop();
  }

  async restart(slot: number): Promise<WorkerInfo> {
    this.#runners[slot]?.dispose();
    const runner = createTrialRunner({ ...this.host, transfer: (value) => value });
    this.#runners[slot] = runner;
    return runner.init(this.init);
  }

  async close(): Promise<void> {
    for (const r of this.#runners) r.dispose();
  }
}
