// Limited-memory BFGS with a backtracking Armijo line search, for smooth unconstrained problems of a few
// dozen variables (the GP's log hyperparameters).

export type ValueAndGradient = (x: Float64Array, grad: Float64Array) => number;

export interface LbfgsOptions {
  maxIterations: number;
  /** Stop when the gradient's max-norm falls below this. */
  gradTolerance?: number;
  /** Length of the first (steepest-descent) step, before any curvature is known. Default 1. */
  initialStep?: number;
  /** Stop when an iteration lowers f by less than this. Default 0. */
  valueTolerance?: number;
  memory?: number;
}

export interface LbfgsResult {
  x: Float64Array;
  value: number;
  iterations: number;
  evaluations: number;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

export function minimizeLbfgs(f: ValueAndGradient, x0: Float64Array, options: LbfgsOptions): LbfgsResult {
  const n = x0.length;
  const m = options.memory ?? 6;
  const gtol = options.gradTolerance ?? 1e-5;
  const ftol = options.valueTolerance ?? 0;
  let x = Float64Array.from(x0);
  let g = new Float64Array(n);
  let fx = f(x, g);
  let evaluations = 1;
  if (!Number.isFinite(fx)) return { x, value: fx, iterations: 0, evaluations };
  const sList: Float64Array[] = [];
  const yList: Float64Array[] = [];
  const rho: number[] = [];
  const d = new Float64Array(n);
  const alpha = new Float64Array(m);
  let iter = 0;
  for (; iter < options.maxIterations; iter++) {
    let gmax = 0;
    for (let i = 0; i < n; i++) gmax = Math.max(gmax, Math.abs(g[i]));
    if (gmax < gtol) break;
    // Two-loop recursion: d = −H·g.
    for (let i = 0; i < n; i++) d[i] = -g[i];
    for (let k = sList.length - 1; k >= 0; k--) {
      alpha[k] = rho[k] * dot(sList[k], d);
      for (let i = 0; i < n; i++) d[i] -= alpha[k] * yList[k][i];
    }
    if (sList.length > 0) {
      const last = sList.length - 1;
      const gamma = dot(sList[last], yList[last]) / dot(yList[last], yList[last]);
      for (let i = 0; i < n; i++) d[i] *= gamma;
    } else {
      // First step: a move of length initialStep (at most) along the steepest descent.
      const norm = Math.sqrt(dot(d, d));
      const scale = (options.initialStep ?? 1) / Math.max(norm, 1e-300);
      if (scale < 1) for (let i = 0; i < n; i++) d[i] *= scale;
    }
    for (let k = 0; k < sList.length; k++) {
      const beta = rho[k] * dot(yList[k], d);
      for (let i = 0; i < n; i++) d[i] += sList[k][i] * (alpha[k] - beta);
    }
    let slope = dot(g, d);
    if (!(slope < 0)) {
      // Not a descent direction: reset memory and use steepest descent.
      sList.length = yList.length = rho.length = 0;
      for (let i = 0; i < n; i++) d[i] = -g[i];
      slope = dot(g, d);
    }
    let step = 1;
    const xNew = new Float64Array(n);
    const gNew = new Float64Array(n);
    let fNew = Infinity;
    let accepted = false;
    for (let ls = 0; ls < 20; ls++) {
      for (let i = 0; i < n; i++) xNew[i] = x[i] + step * d[i];
      fNew = f(xNew, gNew);
      evaluations++;
      if (Number.isFinite(fNew) && fNew <= fx + 1e-4 * step * slope) {
        accepted = true;
        break;
      }
      step *= 0.5;
    }
    if (!accepted) break;
    const s = new Float64Array(n);
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      s[i] = xNew[i] - x[i];
      y[i] = gNew[i] - g[i];
    }
    const sy = dot(s, y);
    if (sy > 1e-12) {
      if (sList.length === m) {
        sList.shift();
        yList.shift();
        rho.shift();
      }
      sList.push(s);
      yList.push(y);
      rho.push(1 / sy);
    }
    const improvement = fx - fNew;
    x = xNew;
    g = gNew;
    fx = fNew;
    if (improvement <= Math.max(ftol, 1e-12 * Math.abs(fx))) break;
  }
  return { x, value: fx, iterations: iter, evaluations };
}
