// The body of a trial worker, host-agnostic: one GPUDevice and one loaded base model, many trials run one
// after another, each a new Trainer (fresh adapter) over the same LoadedModel. The browser entry
// (trial.worker.ts) and the Node entry (trial.worker.node.ts) expose it over comlink; the in-process
// fallback calls it directly.
//
// Evaluation points are where the coordinator decides (report → shouldPrune, PBT): the trainer is paused
// there (abort, then `run` again resumes exactly), the directive awaited, and the trial continues, stops as
// pruned, or continues from a donor's weights and optimizer state with perturbed hyperparameters.
// Pause keeps work: a stopped trial returns its checkpoint, a job may start from one (`resumeFrom`), and with
// `checkpointEvery` the trainer is paused the same way every N steps to hand one over (so the loss scaler has
// seen every step in it) for a reload or a crash to continue from.
import { acquireGpu, type Gpu, type PrecisionChoice } from '../gpu/index.ts';
import { bytesSource, blobSource, sourcesFiles, type ModelFiles } from '../checkpoint/byte-source.ts';
import { loadModel, type LoadedModel } from '../model/load.ts';
import { openModel } from '../model/open.ts';
import type { Example } from '../train/data.ts';
import { Trainer, type EvalMetrics, type TrainerCheckpoint } from '../train/trainer.ts';
import type {
  EvalDirective,
  ModelSource,
  TrialCallbacks,
  TrialJob,
  TrialOutcome,
  WorkerInfo,
  WorkerInit,
} from './protocol.ts';

export interface RunnerHost {
  /** The WebGPU entry point of this thread (navigator.gpu in a Worker, Dawn in a Node worker thread). */
  gpu(): GPU | undefined;
  /** Opens a model directory (Node only). */
  openDir?(path: string): Promise<ModelFiles>;
  /** Marks transferable buffers of a value returned to the other side (comlink.transfer); identity in-process. */
  transfer<T>(value: T, buffers: Transferable[]): T;
}

function modelFiles(source: ModelSource, host: RunnerHost): Promise<ModelFiles> | ModelFiles {
  if (source.kind === 'dir') {
    if (!host.openDir) throw new Error('a model directory can only be opened in Node; pass its files');
    return host.openDir(source.path);
  }
  return sourcesFiles(
    source.label,
    Object.entries(source.files).map(([name, data]) =>
      data instanceof Blob ? blobSource(name, data) : bytesSource(name, data),
    ),
  );
}

export const checkpointBuffers = (c: TrainerCheckpoint): ArrayBuffer[] =>
  [c.params, ...c.moments, c.optimizerStep].map((a) => a.buffer as ArrayBuffer);

