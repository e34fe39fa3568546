// f64 references for RMSNorm and LayerNorm (forward and input-gradient backward), plus the finite-difference
// helpers the pointwise kernel tests share.

/** y (N, C), rstd (N) of y = x / sqrt(mean(x²) + eps) · w. */
export function rmsnormRef(x: ArrayLike<number>, w: ArrayLike<number>, N: number, C: number, eps: number) {
  const y = new Float64Array(N * C);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c] ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[n * C + c] = x[n * C + c] * r * w[c];
  }
  return { y, rstd };
}

/** dx (N, C) of rmsnorm, from the closed form. */
export function rmsnormBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  N: number,
  C: number,
  eps: number,
): Float64Array {
  const { rstd } = rmsnormRef(x, w, N, C, eps);
  const dx = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const r = rstd[n];
    let dot = 0;
    for (let c = 0; c < C; c++) dot += w[c] * dy[n * C + c] * x[n * C + c];
    for (let c = 0; c < C; c++) {
      dx[n * C + c] = r * (w[c] * dy[n * C + c] - (x[n * C + c] * r * r * dot) / C);
    }
  }
  return dx;
}

/** y (N, C), mean (N), rstd (N) of torch.nn.LayerNorm (biased variance). */
export function layernormRef(
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  b: ArrayLike<number>,
  N: number,
  C: number,
  eps: number,
) {
  const y = new Float64Array(N * C);
  const mean = new Float64Array(N);
  const rstd = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let c = 0; c < C; c++) s += x[n * C + c];
    const m = s / C;
    let ss = 0;
    for (let c = 0; c < C; c++) ss += (x[n * C + c] - m) ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    mean[n] = m;
    rstd[n] = r;
    for (let c = 0; c < C; c++) y[n * C + c] = (x[n * C + c] - m) * r * w[c] + b[c];
  }
  return { y, mean, rstd };
}

/** dx (N, C) of layernorm, from the closed form. */
export function layernormBackwardRef(
  dy: ArrayLike<number>,
  x: ArrayLike<number>,
  w: ArrayLike<number>,
  N: number,
  C: number,
  eps: number,
): Float64Array {
  const { mean, rstd } = layernormRef(x, w, new Float64Array(C), N, C, eps);
  const dx = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    let sg = 0;
    let sgx = 0;
    for (let c = 0; c < C; c++) {
      const g = w[c] * dy[n * C + c];
      sg += g;
      sgx += g * (x[n * C + c] - mean[n]) * rstd[n];
    }
    for (let c = 0; c < C; c++) {
      const g = w[c] * dy[n * C + c];
      const xhat = (x[n * C + c] - mean[n]) * rstd[n];
      dx[n * C + c] = rstd[n] * (g - sg / C - (xhat * sgx) / C);
    }
  }
  return dx;
}

export function dot(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

/**
 * ∂L/∂x for L(x) = ⟨f(x), dy⟩ by central differences at the given indices (all when omitted):
 * the gradient a backward kernel must produce for upstream gradient dy.
 */
export function finiteDiffGrad(
  f: (x: Float64Array) => ArrayLike<number>,
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  h = 1e-5,
  indices?: readonly number[],
): Float64Array {
  const probe = Float64Array.from(x);
  const grad = new Float64Array(x.length);
  for (const i of indices ?? probe.keys()) {
    const x0 = probe[i];
    probe[i] = x0 + h;
    const plus = dot(f(probe), dy);
    probe[i] = x0 - h;
    const minus = dot(f(probe), dy);
    probe[i] = x0;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

/** finiteDiffGrad for a forward that runs elsewhere (the GPU): a loose check of kernel against kernel. */
export async function finiteDiffGradAsync(
  f: (x: Float64Array) => Promise<ArrayLike<number>>,
  x: ArrayLike<number>,
  dy: ArrayLike<number>,
  h: number,
  indices: readonly number[],
): Promise<Float64Array> {
  const probe = Float64Array.from(x);
  const grad = new Float64Array(indices.length);
  for (const [k, i] of indices.entries()) {
    const x0 = probe[i];
    probe[i] = x0 + h;
    const plus = dot(await f(probe), dy);
    probe[i] = x0 - h;
    const minus = dot(await f(probe), dy);
    probe[i] = x0;
    grad[k] = (plus - minus) / (2 * h);
  }
  return grad;
}
