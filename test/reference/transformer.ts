// f64 reference forward of llama (with Llama 3.x RoPE scaling) / qwen2 / qwen3 (q/k norms) / smollm3 (NoPE layers)
// / mistral / gemma3 (sandwich norms with (1 + w), √C embeddings, two RoPE bases, GeGLU) / gpt2, written plainly (llm.c style): one function per layer, every loop visible, HF tensor names
// read straight from a name → tensor map. Used only by tests: the ONNX Runtime parity test, and the GPU model's
// end-to-end parity test.
//
// LoRA (unmerged, PEFT semantics): for a target module with A (r, in), B (out, r),
//   y = x·Wᵀ + b + scaling · (x·Aᵀ)·Bᵀ
// GPT-2's Conv1D keeps W as (in, out) (y = x·W + b); PEFT's A and B keep the same (r, in), (out, r) shapes.

import type { ModelSpec, Rope } from '../../src/engine/model/config.ts';
import { scaledInvFreqRef } from './rope.ts';

export interface RefTensor {
  shape: readonly number[];
  data: ArrayLike<number>;
}

export type RefWeights = ReadonlyMap<string, RefTensor>;

export interface RefLora {
  /** alpha / r (or alpha / √r for rsLoRA). */
  scaling: number;
  /**
   * Adapters by module path without '.weight', as PEFT names them in the base model:
   * 'model.layers.0.self_attn.q_proj', 'transformer.h.1.mlp.c_fc', ...
   */
  adapters: ReadonlyMap<string, { A: RefTensor; B: RefTensor }>;
}

export interface RefForwardOptions {
  lora?: RefLora;
  /** Name prefix of the checkpoint: default 'model.' (rope families) / 'transformer.' (gpt2). */
  prefix?: string;
}

function get(weights: RefWeights, name: string): RefTensor {
  const t = weights.get(name);
  if (!t) throw new Error(`reference: tensor '${name}' is missing`);
  return t;
}

/** out (N, out) = x (N, in) · Wᵀ with W (out, in) — torch Linear. */
export function linearRef(x: ArrayLike<number>, N: number, w: RefTensor, bias?: RefTensor): Float64Array {
  const [O, I] = w.shape;
  const out = new Float64Array(N * O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      let acc = bias ? bias.data[o] : 0;
      for (let i = 0; i < I; i++) acc += x[n * I + i] * w.data[o * I + i];
      out[n * O + o] = acc;
    }
  }
  return out;
}

/** out (N, out) = x (N, in) · W with W (in, out) — GPT-2 Conv1D. */
export function conv1dRef(x: ArrayLike<number>, N: number, w: RefTensor, bias?: RefTensor): Float64Array {
  const [I, O] = w.shape;
  const out = new Float64Array(N * O);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) out[n * O + o] = bias ? bias.data[o] : 0;
    for (let i = 0; i < I; i++) {
      const xi = x[n * I + i];
      for (let o = 0; o < O; o++) out[n * O + o] += xi * w.data[i * O + o];
    }
  }
  return out;
}

/** Adds scaling · (x·Aᵀ)·Bᵀ into out (N, out) when `module` has an adapter. */
function addLora(out: Float64Array, x: ArrayLike<number>, N: number, module: string, lora?: RefLora): void {
  const ad = lora?.adapters.get(module);
  if (!ad || !lora) return;
  const [r, I] = ad.A.shape;
  const [O, r2] = ad.B.shape;
  if (r2 !== r || out.length !== N * O) throw new Error(`reference: LoRA shapes of '${module}' do not match`);
  const u = new Float64Array(r);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < r; k++) {
      let acc = 0;
      for (let i = 0; i < I; i++) acc += x[n * I + i] * ad.A.data[k * I + i];
      u[k] = acc;
    }
    for (let o = 0; o < O; o++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += u[k] * ad.B.data[o * r + k];
      out[n * O + o] += lora.scaling * acc;
    }
  }
}

/** y = x / rms(x) · (w + offset): offset 1 for Gemma's (1 + w) weights. */
function rmsnorm(x: Float64Array, N: number, C: number, w: RefTensor, eps: number, offset = 0): Float64Array {
  const y = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[n * C + c] ** 2;
    const r = 1 / Math.sqrt(ss / C + eps);
    for (let c = 0; c < C; c++) y[n * C + c] = x[n * C + c] * r * (w.data[c] + offset);
  }
  return y;
}

