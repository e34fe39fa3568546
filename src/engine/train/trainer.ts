// The LoRA trainer on the GPU: one command encoder and one queue.submit per optimizer step (every
// micro-batch's forward and backward, the global grad norm with clipping and unscaling, and the optimizer
// update), and the step's metrics read back while the next step runs. Mathematically it is PEFT + Hugging Face
// Trainer: token-weighted mean loss over the whole effective batch, HF's LR schedules with warmup, AdamW with
// decoupled weight decay or SGD, max-grad-norm clipping, dynamic loss scaling under f16.

import {
  BufferArena,
  CommandRecorder,
  GpuLimitError,
  STORAGE_USAGE,
  StepScalar,
  type Gpu,
  type PendingRead,
  type Profiler,
  type RecordingCounts,
} from '../gpu/index.ts';
import { CONTROL, GRADNORM_PARTIALS_BYTES, gradNorm } from '../kernels/gradnorm.ts';
import {
  ADAMW_STEP_BYTES,
  adamwUpdate,
  segmentTable,
  sgdUpdate,
  type SegmentTableRef,
} from '../kernels/optimizer.ts';
import { decodeEmbeddingErrors, EMBEDDING_ERROR_WORDS, embeddingError } from '../kernels/embedding.ts';
import { loraGradsChunkTokens } from '../kernels/lora-grads.ts';
import { LoraConfigError, rankProblem, resolveTargets, type LoraConfig } from '../lora/config.ts';
import { estimateMemory, memoryProblems, optimizerMoments, STEP_METRICS_BYTES } from '../model/memory.ts';
import { initLoraParams, loraLayout, optimizerSegments, type LoraLayout } from '../lora/init.ts';
import { exportPeftAdapter, type PeftAdapterFiles } from '../lora/peft.ts';
import type { CausalLM, TrainingActivations } from '../model/causal-lm.ts';
import { loraAdapters } from '../model/lora-bindings.ts';
import type { LoadedModel } from '../model/load.ts';
import { BatchIterator, type BatchPosition, type Example } from './data.ts';
import { evaluateClassification, labelCompletions } from './classify.ts';
import { evaluateLoss } from './evaluate.ts';
import { LossScaler, type LossScalerOptions, type LossScalerState } from './loss-scaler.ts';
import { layerDecay, makeSchedule, type Schedule, type ScheduleKind } from './schedule.ts';

export interface TrainerOptions {
  lora: LoraConfig;
  optimizer: 'adamw' | 'sgd';
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  nesterov?: boolean;
  schedule: ScheduleKind;
  warmupSteps?: number;
  warmupRatio?: number;
  /** Layer-wise LR decay: layer l of L gets lr·llrd^(L−1−l). 1 = off. */
  llrd?: number;
  /** LoRA+: every B matrix's learning rate is this × its A's (after LLRD). 1 = off. */
  loraplusLrRatio?: number;
  batch: number;
  accum: number;
  seq: number;
  /** Optimizer steps; when absent, `epochs` over the training set. */
  steps?: number;
  epochs?: number;
  /** Clip the global gradient norm to this; 0 = off. */
  maxGradNorm?: number;
  seed: number;
  /** Evaluate every N optimizer steps (and at the end); 0 = only at the end. */
  evalEvery?: number;
  /** Dynamic loss scaling, used when the model runs in f16. */
  lossScale?: LossScalerOptions;
  /** Classification data (`text,label` CSV): the label set; evaluation then reports accuracy and macro-F1. */
  classes?: readonly string[];
  /**
   * Activation recomputation per block: keep only each block's input through the forward and rebuild the block
   * during the backward (about one more forward per step, (L − 1) fewer blocks of activations). Same
   * gradients, same dropout masks. Default false.
   */
  recompute?: boolean;
  /**
   * Tokens per chunk of the LoRA weight gradients' token split (kernels/lora-grads.ts). Default:
   * `loraGradsChunkTokens` (the kernel's rule, no split below 512 tokens a micro-batch or on a software driver);
   * tests and benches set it. Same gradients up to f32 rounding.
   */
  gradChunkTokens?: number;
  /**
   * Stop with a TrainingDivergedError after this many optimizer steps in a row were skipped for non-finite
   * gradients. Default DEFAULT_MAX_SKIPPED_STEPS.
   */
  maxSkippedSteps?: number;
  /**
   * Replay the recorded step once it repeats (CommandRecorder.replayable) instead of running the model's code
   * every step. Default true; false is for comparing against.
   */
  replay?: boolean;
  /** Timestamp every dispatch of every step (one pass each; no replay): per-kernel GPU time, benchmarks only. */
  profiler?: Profiler;
}

