// f64 references of the optimizer updates (PyTorch semantics) and of the global grad norm / clip factor.

export interface RefSegment {
  length: number;
  lrMult?: number;
  wdMult?: number;
}

/** Per-element (lrMult, wdMult) expanded from the segments. */
export function expandSegments(segments: readonly RefSegment[]): {
  lrMult: Float64Array;
  wdMult: Float64Array;
} {
  const n = segments.reduce((s, x) => s + x.length, 0);
  const lrMult = new Float64Array(n);
  const wdMult = new Float64Array(n);
  let at = 0;
  for (const s of segments) {
    lrMult.fill(s.lrMult ?? 1, at, at + s.length);
    wdMult.fill(s.wdMult ?? 1, at, at + s.length);
    at += s.length;
  }
  return { lrMult, wdMult };
}

export interface AdamWRefState {
  params: Float64Array;
  m: Float64Array;
  v: Float64Array;
  /** Applied steps so far. */
  t: number;
}

/** One AdamW step in place; gradients are multiplied by gradScale first. */
export function adamwRef(
  state: AdamWRefState,
  grads: ArrayLike<number>,
  gradScale: number,
  segments: readonly RefSegment[],
  h: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number },
): void {
  const { lrMult, wdMult } = expandSegments(segments);
  state.t += 1;
  const bc1 = 1 - h.beta1 ** state.t;
  const bc2 = 1 - h.beta2 ** state.t;
  for (let i = 0; i < state.params.length; i++) {
    const lr = h.lr * lrMult[i];
    const g = grads[i] * gradScale;
    let w = state.params[i];
    w -= lr * h.weightDecay * wdMult[i] * w;
    state.m[i] = h.beta1 * state.m[i] + (1 - h.beta1) * g;
    state.v[i] = h.beta2 * state.v[i] + (1 - h.beta2) * g * g;
    w -= ((lr / bc1) * state.m[i]) / (Math.sqrt(state.v[i]) / Math.sqrt(bc2) + h.eps);
    state.params[i] = w;
  }
}

/** One SGD step in place (torch.optim.SGD, dampening 0, coupled weight decay). */
export function sgdRef(
  state: { params: Float64Array; momentum: Float64Array },
  grads: ArrayLike<number>,
  gradScale: number,
  segments: readonly RefSegment[],
  h: { lr: number; momentum: number; nesterov: boolean; weightDecay: number },
): void {
  const { lrMult, wdMult } = expandSegments(segments);
  for (let i = 0; i < state.params.length; i++) {
    const w = state.params[i];
    const g = grads[i] * gradScale + h.weightDecay * wdMult[i] * w;
    let step = g;
    if (h.momentum !== 0) {
      state.momentum[i] = h.momentum * state.momentum[i] + g;
      step = h.nesterov ? g + h.momentum * state.momentum[i] : state.momentum[i];
    }
    state.params[i] = w - h.lr * lrMult[i] * step;
  }
}

/** Norm of g / lossScale, the clip factor and the resulting gradient scale. */
export function gradNormRef(
  grads: ArrayLike<number>,
  lossScale: number,
  maxNorm: number,
): { norm: number; clip: number; gradScale: number; nonFinite: boolean } {
  let sum = 0;
  let nonFinite = false;
  for (let i = 0; i < grads.length; i++) {
    if (!Number.isFinite(grads[i])) nonFinite = true;
    sum += (grads[i] / lossScale) ** 2;
  }
  const norm = Math.sqrt(sum);
  const clip = maxNorm > 0 ? Math.min(1, maxNorm / (norm + 1e-6)) : 1;
  return { norm, clip, gradScale: nonFinite ? 0 : clip / lossScale, nonFinite };
}