function layernorm(
  x: Float64Array,
  N: number,
  C: number,
  w: RefTensor,
  b: RefTensor,
  eps: number,
): Float64Array {
  const y = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    let mean = 0;
    for (let c = 0; c < C; c++) mean += x[n * C + c];
    mean /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[n * C + c] - mean) ** 2;
    const r = 1 / Math.sqrt(v / C + eps);
    for (let c = 0; c < C; c++) y[n * C + c] = (x[n * C + c] - mean) * r * w.data[c] + b.data[c];
  }
  return y;
}

/**
 * HF rotate_half RoPE in place on x (B, T, nh, D); angles formed in float32 as HF does (inv_freq stored as f32,
 * after its scaling in f64).
 */
function rope(x: Float64Array, B: number, T: number, nh: number, D: number, { theta, scaling }: Rope): void {
  const half = D / 2;
  const invFreq = scaledInvFreqRef(D, theta, scaling).map(Math.fround);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      for (let h = 0; h < nh; h++) {
        const base = ((b * T + t) * nh + h) * D;
        for (let i = 0; i < half; i++) {
          const angle = Math.fround(t * invFreq[i]);
          const c = Math.cos(angle);
          const s = Math.sin(angle);
          const x1 = x[base + i];
          const x2 = x[base + i + half];
          x[base + i] = x1 * c - x2 * s;
          x[base + i + half] = x2 * c + x1 * s;
        }
      }
    }
  }
}

/**
 * Causal attention, q (B, T, H, D), k/v (B, T, Hkv, D) → (B, T, H, D); head h reads kv head h / (H/Hkv). With a
 * sliding window W, query t sees keys t − W < s ≤ t (transformers' sliding_window_causal_mask_function).
 */
function attention(
  q: Float64Array,
  k: Float64Array,
  v: Float64Array,
  B: number,
  T: number,
  H: number,
  Hkv: number,
  D: number,
  window: number | null = null,
  scale = 1 / Math.sqrt(D),
) {
  const out = new Float64Array(B * T * H * D);
  const group = H / Hkv;
  const p = new Float64Array(T);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const kh = Math.floor(h / group);
      for (let t = 0; t < T; t++) {
        const qo = ((b * T + t) * H + h) * D;
        const first = window === null ? 0 : Math.max(0, t - window + 1);
        let max = -Infinity;
        for (let s = first; s <= t; s++) {
          const ko = ((b * T + s) * Hkv + kh) * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += q[qo + d] * k[ko + d];
          p[s] = dot * scale;
          max = Math.max(max, p[s]);
        }
        let sum = 0;
        for (let s = first; s <= t; s++) sum += p[s] = Math.exp(p[s] - max);
        for (let s = first; s <= t; s++) {
          const vo = ((b * T + s) * Hkv + kh) * D;
          const wgt = p[s] / sum;
          for (let d = 0; d < D; d++) out[qo + d] += wgt * v[vo + d];
        }
      }
    }
  }
  return out;
}

const GELU_SCALE = Math.sqrt(2 / Math.PI);
const geluNew = (x: number) => 0.5 * x * (1 + Math.tanh(GELU_SCALE * (x + 0.044715 * x ** 3)));
const silu = (x: number) => x / (1 + Math.exp(-x));

function addInto(x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < x.length; i++) x[i] += y[i];
}

/**
 * Logits (B, T, V) of `tokens` (B, T) (row-major), in f64. `weights` holds the checkpoint's tensors by HF name.
 */