/**
 * Consecutive skipped steps that mean training has diverged. A loss scaler backing off from its largest scale
 * (2^24) to its smallest (1) skips 24 steps in a row; 50 in a row means even the smallest scale overflows (the
 * weights or activations are no longer finite), and every further step would be skipped as well.
 */
export const DEFAULT_MAX_SKIPPED_STEPS = 50;

/** Every step from some point on was skipped for non-finite values: the adapter is not worth writing. */
export class TrainingDivergedError extends Error {
  constructor(
    readonly step: number,
    readonly skippedInARow: number,
    readonly lossScale: number | null,
  ) {
    super(
      `training diverged: ${skippedInARow} consecutive optimizer steps (up to step ${step}) were skipped ` +
        `for non-finite gradients` +
        (lossScale === null ? '' : ` (loss scale now ${lossScale})`) +
        '; lower the learning rate (or use f32) and start again',
    );
    this.name = 'TrainingDivergedError';
  }
}

export interface StepMetrics {
  step: number; // 1-based: optimizer steps taken
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  lossScale: number;
  skipped: boolean;
  skippedSteps: number;
  tokens: number;
  tokensPerSecond: number;
}

export interface EvalMetrics {
  step: number;
  valLoss: number;
  perplexity: number;
  tokens: number;
  /** Classification data only. */
  accuracy?: number;
  macroF1?: number;
}

export interface TrainerCheckpoint {
  step: number;
  params: Float32Array;
  moments: Float32Array[];
  optimizerStep: Uint32Array;
  position: BatchPosition;
  scaler: LossScalerState | null;
}

export interface RunCallbacks {
  onStep?: (m: StepMetrics) => void;
  onEval?: (m: EvalMetrics) => void;
  /** During an evaluation: micro-batches of the validation set done, of `total`. */
  onEvalProgress?: (done: number, total: number) => void;
  signal?: AbortSignal;
}

/** Resolves the option defaults once (HF Trainer's where it has one). */
function withDefaults(o: TrainerOptions) {
  return {
    beta1: 0.9,
    beta2: 0.999,
    eps: 1e-8,
    weightDecay: 0,
    momentum: 0,
    nesterov: false,
    llrd: 1,
    loraplusLrRatio: 1,
    maxGradNorm: 1,
    evalEvery: 0,
    recompute: false,
    maxSkippedSteps: DEFAULT_MAX_SKIPPED_STEPS,
    ...o,
  };
}