export function createTrialRunner(host: RunnerHost) {
  let gpu: Gpu | null = null;
  let loaded: LoadedModel | null = null;
  /** The last device `dispose` destroyed: `shutdown` waits for it to settle. */
  let retired: Gpu | null = null;
  let train: readonly Example[] = [];
  let validation: readonly Example[] = [];
  let padId = 0;
  let current: { number: number; trainer: Trainer; stop: AbortController } | null = null;

  const runner = {
    async init(init: WorkerInit, precision: PrecisionChoice = init.precision): Promise<WorkerInfo> {
      gpu = await acquireGpu({ gpu: host.gpu(), precision });
      // A record of another adapter (or version) is refused by load(): the heuristic defaults then run.
      if (init.tuning) gpu.tuning.load(init.tuning);
      const opened = await openModel(await modelFiles(init.model, host));
      loaded = await loadModel(gpu, opened);
      ({ train, validation, padId } = init);
      return {
        adapter: [gpu.adapter.vendor, gpu.adapter.architecture, gpu.adapter.description]
          .filter(Boolean)
          .join(' · '),
        precision: gpu.precision,
        weightBytes: loaded.weightBytes,
        tunedClasses: gpu.tuning.size,
      };
    },

    /** Runs one trial to its end, its pruning, or `stop()`. Throws what the trainer throws. */
    async run(job: TrialJob, callbacks: TrialCallbacks): Promise<TrialOutcome> {
      if (!gpu || !loaded) throw new Error('the trial worker was not initialised');
      let trainer = new Trainer(gpu, loaded, train, validation, padId, job.options);
      if (job.resumeFrom) trainer.restore(job.resumeFrom);
      const every = job.checkpointEvery ?? 0;
      const stop = new AbortController();
      current = { number: job.number, trainer, stop };
      try {
        let lastEval: EvalMetrics | null = null;
        for (;;) {
          const pause = new AbortController();
          const onStop = () => pause.abort();
          stop.signal.addEventListener('abort', onStop);
          const segment: { directive: Promise<EvalDirective> | null; checkpointDue: boolean } = {
            directive: null,
            checkpointDue: false,
          };
          try {
            await trainer.run({
              signal: pause.signal,
              onStep: (m) => {
                callbacks.onStep(m);
                // A checkpoint is taken with no step in flight (the loss scaler has seen every step): pause.
                if (every > 0 && m.step % every === 0 && m.step < trainer.totalSteps) {
                  segment.checkpointDue = true;
                  pause.abort();
                }
              },
              onEvalProgress: (done, total) => callbacks.onEvalProgress?.(done, total),
              onEval: (m) => {
                // Pausing lets one more step land (with evalEvery 1, its evaluation): decide once per pause.
                if (segment.directive) return;
                lastEval = m;
                const final = m.step >= trainer.totalSteps;
                segment.directive = Promise.resolve(callbacks.onEval(m, final));
                if (!final) pause.abort();
              },
            });
          } finally {
            stop.signal.removeEventListener('abort', onStop);
          }
          const decided: EvalDirective = segment.directive ? await segment.directive : { action: 'continue' };
          // A stop that comes once the final evaluation is in loses nothing: the trial is complete.
          const evaluatedToEnd = (lastEval as EvalMetrics | null)?.step === trainer.totalSteps;
          if (stop.signal.aborted && !evaluatedToEnd) return await finish('stopped', trainer, lastEval, job);
          if (decided.action === 'prune') return await finish('pruned', trainer, lastEval, job);
          if (decided.action === 'exploit') {
            // PBT: the donor's weights, moments and optimizer count; this trial's own step, data position
            // and loss scale, so its reports stay in order and its schedule continues where it is.
            const own = await trainer.checkpoint();
            const next = new Trainer(gpu, loaded, train, validation, padId, decided.options);
            const weights = decided.checkpoint ?? own;
            next.restore({ ...weights, step: own.step, position: own.position, scaler: own.scaler });
            trainer.destroy();
            trainer = next;
            current = { number: job.number, trainer, stop };
          }
          if (segment.checkpointDue && !stop.signal.aborted && trainer.step < trainer.totalSteps) {
            const c = await trainer.checkpoint();
            await callbacks.onCheckpoint?.(host.transfer(c, checkpointBuffers(c)));
          }
          if (trainer.step >= trainer.totalSteps && (!pause.signal.aborted || evaluatedToEnd)) {
            return await finish('complete', trainer, lastEval, job);
          }
          if (trainer.step >= trainer.totalSteps) {
            // Paused at the last step's evaluation point: the final evaluation is still due.
            lastEval = await trainer.evaluate(validation, (d, t) => callbacks.onEvalProgress?.(d, t));
            const d = await callbacks.onEval(lastEval, true);
            return await finish(d.action === 'prune' ? 'pruned' : 'complete', trainer, lastEval, job);
          }
        }
      } finally {
        current = null;
        trainer.destroy();
      }
    },

    /** The running trial's weights and optimizer state now (PBT donor), buffers transferred. */
    async checkpoint(number: number): Promise<TrainerCheckpoint> {
      if (!current || current.number !== number) throw new Error(`trial ${number} is not running here`);
      const c = await current.trainer.checkpoint();
      return host.transfer(c, checkpointBuffers(c));
    },

    /** Ends the running trial after the step in flight (its outcome says 'stopped', with its checkpoint). */
    stop(): void {
      current?.stop.abort();
    },

    dispose(): void {
      loaded?.destroy();
      gpu?.destroy();
      retired = gpu ?? retired;
      loaded = null;
      gpu = null;
    },

    /**
     * Ends this worker for good, at once: the running trial stops and the device is freed, so what is in flight
     * fails at its next GPU call. Resolves once the device has settled everything it handed out.
     */
    async shutdown(): Promise<void> {
      current?.stop.abort();
      runner.dispose();
      await retired?.drain();
    },
  };

  async function finish(
    state: TrialOutcome['state'],
    trainer: Trainer,
    lastEval: EvalMetrics | null,
    job: TrialJob,
  ): Promise<TrialOutcome> {
    const adapter =
      state === 'complete' && job.exportAdapter ? await trainer.exportAdapter(job.baseModel) : null;
    const wanted = state === 'stopped' || (state === 'complete' && job.keepCheckpoint);
    const checkpoint = wanted ? await trainer.checkpoint() : null;
    const buffers: Transferable[] = checkpoint ? checkpointBuffers(checkpoint) : [];
    if (adapter) buffers.push(adapter['adapter_model.safetensors'].buffer as ArrayBuffer);
    const outcome: TrialOutcome = {
      state,
      steps: trainer.step,
      lastEval,
      adapter,
      checkpoint,
      gpuBytes: (loaded?.weightBytes ?? 0) + trainer.gpuBytes,
    };
    return host.transfer(outcome, buffers);
  }

  return runner;
}

export type TrialRunner = ReturnType<typeof createTrialRunner>;
