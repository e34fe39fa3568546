// A pool of trial workers, the same in the browser (dedicated module Workers) and in Node (worker_threads):
// only the spawn function differs (spawn-browser.ts, spawn-node.ts). Each worker owns one GPUDevice and one
// copy of the base model and runs one trial at a time. A worker that dies (crash, terminate, uncaught
// error) rejects the call in flight with WorkerDiedError instead of leaving it pending forever; `restart`
// replaces it with a fresh one that loads the model again.
import * as Comlink from 'comlink';
import type { TrainerCheckpoint } from '../engine/train/trainer.ts';
import type {
  TrialCallbacks,
  TrialJob,
  TrialOutcome,
  TrialSlots,
  WorkerInfo,
  WorkerInit,
} from '../engine/tune/protocol.ts';
import type { TrialRunner } from '../engine/tune/runner.ts';

/** One started worker as its host sees it. */
export interface WorkerHandle {
  endpoint: Comlink.Endpoint;
  terminate(): void;
  /** Called once when the worker stops by itself (crash, uncaught error) with what is known of why. */
  onExit(listener: (reason: string) => void): void;
}

export type SpawnWorker = (index: number) => WorkerHandle;

export class WorkerDiedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WorkerDiedError';
  }
}

interface Slot {
  handle: WorkerHandle;
  remote: Comlink.Remote<TrialRunner>;
  /** Rejects when the worker dies; every call is raced against it. */
  died: Promise<never>;
  dead: boolean;
  kill(reason: string): void;
}

export class WorkerPool implements TrialSlots {
  readonly #spawn: SpawnWorker;
  readonly #init: WorkerInit;
  readonly #slots: Slot[] = [];
  #spawned = 0;

  constructor(
    spawn: SpawnWorker,
    readonly size: number,
    init: WorkerInit,
  ) {
    if (!Number.isInteger(size) || size < 1)
      throw new RangeError(`pool size must be a whole number ≥ 1, got ${size}`);
    this.#spawn = spawn;
    this.#init = init;
  }

  /** Starts every worker and loads the model in each; resolves with what each reports. */
  async start(): Promise<WorkerInfo[]> {
    return Promise.all(Array.from({ length: this.size }, (_, i) => this.#open(i)));
  }

  async #open(index: number): Promise<WorkerInfo> {
    const handle = this.#spawn(this.#spawned++);
    let kill!: (reason: string) => void;
    const died = new Promise<never>((_, reject) => {
      kill = (reason) => reject(new WorkerDiedError(reason));
    });
    died.catch(() => {}); // observed by whoever is waiting; never an unhandled rejection
    const slot: Slot = {
      handle,
      remote: Comlink.wrap<TrialRunner>(handle.endpoint),
      died,
      dead: false,
      kill: (reason) => {
        if (slot.dead) return;
        slot.dead = true;
        kill(reason);
      },
    };
    handle.onExit((reason) => slot.kill(`worker ${index} stopped: ${reason}`));
    this.#slots[index] = slot;
    return this.#call(slot, () => slot.remote.init(this.#init));
  }

  #call<T>(slot: Slot, fn: () => Promise<T>): Promise<T> {
    if (slot.dead) return slot.died;
    return Promise.race([fn(), slot.died]);
  }

  run(index: number, job: TrialJob, callbacks: TrialCallbacks): Promise<TrialOutcome> {
    const slot = this.#slots[index];
    const proxied = Comlink.proxy({
      onStep: (m: Parameters<TrialCallbacks['onStep']>[0]) => callbacks.onStep(m),
      onEvalProgress: (done: number, total: number) => callbacks.onEvalProgress?.(done, total),
      onCheckpoint: async (c: TrainerCheckpoint) => {
        await callbacks.onCheckpoint?.(c);
      },
      onEval: async (...args: Parameters<TrialCallbacks['onEval']>) => {
        const d = await callbacks.onEval(...args);
        // The donor's checkpoint moves to the worker rather than being copied.
        if (d.action !== 'exploit' || !d.checkpoint) return d;
        const c = d.checkpoint;
        return Comlink.transfer(
          d,
          [c.params, ...c.moments, c.optimizerStep].map((a) => a.buffer as ArrayBuffer),
        );
      },
    });
    return this.#call(slot, () => slot.remote.run(job, proxied));
  }

  checkpoint(index: number, number: number): Promise<TrainerCheckpoint> {
    const slot = this.#slots[index];
    return this.#call(slot, () => slot.remote.checkpoint(number));
  }

  stop(index: number): void {
    const slot = this.#slots[index];
    if (!slot.dead) void slot.remote.stop().catch(() => {});
  }

  /** Terminates the worker of `slot` as a crash would (its trial fails with WorkerDiedError). */
  kill(index: number, reason = 'terminated'): void {
    const slot = this.#slots[index];
    slot.handle.terminate();
    slot.kill(`worker ${index} ${reason}`);
  }

  async restart(index: number): Promise<WorkerInfo> {
    const old = this.#slots[index];
    old.dead = true;
    old.remote[Comlink.releaseProxy]();
    old.handle.terminate();
    return this.#open(index);
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#slots.map(async (slot) => {
        if (!slot.dead) {
          // Free the device and model before the thread goes (Dawn tears down cleanly then).
          await Promise.race([
            slot.remote.dispose(),
            slot.died,
            new Promise((r) => setTimeout(r, 2000)),
          ]).catch(() => {});
          slot.dead = true;
          slot.remote[Comlink.releaseProxy]();
        }
        slot.handle.terminate();
      }),
    );
  }
}
