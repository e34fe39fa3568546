// f64 reference implementations used only by tests.

/** C[b] = alpha·op(A[b])·op(B[b]) + beta·C[b] with the same layouts as the matmul kernel. */
export function matmulRef(
  a: ArrayLike<number>,
  b: ArrayLike<number>,
  dims: { M: number; N: number; K: number; batch?: number },
  options: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number; c?: ArrayLike<number> } = {},
): Float64Array {
  const { M, N, K, batch = 1 } = dims;
  const { transA = false, transB = false, alpha = 1, beta = 0 } = options;
  const out = new Float64Array(batch * M * N);
  for (let bi = 0; bi < batch; bi++) {
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let k = 0; k < K; k++) {
          const av = a[bi * M * K + (transA ? k * M + m : m * K + k)];
          const bv = b[bi * K * N + (transB ? n * K + k : k * N + n)];
          sum += av * bv;
        }
        const at = bi * M * N + m * N + n;
        out[at] = alpha * sum + (beta !== 0 ? beta * options.c![at] : 0);
      }
    }
  }
  return out;
}

export function sumRef(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i];
  return s;
}

export function maxAbsRef(x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i]));
  return m;
}
