// Dense symmetric-positive-definite helpers for the GP. Matrices are row-major Float64Array (n × n).

/** Lower Cholesky factor L (A = L·Lᵀ) of `a`; returns null when A is not numerically positive definite. */
export function cholesky(a: Float64Array, n: number): Float64Array | null {
  const l = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let j = 0; j <= i; j++) {
      const rj = j * n;
      let s = a[ri + j];
      for (let k = 0; k < j; k++) s -= l[ri + k] * l[rj + k];
      if (i === j) {
        if (!(s > 0)) return null;
        l[ri + i] = Math.sqrt(s);
      } else {
        l[ri + j] = s / l[rj + j];
      }
    }
  }
  return l;
}

/** Solve L·x = b in place (L lower triangular). */
export function solveLower(l: Float64Array, n: number, b: Float64Array): Float64Array {
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    let s = b[i];
    for (let k = 0; k < i; k++) s -= l[ri + k] * b[k];
    b[i] = s / l[ri + i];
  }
  return b;
}

/** Solve Lᵀ·x = b in place. */
export function solveUpper(l: Float64Array, n: number, b: Float64Array): Float64Array {
  for (let i = n - 1; i >= 0; i--) {
    let s = b[i];
    for (let k = i + 1; k < n; k++) s -= l[k * n + i] * b[k];
    b[i] = s / l[i * n + i];
  }
  return b;
}

/** A⁻¹ from its Cholesky factor: rows of L⁻¹ by forward substitution, then L⁻ᵀ·L⁻¹; all loops run along rows. */
export function choleskyInverse(l: Float64Array, n: number): Float64Array {
  // Row i of L⁻¹ (lower triangular): (e_i − Σ_{k<i} L[i][k]·row_k) / L[i][i].
  const linv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    for (let k = 0; k < i; k++) {
      const c = l[ri + k];
      if (c === 0) continue;
      const rk = k * n;
      for (let j = 0; j <= k; j++) linv[ri + j] -= c * linv[rk + j];
    }
    linv[ri + i] += 1;
    const d = 1 / l[ri + i];
    for (let j = 0; j <= i; j++) linv[ri + j] *= d;
  }
  // (L⁻ᵀ·L⁻¹)[i][j] = Σ_{k ≥ max(i,j)} L⁻¹[k][i]·L⁻¹[k][j]: accumulate row k's outer product, lower half.
  const inv = new Float64Array(n * n);
  for (let k = 0; k < n; k++) {
    const rk = k * n;
    for (let i = 0; i <= k; i++) {
      const c = linv[rk + i];
      if (c === 0) continue;
      const ri = i * n;
      for (let j = 0; j <= i; j++) inv[ri + j] += c * linv[rk + j];
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) inv[j * n + i] = inv[i * n + j];
  return inv;
}
