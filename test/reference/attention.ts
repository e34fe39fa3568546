// f64 reference for causal grouped-query attention, same layouts as src/engine/kernels/attention.ts:
// q, out (B, T, H, D); k, v (B, L, Hkv, D) with L = kvLength (cache capacity = L here); lse (B, H, T).
// Query t sits at position i = L − T + t and sees keys s ≤ i; with a sliding window W only i − W < s ≤ i (the
// last W keys, as Hugging Face's sliding_window_causal_mask_function: kv_idx > q_idx − W).
import { ropeRef } from './rope.ts';

export interface AttentionRefDims {
  batch: number;
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  /** Keys per sequence; default seq. */
  kvLength?: number;
  /** Sliding window: keys each query sees; default all earlier keys. */
  window?: number;
  /** Factor of the scores; default 1/√D. */
  scale?: number;
}

export interface AttentionRefForward {
  out: Float64Array;
  lse: Float64Array;
}

export interface AttentionRefGrads {
  dq: Float64Array;
  dk: Float64Array;
  dv: Float64Array;
}

function shape(d: AttentionRefDims) {
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = d;
  const L = d.kvLength ?? T;
  return {
    B,
    T,
    H,
    Hkv,
    D,
    L,
    group: H / Hkv,
    window: d.window ?? Infinity,
    scale: d.scale ?? 1 / Math.sqrt(D),
    qAt: (b: number, t: number, h: number) => ((b * T + t) * H + h) * D,
    kAt: (b: number, s: number, g: number) => ((b * L + s) * Hkv + g) * D,
  };
}

/** Probabilities of one score row (keys first..last; 0 before first) and its logsumexp. */
function softmaxRow(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  qi: number,
  kRow: (s: number) => number,
  [first, last]: [number, number],
  D: number,
  scale: number,
): { probs: Float64Array; lse: number } {
  const scores = new Float64Array(last + 1);
  let max = -Infinity;
  for (let s = first; s <= last; s++) {
    let dot = 0;
    const ki = kRow(s);
    for (let d = 0; d < D; d++) dot += q[qi + d] * k[ki + d];
    scores[s] = dot * scale;
    max = Math.max(max, scores[s]);
  }
  let sum = 0;
  for (let s = first; s <= last; s++) sum += Math.exp(scores[s] - max);
  const lse = max + Math.log(sum);
  for (let s = first; s <= last; s++) scores[s] = Math.exp(scores[s] - lse);
  return { probs: scores, lse };
}

/** The keys [first, last] a query at position `last` sees through a window (Infinity: all of them). */
function visibleKeys(last: number, window: number): [number, number] {
  return [Math.max(0, last - window + 1), last];
}

export function attentionForwardRef(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: AttentionRefDims,
): AttentionRefForward {
  const { B, T, H, D, L, group, window, scale, qAt, kAt } = shape(dims);
  const out = new Float64Array(B * T * H * D);
  const lse = new Float64Array(B * H * T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const last = L - T + t;
        const keys = visibleKeys(last, window);
        const row = softmaxRow(q, k, qAt(b, t, h), (s) => kAt(b, s, g), keys, D, scale);
        lse[(b * H + h) * T + t] = row.lse;
        const oi = qAt(b, t, h);
        for (let s = keys[0]; s <= last; s++) {
          const vi = kAt(b, s, g);
          for (let d = 0; d < D; d++) out[oi + d] += row.probs[s] * v[vi + d];
        }
      }
    }
  }
  return { out, lse };
}

/** Gradients of L = Σ dout ∘ out with respect to q, k, v (training layout: kvLength = seq). */
export function attentionBackwardRef(
  dout: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: AttentionRefDims,
): AttentionRefGrads {
  const { B, T, H, Hkv, D, group, window, scale, qAt, kAt } = shape({ ...dims, kvLength: dims.seq });
  const dq = new Float64Array(B * T * H * D);
  const dk = new Float64Array(B * T * Hkv * D);
  const dv = new Float64Array(B * T * Hkv * D);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qi = qAt(b, t, h);
        const keys = visibleKeys(t, window);
        const { probs } = softmaxRow(q, k, qi, (s) => kAt(b, s, g), keys, D, scale);
        // dP[s] = dout·v[s]; dS = P ∘ (dP − Σ P·dP); the softmax Jacobian, written out.
        const dp = new Float64Array(t + 1);
        let rowDot = 0;
        for (let s = keys[0]; s <= t; s++) {
          const vi = kAt(b, s, g);
          for (let d = 0; d < D; d++) dp[s] += dout[qi + d] * v[vi + d];
          rowDot += probs[s] * dp[s];
        }
        for (let s = keys[0]; s <= t; s++) {
          const ki = kAt(b, s, g);
          const ds = probs[s] * (dp[s] - rowDot) * scale;
          for (let d = 0; d < D; d++) {
            dv[ki + d] += probs[s] * dout[qi + d];
            dq[qi + d] += ds * k[ki + d];
            dk[ki + d] += ds * q[qi + d];
          }
        }
      }
    }
  }
  return { dq, dk, dv };
}

/**
 * Attention with RoPE applied to q and k first (query t at position offset + L − T + t, key s at offset + s),
 * and, for the gradients, dq and dk rotated back: what the fused-RoPE kernels compute, from the references.
 */
export function attentionRopeRef(
  x: { q: ArrayLike<number>; k: ArrayLike<number>; v: ArrayLike<number>; dout?: ArrayLike<number> },
  dims: AttentionRefDims,
  theta: number,
  offset = 0,
): AttentionRefForward & Partial<AttentionRefGrads> {
  const { batch: B, seq: T, heads: H, kvHeads: Hkv, headDim: D } = dims;
  const L = dims.kvLength ?? T;
  const qDims = { B, T, H, D };
  const kDims = { B, T: L, H: Hkv, D };
  const q = ropeRef(x.q, qDims, theta, offset + L - T);
  const k = ropeRef(x.k, kDims, theta, offset);
  const forward = attentionForwardRef(q, k, x.v, dims);
  if (!x.dout) return forward;
  const grads = attentionBackwardRef(x.dout, q, k, x.v, dims);
  return {
    ...forward,
    dq: ropeRef(grads.dq, qDims, theta, offset, -1),
    dk: ropeRef(grads.dk, kDims, theta, offset, -1),
    dv: grads.dv,
  };
}
