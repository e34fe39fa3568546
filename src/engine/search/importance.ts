// Hyperparameter importance by fANOVA (Hutter et al. 2014, as Optuna's FanovaImportanceEvaluator): fit a
// small random forest of regression trees on (params → objective), then for each tree measure how much of
// the variance of its prediction over the whole space is explained by each single parameter's marginal.
// Every parameter is one feature in [0,1]: numeric ones in (log-)unit space, a categorical as equal-width
// bins per choice, so the uniform measure on [0,1] is the uniform prior of the space.
import { Rng } from '../rng.ts';
import { toUnit } from './space.ts';
import type { SampledDef, SearchSpace } from './space.ts';
import type { TrialRecord } from './types.ts';

export interface ImportanceOptions {
  /** Parameters to evaluate; default: every sampled parameter present in all complete trials. */
  params?: string[];
  nTrees?: number;
  maxDepth?: number;
  minSamplesLeaf?: number;
  seed?: number;
}

type Node =
  | { leaf: true; value: number }
  | { leaf: false; feature: number; threshold: number; left: Node; right: Node };

function buildTree(
  x: Float64Array[],
  y: Float64Array,
  rows: number[],
  depth: number,
  opts: { maxDepth: number; minLeaf: number },
): Node {
  let mean = 0;
  for (const r of rows) mean += y[r];
  mean /= rows.length;
  if (depth >= opts.maxDepth || rows.length < 2 * opts.minLeaf) return { leaf: true, value: mean };
  let best = { gain: 1e-12, feature: -1, threshold: 0 };
  let sse = 0;
  for (const r of rows) sse += (y[r] - mean) ** 2;
  const features = x[0].length;
  for (let f = 0; f < features; f++) {
    const sorted = rows.slice().sort((a, b) => x[a][f] - x[b][f]);
    let sumL = 0;
    let sqL = 0;
    let sumAll = 0;
    let sqAll = 0;
    for (const r of sorted) {
      sumAll += y[r];
      sqAll += y[r] * y[r];
    }
    for (let i = 0; i < sorted.length - 1; i++) {
      const r = sorted[i];
      sumL += y[r];
      sqL += y[r] * y[r];
      const nL = i + 1;
      const nR = sorted.length - nL;
      if (nL < opts.minLeaf || nR < opts.minLeaf) continue;
      const a = x[r][f];
      const b = x[sorted[i + 1]][f];
      if (a === b) continue;
      const sseL = sqL - (sumL * sumL) / nL;
      const sumR = sumAll - sumL;
      const sseR = sqAll - sqL - (sumR * sumR) / nR;
      const gain = sse - sseL - sseR;
      if (gain > best.gain) best = { gain, feature: f, threshold: 0.5 * (a + b) };
    }
  }
  if (best.feature < 0) return { leaf: true, value: mean };
  const left = rows.filter((r) => x[r][best.feature] <= best.threshold);
  const right = rows.filter((r) => x[r][best.feature] > best.threshold);
  return {
    leaf: false,
    feature: best.feature,
    threshold: best.threshold,
    left: buildTree(x, y, left, depth + 1, opts),
    right: buildTree(x, y, right, depth + 1, opts),
  };
}

type Leaf = { value: number; lo: Float64Array; hi: Float64Array };

function leaves(node: Node, lo: Float64Array, hi: Float64Array, out: Leaf[]): void {
  if (node.leaf) {
    out.push({ value: node.value, lo: Float64Array.from(lo), hi: Float64Array.from(hi) });
    return;
  }
  const f = node.feature;
  const oldHi = hi[f];
  hi[f] = Math.min(oldHi, node.threshold);
  leaves(node.left, lo, hi, out);
  hi[f] = oldHi;
  const oldLo = lo[f];
  lo[f] = Math.max(oldLo, node.threshold);
  leaves(node.right, lo, hi, out);
  lo[f] = oldLo;
}

/** Fraction of the tree's variance over [0,1]^F explained by each single feature's marginal. */
function treeFractions(tree: Node, features: number): Float64Array | null {
  const ls: Leaf[] = [];
  leaves(tree, new Float64Array(features), new Float64Array(features).fill(1), ls);
  const vols = ls.map((l) => l.hi.reduce((p, h, f) => p * (h - l.lo[f]), 1));
  let mean = 0;
  ls.forEach((l, i) => (mean += l.value * vols[i]));
  let total = 0;
  ls.forEach((l, i) => (total += vols[i] * (l.value - mean) ** 2));
  const out = new Float64Array(features);
  if (!(total > 1e-300)) return null;
  for (let f = 0; f < features; f++) {
    const cuts = new Set<number>([0, 1]);
    for (const l of ls) {
      cuts.add(l.lo[f]);
      cuts.add(l.hi[f]);
    }
    const pts = [...cuts].sort((a, b) => a - b);
    let v = 0;
    for (let s = 0; s + 1 < pts.length; s++) {
      const m = 0.5 * (pts[s] + pts[s + 1]);
      let marginal = 0;
      ls.forEach((l, i) => {
        if (m > l.lo[f] && m < l.hi[f]) marginal += (l.value * vols[i]) / (l.hi[f] - l.lo[f]);
      });
      v += (pts[s + 1] - pts[s]) * (marginal - mean) ** 2;
    }
    out[f] = v / total;
  }
  return out;
}

function featureValue(def: SampledDef, v: unknown): number {
  if (def.kind === 'categorical') return (def.choices.indexOf(v as never) + 0.5) / def.choices.length;
  return Math.min(1, Math.max(0, toUnit(def, v as number)));
}

/**
 * Normalised importances (summing to 1) of the parameters, from the complete trials. Returns all zeros
 * when the objective does not vary, and throws with fewer than two complete trials.
 */
export function parameterImportance(
  space: SearchSpace,
  trials: readonly TrialRecord[],
  options: ImportanceOptions = {},
): Record<string, number> {
  const complete = trials.filter((t) => t.state === 'complete' && Number.isFinite(t.value));
  if (complete.length < 2) throw new Error('parameterImportance: need at least two complete trials');
  let defs = space.sampled.filter((d) => complete.every((t) => t.params[d.name] !== undefined));
  if (options.params) {
    for (const p of options.params)
      if (!space.sampled.some((d) => d.name === p))
        throw new Error(`parameterImportance: params: unknown parameter '${p}'`);
    defs = defs.filter((d) => options.params?.includes(d.name));
  }
  const nTrees = options.nTrees ?? 64;
  const maxDepth = options.maxDepth ?? 12;
  const minLeaf = options.minSamplesLeaf ?? 1;
  const rng = new Rng(options.seed ?? 0, 'importance');
  const x = complete.map((t) => Float64Array.from(defs, (d) => featureValue(d, t.params[d.name])));
  const y = Float64Array.from(complete, (t) => t.value as number);
  const sum = new Float64Array(defs.length);
  let used = 0;
  for (let t = 0; t < nTrees; t++) {
    const rows = Array.from({ length: complete.length }, () => rng.int(complete.length));
    const tree = buildTree(x, y, rows, 0, { maxDepth, minLeaf });
    const fr = treeFractions(tree, defs.length);
    if (!fr) continue;
    fr.forEach((v, i) => (sum[i] += v));
    used++;
  }
  const total = sum.reduce((a, b) => a + b, 0);
  const out: Record<string, number> = {};
  defs.forEach((d, i) => (out[d.name] = used > 0 && total > 0 ? sum[i] / total : 0));
  return out;
}
