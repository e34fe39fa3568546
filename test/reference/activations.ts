// f64 references for SwiGLU, tanh-approximated GELU (GPT-2's gelu_new) and GeGLU (Gemma: gelu_tanh(gate)·up).

const sigmoid = (g: number) => 1 / (1 + Math.exp(-g));

export function swigluRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  return Float64Array.from(gate, (g, i) => g * sigmoid(g) * up[i]);
}

export function swigluBackwardRef(dy: ArrayLike<number>, gate: ArrayLike<number>, up: ArrayLike<number>) {
  const dgate = Float64Array.from(gate, (g, i) => {
    const s = sigmoid(g);
    return dy[i] * up[i] * s * (1 + g * (1 - s));
  });
  const dup = Float64Array.from(gate, (g, i) => dy[i] * g * sigmoid(g));
  return { dgate, dup };
}

const GELU_SCALE = Math.sqrt(2 / Math.PI);

export function geluRef(x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v) => 0.5 * v * (1 + Math.tanh(GELU_SCALE * (v + 0.044715 * v ** 3))));
}

export function geluBackwardRef(dy: ArrayLike<number>, x: ArrayLike<number>): Float64Array {
  return Float64Array.from(x, (v, i) => {
    const t = Math.tanh(GELU_SCALE * (v + 0.044715 * v ** 3));
    return dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * GELU_SCALE * (1 + 3 * 0.044715 * v * v));
  });
}

export function gegluRef(gate: ArrayLike<number>, up: ArrayLike<number>): Float64Array {
  const g = geluRef(gate);
  return g.map((v, i) => v * up[i]);
}

export function gegluBackwardRef(dy: ArrayLike<number>, gate: ArrayLike<number>, up: ArrayLike<number>) {
  const dgate = geluBackwardRef(
    Float64Array.from(dy, (d, i) => d * up[i]),
    gate,
  );
  const dup = geluRef(gate).map((g, i) => dy[i] * g);
  return { dgate, dup };
}
