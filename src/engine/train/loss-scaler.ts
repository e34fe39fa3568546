// Dynamic loss scaling (torch.amp.GradScaler's state machine): gradients of an f16 forward/backward are
// computed on loss · scale; a step whose gradients hold inf/NaN is skipped and the scale halved; after
// `growthInterval` consecutive clean steps it doubles.
//
// The trainer learns about step k's overflow only after later steps were already recorded with the scale
// of the moment (the flag is read back asynchronously). Each step therefore carries the scale it ran with:
// an overflow on a step that ran at a scale larger than the current one (already backed off from) does not
// halve again (a synchronous GradScaler would never have run that step at that scale), but it still counts
// as skipped, since the GPU skipped it.

export interface LossScalerOptions {
  /** Default 2^15. */
  initScale?: number;
  /** Multiplier after growthInterval clean steps. Default 2. */
  growthFactor?: number;
  /** Multiplier on overflow. Default 0.5. */
  backoffFactor?: number;
  /** Default 2000. */
  growthInterval?: number;
  /** Default 1. */
  minScale?: number;
  /** Default 2^24. */
  maxScale?: number;
}

export interface LossScalerState {
  scale: number;
  cleanSteps: number;
  skippedSteps: number;
  totalSteps: number;
}

export class LossScaler {
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;
  readonly minScale: number;
  readonly maxScale: number;
  #scale: number;
  #clean = 0;
  #skipped = 0;
  #total = 0;

  constructor(options: LossScalerOptions = {}) {
    const {
      initScale = 2 ** 15,
      growthFactor = 2,
      backoffFactor = 0.5,
      growthInterval = 2000,
      minScale = 1,
      maxScale = 2 ** 24,
    } = options;
    const positive = (name: string, v: number): void => {
      if (!(v > 0) || !Number.isFinite(v))
        throw new RangeError(`LossScaler: ${name} must be a finite number > 0, got ${v}`);
    };
    positive('initScale', initScale);
    positive('minScale', minScale);
    positive('maxScale', maxScale);
    if (minScale > maxScale)
      throw new RangeError(`LossScaler: minScale ${minScale} exceeds maxScale ${maxScale}`);
    if (initScale < minScale || initScale > maxScale) {
      throw new RangeError(
        `LossScaler: initScale ${initScale} is outside [minScale, maxScale] = [${minScale}, ${maxScale}]`,
      );
    }
    if (!(growthFactor > 1) || !Number.isFinite(growthFactor)) {
      throw new RangeError(`LossScaler: growthFactor must be a finite number > 1, got ${growthFactor}`);
    }
    if (!(backoffFactor > 0 && backoffFactor < 1)) {
      throw new RangeError(`LossScaler: backoffFactor must be in (0, 1), got ${backoffFactor}`);
    }
    if (!Number.isInteger(growthInterval) || growthInterval < 1) {
      throw new RangeError(`LossScaler: growthInterval must be a whole number ≥ 1, got ${growthInterval}`);
    }
    this.growthFactor = growthFactor;
    this.backoffFactor = backoffFactor;
    this.growthInterval = growthInterval;
    this.minScale = minScale;
    this.maxScale = maxScale;
    this.#scale = initScale;
  }

  /** The scale to record the next step with. */
  get scale(): number {
    return this.#scale;
  }

  get skippedSteps(): number {
    return this.#skipped;
  }

  /** Consecutive clean steps since the last change of scale. */
  get cleanSteps(): number {
    return this.#clean;
  }

  /**
   * Feeds the outcome of one step, in step order. `scaleUsed` is the scale that step was recorded with
   * (default: the current scale, i.e. a synchronous trainer). Returns true when the step was skipped.
   */
  update(nonFinite: boolean, scaleUsed: number = this.#scale): boolean {
    this.#total++;
    if (nonFinite) {
      this.#skipped++;
      if (scaleUsed <= this.#scale) {
        this.#scale = Math.max(this.minScale, this.#scale * this.backoffFactor);
      }
      this.#clean = 0;
      return true;
    }
    this.#clean++;
    if (this.#clean >= this.growthInterval) {
      this.#scale = Math.min(this.maxScale, this.#scale * this.growthFactor);
      this.#clean = 0;
    }
    return false;
  }

  state(): LossScalerState {
    return {
      scale: this.#scale,
      cleanSteps: this.#clean,
      skippedSteps: this.#skipped,
      totalSteps: this.#total,
    };
  }

  /** Restores a checkpointed state. */
  load(state: LossScalerState): void {
    if (!(state.scale > 0) || !Number.isFinite(state.scale))
      throw new RangeError(`LossScaler.load: bad scale ${state.scale}`);
    this.#scale = state.scale;
    this.#clean = state.cleanSteps;
    this.#skipped = state.skippedSteps;
    this.#total = state.totalSteps;
  }
}