export function transformerForwardRef(
  spec: ModelSpec,
  weights: RefWeights,
  tokens: ArrayLike<number>,
  B: number,
  T: number,
  opts: RefForwardOptions = {},
): Float64Array {
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F, vocab: V } = spec;
  const N = B * T;
  const gpt2 = spec.family === 'gpt2';
  const prefix = opts.prefix ?? (gpt2 ? 'transformer.' : 'model.');
  const W = (name: string) => get(weights, name);
  const lora = opts.lora;

  // Embedding (+ learned positions for gpt2).
  const wte = W(gpt2 ? `${prefix}wte.weight` : `${prefix}embed_tokens.weight`);
  const x = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const id = tokens[n];
    if (!(id >= 0 && id < V)) throw new Error(`reference: token ${id} out of range`);
    for (let c = 0; c < C; c++) x[n * C + c] = wte.data[id * C + c];
  }
  if (gpt2) {
    const wpe = W(`${prefix}wpe.weight`);
    for (let n = 0; n < N; n++) {
      const t = n % T;
      for (let c = 0; c < C; c++) x[n * C + c] += wpe.data[t * C + c];
    }
  }

  if (spec.family === 'gemma3') return gemma3Ref(spec, x, B, T, W, prefix, lora);
  for (let l = 0; l < spec.layers; l++) {
    if (gpt2) {
      const p = `${prefix}h.${l}.`;
      const eps = spec.layerNormEps!;
      const h1 = layernorm(x, N, C, W(`${p}ln_1.weight`), W(`${p}ln_1.bias`), eps);
      const qkv = conv1dRef(h1, N, W(`${p}attn.c_attn.weight`), W(`${p}attn.c_attn.bias`));
      addLora(qkv, h1, N, `${p}attn.c_attn`, lora);
      const q = new Float64Array(N * C);
      const k = new Float64Array(N * C);
      const v = new Float64Array(N * C);
      for (let n = 0; n < N; n++) {
        for (let c = 0; c < C; c++) {
          q[n * C + c] = qkv[n * 3 * C + c];
          k[n * C + c] = qkv[n * 3 * C + C + c];
          v[n * C + c] = qkv[n * 3 * C + 2 * C + c];
        }
      }
      const att = attention(q, k, v, B, T, H, H, D);
      const o = conv1dRef(att, N, W(`${p}attn.c_proj.weight`), W(`${p}attn.c_proj.bias`));
      addLora(o, att, N, `${p}attn.c_proj`, lora);
      addInto(x, o);
      const h2 = layernorm(x, N, C, W(`${p}ln_2.weight`), W(`${p}ln_2.bias`), eps);
      const fc = conv1dRef(h2, N, W(`${p}mlp.c_fc.weight`), W(`${p}mlp.c_fc.bias`));
      addLora(fc, h2, N, `${p}mlp.c_fc`, lora);
      for (let i = 0; i < fc.length; i++) fc[i] = geluNew(fc[i]);
      const proj = conv1dRef(fc, N, W(`${p}mlp.c_proj.weight`), W(`${p}mlp.c_proj.bias`));
      addLora(proj, fc, N, `${p}mlp.c_proj`, lora);
      addInto(x, proj);
      continue;
    }
    const p = `${prefix}layers.${l}.`;
    const eps = spec.rmsNormEps!;
    const bias = (m: string) => (spec.qkvBias ? W(`${p}self_attn.${m}.bias`) : undefined);
    const lin = (m: string, input: Float64Array, b?: RefTensor) => {
      const y = linearRef(input, N, W(`${p}${m}.weight`), b);
      addLora(y, input, N, `${p}${m}`, lora);
      return y;
    };
    const h1 = rmsnorm(x, N, C, W(`${p}input_layernorm.weight`), eps);
    let q = lin('self_attn.q_proj', h1, bias('q_proj'));
    let k = lin('self_attn.k_proj', h1, bias('k_proj'));
    const v = lin('self_attn.v_proj', h1, bias('v_proj'));
    if (spec.qkNorm) {
      // Qwen3: RMSNorm over each head's D values (rows of D), weights (D), before RoPE.
      q = rmsnorm(q, N * H, D, W(`${p}self_attn.q_norm.weight`), eps);
      k = rmsnorm(k, N * Hkv, D, W(`${p}self_attn.k_norm.weight`), eps);
    }
    if (!spec.noRopeLayers.includes(l)) {
      // SmolLM3's NoPE layers skip this.
      const r = { theta: spec.ropeTheta!, scaling: spec.ropeScaling };
      rope(q, B, T, H, D, r);
      rope(k, B, T, Hkv, D, r);
    }
    const att = attention(q, k, v, B, T, H, Hkv, D, spec.layerWindows?.[l] ?? null);
    addInto(x, lin('self_attn.o_proj', att, spec.oBias ? W(`${p}self_attn.o_proj.bias`) : undefined));
    const h2 = rmsnorm(x, N, C, W(`${p}post_attention_layernorm.weight`), eps);
    const gate = lin('mlp.gate_proj', h2);
    const up = lin('mlp.up_proj', h2);
    const act = new Float64Array(N * F);
    for (let i = 0; i < act.length; i++) act[i] = silu(gate[i]) * up[i];
    addInto(x, lin('mlp.down_proj', act));
  }

  const hf = gpt2
    ? layernorm(x, N, C, W(`${prefix}ln_f.weight`), W(`${prefix}ln_f.bias`), spec.layerNormEps!)
    : rmsnorm(x, N, C, W(`${prefix}norm.weight`), spec.rmsNormEps!);
  const head = spec.tieWordEmbeddings ? wte : W('lm_head.weight');
  return linearRef(hf, N, head);
}

