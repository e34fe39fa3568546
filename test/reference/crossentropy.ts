// f64 reference of the LM-head cross-entropy: logits = h·Wᵀ, per-row log-sum-exp, loss = Σ (lse − logit[t]) ·
// invNormaliser over rows whose target is not ignored; backward dh = dlogits·W with
// dlogits = (softmax − onehot)·lossScale·invNormaliser.

export interface CeRefDims {
  N: number;
  C: number;
  V: number;
}

export interface CeRefResult {
  logits: Float64Array; // (N, V)
  lse: Float64Array; // (N)
  losses: Float64Array; // (N), 0 for ignored rows
  loss: number;
}

export function logitsRef(h: ArrayLike<number>, w: ArrayLike<number>, { N, C, V }: CeRefDims): Float64Array {
  const logits = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += h[n * C + c] * w[v * C + c];
      logits[n * V + v] = s;
    }
  }
  return logits;
}

/** Loss from logits (N, V) given whole. */
export function crossEntropyFromLogitsRef(
  logits: ArrayLike<number>,
  targets: ArrayLike<number>,
  N: number,
  V: number,
  invNormaliser: number,
  ignoreIndex = -100,
): Omit<CeRefResult, 'logits'> {
  const lse = new Float64Array(N);
  const losses = new Float64Array(N);
  let loss = 0;
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[n * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[n * V + v] - m);
    lse[n] = m + Math.log(s);
    const t = targets[n];
    losses[n] = t === ignoreIndex ? 0 : lse[n] - logits[n * V + t];
    loss += losses[n];
  }
  return { lse, losses, loss: loss * invNormaliser };
}

export function crossEntropyRef(
  h: ArrayLike<number>,
  w: ArrayLike<number>,
  targets: ArrayLike<number>,
  dims: CeRefDims,
  invNormaliser: number,
  ignoreIndex = -100,
): CeRefResult {
  const logits = logitsRef(h, w, dims);
  return {
    logits,
    ...crossEntropyFromLogitsRef(logits, targets, dims.N, dims.V, invNormaliser, ignoreIndex),
  };
}

/** dlogits (N, V) = (softmax − onehot)·scale, 0 on ignored rows. */
export function dlogitsRef(
  logits: ArrayLike<number>,
  lse: ArrayLike<number>,
  targets: ArrayLike<number>,
  N: number,
  V: number,
  scale: number,
  ignoreIndex = -100,
): Float64Array {
  const d = new Float64Array(N * V);
  for (let n = 0; n < N; n++) {
    if (targets[n] === ignoreIndex) continue;
    for (let v = 0; v < V; v++) {
      d[n * V + v] = (Math.exp(logits[n * V + v] - lse[n]) - (v === targets[n] ? 1 : 0)) * scale;
    }
  }
  return d;
}

/** dh (N, C) = dlogits · W (no accumulation). */
export function crossEntropyBackwardRef(
  h: ArrayLike<number>,
  w: ArrayLike<number>,
  targets: ArrayLike<number>,
  dims: CeRefDims,
  scale: number,
  ignoreIndex = -100,
): Float64Array {
  const { N, C, V } = dims;
  const { logits, lse } = crossEntropyRef(h, w, targets, dims, 1, ignoreIndex);
  const d = dlogitsRef(logits, lse, targets, N, V, scale, ignoreIndex);
  const dh = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    for (let v = 0; v < V; v++) {
      const g = d[n * V + v];
      if (g === 0) continue;
      for (let c = 0; c < C; c++) dh[n * C + c] += g * w[v * C + c];
    }
  }
  return dh;
}

export interface CeTrainRefResult {
  lse: Float64Array; // (N)
  losses: Float64Array; // (N): 0 for ignored rows, NaN for targets outside [0, V)
  loss: number;
  dh: Float64Array; // (N, C): scale·(softmax − onehot)·W, 0 for ignored rows
}

/**
 * What the fused training pass computes, straight from the definitions: loss, lse and dh with
 * scale = lossScale·invNormaliser. A target outside [0, V) gives a NaN loss and dh = scale·softmax·W (no onehot).
 */
export function crossEntropyTrainRef(
  h: ArrayLike<number>,
  w: ArrayLike<number>,
  targets: ArrayLike<number>,
  dims: CeRefDims,
  invNormaliser: number,
  lossScale: number,
  ignoreIndex = -100,
): CeTrainRefResult {
  const { N, C, V } = dims;
  const logits = logitsRef(h, w, dims);
  const lse = new Float64Array(N);
  const losses = new Float64Array(N);
  const dh = new Float64Array(N * C);
  const scale = lossScale * invNormaliser;
  let loss = 0;
  for (let n = 0; n < N; n++) {
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[n * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[n * V + v] - m);
    lse[n] = m + Math.log(s);
    const t = targets[n];
    if (t === ignoreIndex) continue;
    const valid = t >= 0 && t < V;
    losses[n] = valid ? lse[n] - logits[n * V + t] : NaN;
    loss += losses[n];
    for (let v = 0; v < V; v++) {
      const g = (Math.exp(logits[n * V + v] - lse[n]) - (v === t ? 1 : 0)) * scale;
      for (let c = 0; c < C; c++) dh[n * C + c] += g * w[v * C + c];
    }
  }
  return { lse, losses, loss: loss * invNormaliser, dh };
}