export class Trainer {
  readonly options: ReturnType<typeof withDefaults>;
  readonly layout: LoraLayout;
  readonly model: CausalLM;
  readonly acts: TrainingActivations;
  readonly iterator: BatchIterator;
  readonly totalSteps: number;
  readonly scaler: LossScaler | null;
  readonly #arena: BufferArena;
  readonly #params: GPUBuffer;
  readonly #grads: GPUBuffer;
  readonly #moments: GPUBuffer[];
  readonly #optimizerStep: GPUBuffer;
  readonly #control: GPUBuffer;
  readonly #partials: GPUBuffer;
  readonly #segments: SegmentTableRef;
  readonly #tokensAll: GPUBuffer;
  readonly #targetsAll: GPUBuffer;
  readonly #metrics: GPUBuffer;
  readonly #rec: CommandRecorder;
  /** What changes from step to step in the recorded commands: uniform words written at each submit. */
  readonly #scalars = {
    lr: new StepScalar(),
    lossScale: new StepScalar(1),
    invNormaliser: new StepScalar(1),
  };
  readonly #schedule: Schedule;
  #step = 0;
  /** Steps skipped in a row, counted as their metrics land (in step order). */
  #skippedInARow = 0;

  constructor(
    readonly gpu: Gpu,
    readonly loaded: LoadedModel,
    readonly train: readonly Example[],
    readonly validation: readonly Example[],
    readonly padId: number,
    options: TrainerOptions,
  ) {
    const o = (this.options = withDefaults(options));
    const spec = loaded.spec;
    if (o.seq > spec.maxPositions) {
      throw new RangeError(`seq ${o.seq} exceeds the model's ${spec.maxPositions} positions`);
    }
    const modules = resolveTargets(o.lora, spec);
    const rank = rankProblem(o.lora.r, modules);
    if (rank !== null) throw new LoraConfigError('r', rank);
    const moments = optimizerMoments(o);
    const gradChunkTokens = loraGradsChunkTokens(gpu, o.batch * o.seq, o.gradChunkTokens);
    // Refuse up front, naming the buffer, rather than fail halfway through allocating.
    const estimate = estimateMemory(spec, {
      batch: o.batch,
      seq: o.seq,
      precision: loaded.precision,
      lora: { rank: o.lora.r, targets: o.lora.targets, dropout: o.lora.dropout },
      recompute: o.recompute,
      accum: o.accum,
      moments,
      limits: gpu.limits,
      gradChunkTokens,
    });
    const problems = memoryProblems(estimate, gpu.limits);
    if (problems.length > 0) {
      throw new GpuLimitError(
        `batch ${o.batch} × seq ${o.seq} does not fit this GPU: ${problems.join('; ')}`,
      );
    }
    this.layout = loraLayout(modules, o.lora.r);
    this.iterator = new BatchIterator(train, {
      batch: o.batch,
      accum: o.accum,
      seq: o.seq,
      seed: o.seed,
      padId,
    });
    if (o.steps === undefined && o.epochs === undefined) throw new RangeError('give either steps or epochs');
    if (!(Number.isFinite(o.loraplusLrRatio) && o.loraplusLrRatio > 0)) {
      throw new RangeError(`loraplusLrRatio must be a number > 0, got ${o.loraplusLrRatio}`);
    }
    if (!Number.isInteger(o.maxSkippedSteps) || o.maxSkippedSteps < 1) {
      throw new RangeError(`maxSkippedSteps must be a whole number ≥ 1, got ${o.maxSkippedSteps}`);
    }
    this.totalSteps = o.steps ?? Math.ceil((o.epochs ?? 1) * this.iterator.stepsPerEpoch);
    if (!Number.isInteger(this.totalSteps) || this.totalSteps < 0) {
      throw new RangeError(`steps must be a whole number ≥ 0, got ${this.totalSteps}`);
    }
    this.#schedule = makeSchedule({
      kind: o.schedule,
      totalSteps: Math.max(1, this.totalSteps),
      warmupSteps: o.warmupSteps,
      warmupRatio: o.warmupRatio,
    });
    this.scaler = loaded.precision === 'f16' ? new LossScaler(o.lossScale) : null;

    const arena = (this.#arena = new BufferArena(gpu));
    const bytes = this.layout.totalBytes;
    this.#params = arena.upload('lora.params', initLoraParams(this.layout, o.seed));
    this.#grads = arena.alloc('lora.grads', bytes);
    this.#moments = Array.from({ length: moments }, (_, i) => arena.alloc(`lora.moment${i}`, bytes));
    this.#optimizerStep = arena.alloc('optimizer.step', ADAMW_STEP_BYTES);
    this.#control = arena.alloc('step.control', CONTROL.bytes);
    this.#partials = arena.alloc('gradnorm.partials', GRADNORM_PARTIALS_BYTES);
    const decay = layerDecay(spec.layers, o.llrd);
    const table = segmentTable(optimizerSegments(this.layout, decay, 1, o.loraplusLrRatio));
    this.#segments = { binding: arena.upload('optimizer.segments', table), count: table.length / 4 };
    for (const buffer of [...this.#moments, this.#optimizerStep, this.#control]) {
      gpu.device.queue.writeBuffer(buffer, 0, new Uint8Array(buffer.size));
    }

    const adapters = loraAdapters(o.lora, this.layout, this.#params, this.#grads, o.seed);
    this.model = loaded.withAdapters(adapters);
    this.acts = this.model.createActivations(arena, o.batch, o.seq, {
      recompute: o.recompute,
      gradChunkTokens,
    });
    const N = o.batch * o.seq;
    this.#tokensAll = arena.alloc('tokens.step', 4 * N * o.accum);
    this.#targetsAll = arena.alloc('targets.step', 4 * N * o.accum);
    // [loss f32, control words (4), embedding error words (3)] copied here each step: one async readback.
    this.#metrics = arena.alloc('step.metrics', STEP_METRICS_BYTES, STORAGE_USAGE);
    this.#rec = new CommandRecorder(gpu, {
      label: 'train-step',
      replay: o.replay ?? true,
      profiler: o.profiler,
    });
  }

  get step(): number {
    return this.#step;
  }

  /** What the last submitted step recorded: dispatches, passes, bind groups made, replayed dispatches, FLOPs. */
  get lastStepCounts(): RecordingCounts {
    return this.#rec.lastCounts;
  }

  /** Bytes the trainer holds on the GPU beyond the frozen weights (adapters, optimizer, activations). */
  get gpuBytes(): number {
    return this.#arena.bytesInUse;
  }

  /**
   * Records (or replays) and submits one optimizer step; resolves to its metrics once the GPU has run it.
   * The step's commands are the same every step of a run: what varies is in buffers (token ids, the dropout
   * step word, the optimizer's step count) or StepScalars (lr, loss scale, 1/tokens), so after two identical
   * recordings the recorder replays them without running the model's code (CommandRecorder.replayable).
   */
  submitStep(): () => Promise<StepMetrics> {
    const o = this.options;
    const batch = this.iterator.next();
    const N = o.batch * o.seq;
    const lr = o.lr * this.#schedule(this.#step);
    const lossScale = this.scaler?.scale ?? 1;
    const scalars = this.#scalars;
    scalars.lr.value = lr;
    scalars.lossScale.value = lossScale;
    scalars.invNormaliser.value = 1 / Math.max(1, batch.numItems);
    const queue = this.gpu.device.queue;
    batch.microBatches.forEach((mb, i) => {
      queue.writeBuffer(
        this.#tokensAll,
        4 * N * i,
        new Uint32Array(mb.inputs.buffer as ArrayBuffer, mb.inputs.byteOffset, N),
      );
      queue.writeBuffer(this.#targetsAll, 4 * N * i, mb.targets as Int32Array<ArrayBuffer>);
    });

    // Micro-batch i keys its dropout masks by step·accum + i: a base word on the GPU plus i in the uniforms.
    const dropoutBase = this.#step * o.accum;
    this.acts.writeDropoutBase(dropoutBase);
    const rec = this.#rec;
    rec.replayable(`micro-batches ${batch.microBatches.length}`, () =>
      this.#recordStep(batch.microBatches.length, dropoutBase),
    );
    rec.copy(this.acts.loss, 0, this.#metrics, 0, 4);
    rec.copy(this.#control, 0, this.#metrics, 4, CONTROL.bytes);
    rec.copy(this.acts.embedErrors, 0, this.#metrics, 4 + CONTROL.bytes, 4 * EMBEDDING_ERROR_WORDS);
    const metrics = rec.readback(this.#metrics);
    rec.submit();
    this.#step++;
    const step = this.#step;
    const tokens = batch.microBatches.reduce((s, mb) => s + mb.rows * o.seq, 0);
    return () => this.#finishStep(metrics, { step, epoch: batch.epoch, lr, lossScale, tokens });
  }

  /** The commands of one optimizer step over `microBatches` uploaded micro-batches. */
  #recordStep(microBatches: number, dropoutBase: number): void {
    const o = this.options;
    const N = o.batch * o.seq;
    const rec = this.#rec;
    const { lr, lossScale, invNormaliser } = this.#scalars;
    rec.clear(this.#grads);
    for (let i = 0; i < microBatches; i++) {
      rec.copy(this.#tokensAll, 4 * N * i, this.acts.tokens, 0, 4 * N);
      rec.copy(this.#targetsAll, 4 * N * i, this.acts.targets, 0, 4 * N);
      const dropout = { dropoutStep: dropoutBase + i, dropoutOffset: i };
      this.model.forward(rec, this.acts, { invNormaliser, accumulate: i > 0, lossScale, ...dropout });
      this.model.backward(rec, this.acts, { invNormaliser, lossScale, ...dropout });
    }
    const n = this.layout.totalElements;
    gradNorm(rec, this.#control, this.#grads, n, this.#partials, {
      lossScale,
      maxNorm: o.maxGradNorm,
      overflow: this.acts.embedErrors,
    });
    if (o.optimizer === 'adamw') {
      adamwUpdate(
        rec,
        { params: this.#params, m: this.#moments[0], v: this.#moments[1], step: this.#optimizerStep },
        this.#grads,
        this.#control,
        this.#segments,
        n,
        { lr, beta1: o.beta1, beta2: o.beta2, eps: o.eps, weightDecay: o.weightDecay },
      );
    } else {
      sgdUpdate(
        rec,
        { params: this.#params, momentum: this.#moments[0] },
        this.#grads,
        this.#control,
        this.#segments,
        n,
        { lr, momentum: o.momentum, nesterov: o.nesterov, weightDecay: o.weightDecay },
      );
    }
  }

  async #finishStep(
    metrics: PendingRead,
    info: { step: number; epoch: number; lr: number; lossScale: number; tokens: number },
  ): Promise<StepMetrics> {
    const bytes = await metrics.read();
    const embed = decodeEmbeddingErrors(new Uint32Array(bytes, 4 + CONTROL.bytes, EMBEDDING_ERROR_WORDS));
    if (embed) throw embeddingError(embed, this.model.vocab);
    const f32 = new Float32Array(bytes);
    const u32 = new Uint32Array(bytes);
    const nonFinite = u32[1 + CONTROL.nonFinite] !== 0;
    const skipped = this.scaler ? this.scaler.update(nonFinite, info.lossScale) : nonFinite;
    this.#skippedInARow = skipped ? this.#skippedInARow + 1 : 0;
    if (this.#skippedInARow >= this.options.maxSkippedSteps) {
      throw new TrainingDivergedError(info.step, this.#skippedInARow, this.scaler?.scale ?? null);
    }
    return {
      step: info.step,
      epoch: info.epoch,
      loss: f32[0],
      lr: info.lr,
      gradNorm: f32[1 + CONTROL.norm],
      lossScale: info.lossScale,
      skipped,
      skippedSteps: u32[1 + CONTROL.skipped],
      tokens: info.tokens,
      tokensPerSecond: 0,
    };
  }

  /** Mean next-token loss over the validation set (token-weighted, as HF Trainer's eval_loss). */
  async evaluate(
    examples: readonly Example[] = this.validation,
    onProgress?: (done: number, total: number) => void,
  ): Promise<EvalMetrics> {
    const result = await evaluateLoss(this.model, this.acts, examples, this.padId, onProgress);
    const metrics: EvalMetrics = {
      step: this.#step,
      valLoss: result.loss,
      perplexity: result.perplexity,
      tokens: result.tokens,
    };
    const classes = this.options.classes;
    if (classes && classes.length > 1) {
      const completions = labelCompletions(this.train, classes);
      const scored = await evaluateClassification(this.model, this.acts, examples, completions, this.padId);
      metrics.accuracy = scored.accuracy;
      metrics.macroF1 = scored.macroF1;
    }
    return metrics;
  }

  /**
   * Trains to the end (or until aborted), keeping one step in flight: step k+1 is submitted before step k's
   * metrics are awaited, so the GPU never waits for the CPU. Aborting pauses: the step in flight lands and is
   * reported, and calling `run` again resumes exactly where it stopped.
   */
  async run(callbacks: RunCallbacks = {}): Promise<{ steps: number; lastEval: EvalMetrics | null }> {
    const o = this.options;
    let pending: (() => Promise<StepMetrics>) | null = null;
    let lastEval: EvalMetrics | null = null;
    const started = performance.now();
    let tokens = 0;
    const finish = async (next: () => Promise<StepMetrics>) => {
      const m = await next();
      tokens += m.tokens;
      m.tokensPerSecond = tokens / ((performance.now() - started) / 1000);
      callbacks.onStep?.(m);
      if (
        o.evalEvery > 0 &&
        m.step % o.evalEvery === 0 &&
        m.step < this.totalSteps &&
        this.validation.length > 0
      ) {
        lastEval = await this.evaluate(this.validation, callbacks.onEvalProgress);
        callbacks.onEval?.(lastEval);
      }
    };
    while (this.#step < this.totalSteps && !callbacks.signal?.aborted) {
      const evalDue = o.evalEvery > 0 && this.#step > 0 && this.#step % o.evalEvery === 0;
      if (pending && evalDue) {
        await finish(pending); // an evaluation reads state: let the step before it land first
        pending = null;
      }
      const next = this.submitStep();
      if (pending) await finish(pending);
      pending = next;
    }
    if (pending) await finish(pending);
    if (this.validation.length > 0 && !callbacks.signal?.aborted) {
      lastEval = await this.evaluate(this.validation, callbacks.onEvalProgress);
      callbacks.onEval?.(lastEval);
    }
    return { steps: this.#step, lastEval };
  }

  /** The adapter as host values in the flat layout. */
  async readParams(): Promise<Float32Array> {
    const rec = new CommandRecorder(this.gpu);
    const pending = rec.readback(this.#params);
    rec.submit();
    return new Float32Array(await pending.read());
  }

  /** adapter_config.json + adapter_model.safetensors, as PEFT writes them. */
  async exportAdapter(baseModel: string, revision: string | null = null): Promise<PeftAdapterFiles> {
    const params = await this.readParams();
    return exportPeftAdapter(this.options.lora, this.loaded.spec, this.layout, params, {
      baseModel,
      revision,
    });
  }

  /** Everything needed to continue (or clone, for PBT) this run exactly. */
  async checkpoint(): Promise<TrainerCheckpoint> {
    const rec = new CommandRecorder(this.gpu);
    const reads = [this.#params, ...this.#moments, this.#optimizerStep].map((b) => rec.readback(b));
    rec.submit();
    const [params, ...rest] = await Promise.all(reads.map((r) => r.read()));
    const step = rest.pop()!;
    return {
      step: this.#step,
      params: new Float32Array(params),
      moments: rest.map((m) => new Float32Array(m)),
      optimizerStep: new Uint32Array(step),
      position: this.iterator.position,
      scaler: this.scaler?.state() ?? null,
    };
  }

  /** Loads a checkpoint of a trainer with the same adapter layout and optimizer (its own, or a donor's). */
  restore(checkpoint: TrainerCheckpoint, options: { keepPosition?: boolean } = {}): void {
    if (checkpoint.params.length !== this.layout.totalElements) {
      throw new RangeError(
        `checkpoint holds ${checkpoint.params.length} parameters; this trainer's adapter has ${this.layout.totalElements}`,
      );
    }
    if (checkpoint.moments.length !== this.#moments.length) {
      throw new RangeError('checkpoint was made with a different optimizer');
    }
    const queue = this.gpu.device.queue;
    queue.writeBuffer(this.#params, 0, checkpoint.params as Float32Array<ArrayBuffer>);
    checkpoint.moments.forEach((m, i) =>
      queue.writeBuffer(this.#moments[i], 0, m as Float32Array<ArrayBuffer>),
    );
    queue.writeBuffer(this.#optimizerStep, 0, checkpoint.optimizerStep as Uint32Array<ArrayBuffer>);
    this.#skippedInARow = 0;
    if (!options.keepPosition) {
      this.iterator.seek(checkpoint.position);
      this.#step = checkpoint.step;
      if (checkpoint.scaler) this.scaler?.load(checkpoint.scaler);
    }
  }

  destroy(): void {
    this.#rec.destroy();
    this.#arena.destroy();
  }
}
