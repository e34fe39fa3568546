// Evaluation metrics: accuracy and macro-F1 for classification (sklearn's definitions), perplexity, and a
// running tokens/s meter fed with timestamps by the caller (performance.now() in the trainer, fixed numbers
// in tests).

/** Fraction of positions where predicted === target. */
export function accuracy(predicted: ArrayLike<number>, target: ArrayLike<number>): number {
  checkPair('accuracy', predicted, target);
  let hits = 0;
  for (let i = 0; i < target.length; i++) if (predicted[i] === target[i]) hits++;
  return hits / target.length;
}

/**
 * Macro-averaged F1 as sklearn.metrics.f1_score(average='macro'): the unweighted mean of per-class F1 over
 * `classes` (default: every class that occurs in target or predicted); a class with no true and no predicted
 * instance scores 0 (zero_division=0).
 */
export function macroF1(
  predicted: ArrayLike<number>,
  target: ArrayLike<number>,
  classes?: readonly number[],
): number {
  checkPair('macroF1', predicted, target);
  const labels = classes ?? [...new Set([...Array.from(target), ...Array.from(predicted)])];
  if (labels.length === 0) throw new RangeError('macroF1: no classes');
  let sum = 0;
  for (const c of labels) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    for (let i = 0; i < target.length; i++) {
      const p = predicted[i] === c;
      const t = target[i] === c;
      if (p && t) tp++;
      else if (p) fp++;
      else if (t) fn++;
    }
    const denom = 2 * tp + fp + fn;
    sum += denom === 0 ? 0 : (2 * tp) / denom;
  }
  return sum / labels.length;
}

function checkPair(what: string, predicted: ArrayLike<number>, target: ArrayLike<number>): void {
  if (predicted.length !== target.length) {
    throw new RangeError(`${what}: ${predicted.length} predictions for ${target.length} targets`);
  }
  if (target.length === 0) throw new RangeError(`${what}: no examples`);
}

/** exp of the mean token cross-entropy (nats). Give the token-weighted mean, not a mean of batch means. */
export function perplexity(meanLoss: number): number {
  return Math.exp(meanLoss);
}

/** Token-weighted mean loss from per-batch (sum of token losses, token count) pairs. */
export function meanTokenLoss(batches: readonly { lossSum: number; tokens: number }[]): number {
  let loss = 0;
  let tokens = 0;
  for (const b of batches) {
    loss += b.lossSum;
    tokens += b.tokens;
  }
  if (tokens === 0) throw new RangeError('meanTokenLoss: no tokens');
  return loss / tokens;
}

/**
 * Tokens per second over a sliding window of the last `windowMs` milliseconds (at least the last two
 * samples), so a stall shows quickly and a single slow step does not stay in the figure forever.
 */
export class TokenRateMeter {
  readonly windowMs: number;
  #samples: { t: number; total: number }[] = [];
  #total = 0;

  constructor(windowMs = 10_000) {
    if (!(windowMs > 0)) throw new RangeError(`TokenRateMeter: windowMs must be > 0, got ${windowMs}`);
    this.windowMs = windowMs;
  }

  /** Marks the start of timing (before the first step's tokens). */
  start(nowMs: number): void {
    this.#samples = [{ t: nowMs, total: this.#total }];
  }

  /** Records `tokens` processed, finishing at `nowMs`. */
  add(tokens: number, nowMs: number): void {
    if (!(tokens >= 0)) throw new RangeError(`TokenRateMeter.add: tokens must be ≥ 0, got ${tokens}`);
    const last = this.#samples[this.#samples.length - 1];
    if (last && nowMs < last.t)
      throw new RangeError(`TokenRateMeter.add: time went backwards (${nowMs} < ${last.t})`);
    this.#total += tokens;
    this.#samples.push({ t: nowMs, total: this.#total });
    while (this.#samples.length > 2 && nowMs - this.#samples[1].t >= this.windowMs) this.#samples.shift();
  }

  get totalTokens(): number {
    return this.#total;
  }

  /** Tokens/s over the window; 0 before two samples. */
  get rate(): number {
    if (this.#samples.length < 2) return 0;
    const first = this.#samples[0];
    const last = this.#samples[this.#samples.length - 1];
    const dt = last.t - first.t;
    return dt > 0 ? ((last.total - first.total) * 1000) / dt : 0;
  }
}