/**
 * Gemma 3's blocks, final norm and head from the embedded tokens x (N, C) (before the √C scale): every norm
 * rmsnorm · (1 + w); x2 = x + norm(attention branch), x' = x2 + norm(MLP branch); q/k norms before RoPE, whose base
 * is the layer kind's; scores · query_pre_attn_scalar^−½; GeGLU.
 */
function gemma3Ref(
  spec: ModelSpec,
  x: Float64Array,
  B: number,
  T: number,
  W: (name: string) => RefTensor,
  prefix: string,
  lora?: RefLora,
): Float64Array {
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F } = spec;
  const N = B * T;
  const eps = spec.rmsNormEps!;
  const norm = (input: Float64Array, name: string, rows = N, width = C) =>
    rmsnorm(input, rows, width, W(name), eps, 1);
  // Gemma3TextScaledWordEmbedding: embed_scale (an f32 buffer) cast to the weights' type; f32 here.
  const embedScale = Math.fround(Math.sqrt(C));
  for (let i = 0; i < x.length; i++) x[i] *= embedScale;
  for (let l = 0; l < spec.layers; l++) {
    const p = `${prefix}layers.${l}.`;
    const lin = (m: string, input: Float64Array) => {
      const y = linearRef(input, N, W(`${p}${m}.weight`));
      addLora(y, input, N, `${p}${m}`, lora);
      return y;
    };
    const window = spec.layerWindows?.[l] ?? null;
    const r = window === null ? { theta: spec.ropeTheta!, scaling: spec.ropeScaling } : spec.slidingRope!;
    const h1 = norm(x, `${p}input_layernorm.weight`);
    // qkNorm false only to show that the norms matter (no Gemma 3 checkpoint lacks them).
    const headNorm = (y: Float64Array, name: string, heads: number) =>
      spec.qkNorm ? norm(y, `${p}self_attn.${name}.weight`, N * heads, D) : y;
    const q = headNorm(lin('self_attn.q_proj', h1), 'q_norm', H);
    const k = headNorm(lin('self_attn.k_proj', h1), 'k_norm', Hkv);
    const v = lin('self_attn.v_proj', h1);
    rope(q, B, T, H, D, r);
    rope(k, B, T, Hkv, D, r);
    const att = attention(q, k, v, B, T, H, Hkv, D, window, spec.attentionScale);
    addInto(x, norm(lin('self_attn.o_proj', att), `${p}post_attention_layernorm.weight`));
    const h2 = norm(x, `${p}pre_feedforward_layernorm.weight`);
    const gate = lin('mlp.gate_proj', h2);
    const up = lin('mlp.up_proj', h2);
    const act = new Float64Array(N * F);
    for (let i = 0; i < act.length; i++) act[i] = geluNew(gate[i]) * up[i];
    addInto(x, norm(lin('mlp.down_proj', act), `${p}post_feedforward_layernorm.weight`));
  }
  const hf = norm(x, `${prefix}norm.weight`);
  return linearRef(hf, N, spec.tieWordEmbeddings ? W(`${prefix}embed_tokens.weight`) : W('lm_head.weight'));
}

/** Mean next-token cross-entropy of logits (N, V) against targets (N) (negative targets are ignored). */
export function crossEntropyRef(logits: Float64Array, targets: ArrayLike<number>, V: number): number {
  let sum = 0;
  let count = 0;
  for (let n = 0; n < targets.length; n++) {
    if (targets[n] < 0) continue;
    let max = -Infinity;
    for (let v = 0; v < V; v++) max = Math.max(max, logits[n * V + v]);
    let z = 0;
    for (let v = 0; v < V; v++) z += Math.exp(logits[n * V + v] - max);
    sum += Math.log(z) + max - logits[n * V + targets[n]];
    count++;
  }
  return sum / Math.max(count, 1);
}
