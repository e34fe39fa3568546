// What the trainer, evaluation and the CLI need from a model family on the GPU: activations for a
// (batch, seq), an explicit forward that ends in the loss, and an explicit backward into the LoRA gradients.

import type { BufferArena, CommandRecorder, Gpu, Scalar, ScalarType } from '../gpu/index.ts';

export interface LossOptions {
  /** 1 / valid target tokens of the whole optimizer step (all micro-batches); a StepScalar when replayed. */
  invNormaliser: Scalar;
  /** Add into the loss scalar (micro-batches after the first). */
  accumulate: boolean;
  /** Distinct per micro-batch: keys the LoRA dropout masks. Default 0. */
  dropoutStep?: number;
  /**
   * The micro-batch's index within the step (default 0): the masks read dropoutStep as a GPU word holding
   * dropoutStep − offset plus this offset, so every step records the same uniforms. Micro-batches recorded
   * into one submit must share dropoutStep − offset.
   */
  dropoutOffset?: number;
  /**
   * Training: the dynamic loss scale of the backward that follows. The head's gradient is then computed in the
   * same sweep over the vocabulary as the loss (each chunk's logits once) and the backward starts from it.
   */
  lossScale?: Scalar;
  /** Evaluation: adapters skip their dropout (PEFT under model.eval()). Default false (training). */
  eval?: boolean;
}

export interface BackwardOptions {
  invNormaliser: Scalar;
  /** Dynamic loss scale the loss gradient is multiplied by; the optimizer divides it out. */
  lossScale: Scalar;
  dropoutStep?: number;
  dropoutOffset?: number;
}

export interface ActivationOptions {
  /**
   * Activation recomputation per block: the forward keeps only each block's input (per layer) and passes every
   * block through one shared workspace; the backward re-records block l's forward from its saved input (same
   * kernels, same LoRA dropout masks) just before block l's backward. Saves (L − 1) blocks of activations for
   * about one more forward per step. Default false.
   */
  recompute?: boolean;
  /**
   * Tokens per chunk of the LoRA gradients' token split (kernels/lora-grads.ts). Default: its rule (no split
   * below 512 tokens). Tests and benches set it to run or time the split at other shapes.
   */
  gradChunkTokens?: number;
}

/** Buffers every family's activations share; the rest is the family's own business. */
export interface TrainingActivations {
  readonly batch: number;
  readonly seq: number;
  readonly arena: BufferArena;
  /** Made with `recompute` (see ActivationOptions). */
  readonly recompute: boolean;
  readonly tokens: GPUBuffer; // (N) u32 input ids
  readonly targets: GPUBuffer; // (N) i32 next-token ids, −100 = ignored
  readonly embedErrors: GPUBuffer; // (3) u32 out-of-vocabulary report
  readonly loss: GPUBuffer; // (1) f32 mean loss, accumulated over micro-batches
  readonly losses: GPUBuffer; // (N) f32 per-token loss
  /**
   * Writes the GPU word the LoRA dropout masks are keyed by (LossOptions' dropoutStep − dropoutOffset).
   * `forward` and `backward` write it themselves; a replayed step (CommandRecorder.replayable) runs neither, so
   * its caller writes it here.
   */
  writeDropoutBase(base: number): void;
}

export interface CausalLM<A extends TrainingActivations = TrainingActivations> {
  readonly gpu: Gpu;
  readonly dtype: ScalarType;
  readonly vocab: number;
  createActivations(arena: BufferArena, batch: number, seq: number, options?: ActivationOptions): A;
  forward(rec: CommandRecorder, acts: A, loss: LossOptions): void;
  backward(rec: CommandRecorder, acts: A, loss: BackwardOptions): void;
}
