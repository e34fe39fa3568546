// Normal-distribution helpers and the numerically stable log expected improvement (Ament et al. 2023,
// "Unexpected Improvements to Expected Improvement"), the acquisition Optuna's GPSampler maximises.

const SQRT1_2 = Math.SQRT1_2;
const LOG_SQRT_2PI = 0.5 * Math.log(2 * Math.PI);
const SQRT_PI_2 = Math.sqrt(Math.PI / 2);

/** exp(x²)·erfc(x). Chebyshev fit (Numerical Recipes' erfcc), relative error < 1.2e-7, smooth in x. */
export function erfcx(x: number): number {
  if (x < 0) return 2 * Math.exp(x * x) - erfcx(-x);
  const t = 1 / (1 + 0.5 * x);
  return (
    t *
    Math.exp(
      -1.26551223 +
        t *
          (1.00002368 +
            t *
              (0.37409196 +
                t *
                  (0.09678418 +
                    t *
                      (-0.18628806 +
                        t *
                          (0.27886807 +
                            t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    )
  );
}

export function erfc(x: number): number {
  return x >= 0 ? Math.exp(-x * x) * erfcx(x) : 2 - Math.exp(-x * x) * erfcx(-x);
}

export function normPdf(z: number): number {
  return Math.exp(-0.5 * z * z - LOG_SQRT_2PI);
}

export function normCdf(z: number): number {
  return 0.5 * erfc(-z * SQRT1_2);
}

/** log Φ(z), accurate far into the lower tail. */
export function logNormCdf(z: number): number {
  if (z < -3) return Math.log(0.5 * erfcx(-z * SQRT1_2)) - 0.5 * z * z;
  return Math.log(normCdf(z));
}

/** log(Φ(b) − Φ(a)) for a < b, stable in both tails. */
export function logNormCdfDiff(a: number, b: number): number {
  if (a > 0) return logNormCdfDiff(-b, -a);
  const la = logNormCdf(a);
  const lb = logNormCdf(b);
  const d = la - lb;
  return d >= 0 ? -Infinity : lb + Math.log1p(-Math.exp(d));
}

/** log h(z) with h(z) = φ(z) + zΦ(z) = E[max(0, z + N(0,1))]; EI = σ·h((f* − μ)/σ). */
export function logH(z: number): number {
  if (z > -1) return Math.log(normPdf(z) + z * normCdf(z));
  const half = -0.5 * z * z - LOG_SQRT_2PI;
  if (z > -20) {
    // h = φ(z)·(1 + z·Φ(z)/φ(z)) and Φ/φ = √(π/2)·erfcx(−z/√2): no underflow.
    return half + Math.log1p(z * SQRT_PI_2 * erfcx(-z * SQRT1_2));
  }
  // Asymptotic series h(z) ≈ φ(z)/z² · (1 − 3/z² + 15/z⁴ − 105/z⁶).
  const w = 1 / (z * z);
  return half + Math.log(w) + Math.log1p(w * (-3 + w * (15 - 105 * w)));
}

/** d log h / dz = Φ(z)/h(z). */
export function dLogH(z: number, logh: number): number {
  return Math.exp(logNormCdf(z) - logh);
}

export function logSumExp(values: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i] > m) m = values[i];
  if (m === -Infinity) return -Infinity;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += Math.exp(values[i] - m);
  return m + Math.log(s);
}
