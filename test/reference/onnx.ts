// A minimal ONNX writer (hand-encoded protobuf: ModelProto, GraphProto, NodeProto, TensorProto,
// ValueInfoProto, AttributeProto; opset 17) and an exporter of the tiny test models, so ONNX Runtime can
// serve as a reference independent of ours: its MatMul, Softmax and friends, fed the same weights.
// Field numbers are those of onnx/onnx.proto. Float32 graph, static shapes (B, T fixed at export).

import type { ModelSpec } from '../../src/engine/model/config.ts';
import type { RefLora, RefTensor, RefWeights } from './transformer.ts';
import { scaledInvFreqRef } from './rope.ts';

// ───────────────────────────── protobuf ─────────────────────────────

const enc = new TextEncoder();

/** A protobuf message under construction (proto2 wire format; repeated scalars unpacked). */
export class Pb {
  readonly #parts: number[] = [];
  readonly #chunks: Uint8Array[] = [];

  #flush(): void {
    if (this.#parts.length) this.#chunks.push(Uint8Array.from(this.#parts.splice(0)));
  }

  #varintRaw(v: bigint): void {
    let x = BigInt.asUintN(64, v);
    while (x >= 0x80n) {
      this.#parts.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.#parts.push(Number(x));
  }

  #key(field: number, wire: number): void {
    this.#varintRaw(BigInt((field << 3) | wire));
  }

  varint(field: number, v: number | bigint): this {
    this.#key(field, 0);
    this.#varintRaw(BigInt(v));
    return this;
  }

  float(field: number, v: number): this {
    this.#key(field, 5);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    this.#parts.push(...b);
    return this;
  }

  bytes(field: number, data: Uint8Array): this {
    this.#key(field, 2);
    this.#varintRaw(BigInt(data.byteLength));
    this.#flush();
    this.#chunks.push(data);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, enc.encode(s));
  }

  message(field: number, m: Pb): this {
    return this.bytes(field, m.finish());
  }

  finish(): Uint8Array {
    this.#flush();
    const n = this.#chunks.reduce((s, c) => s + c.byteLength, 0);
    const out = new Uint8Array(n);
    let at = 0;
    for (const c of this.#chunks) {
      out.set(c, at);
      at += c.byteLength;
    }
    return out;
  }
}

const DT_FLOAT = 1;
const DT_INT64 = 7;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

export type AttrValue = number | number[] | { float: number };

function attribute(name: string, v: AttrValue): Pb {
  const a = new Pb().string(1, name);
  if (Array.isArray(v)) {
    for (const i of v) a.varint(8, i);
    return a.varint(20, ATTR_INTS);
  }
  if (typeof v === 'object') return a.float(2, v.float).varint(20, ATTR_FLOAT);
  return a.varint(3, v).varint(20, ATTR_INT);
}

function valueInfo(name: string, elemType: number, dims: number[]): Pb {
  const shape = new Pb();
  for (const d of dims) shape.message(1, new Pb().varint(1, d));
  const tensorType = new Pb().varint(1, elemType).message(2, shape);
  return new Pb().string(1, name).message(2, new Pb().message(1, tensorType));
}

/** A graph built node by node; every value gets a fresh name. */
export class OnnxGraph {
  readonly #nodes: Pb[] = [];
  readonly #inits: Pb[] = [];
  readonly #inputs: Pb[] = [];
  readonly #outputs: Pb[] = [];
  #counter = 0;

  fresh(hint: string): string {
    return `${hint}_${this.#counter++}`;
  }

  input(name: string, elemType: 'float' | 'int64', dims: number[]): string {
    this.#inputs.push(valueInfo(name, elemType === 'float' ? DT_FLOAT : DT_INT64, dims));
    return name;
  }

  output(name: string, dims: number[]): void {
    this.#outputs.push(valueInfo(name, DT_FLOAT, dims));
  }

  /** A float32 initializer. */
  floats(hint: string, dims: number[], data: ArrayLike<number>): string {
    const name = this.fresh(hint);
    const raw = new Uint8Array(Float32Array.from(data).buffer);
    this.#inits.push(this.#tensor(name, DT_FLOAT, dims, raw));
    return name;
  }

  /** An int64 initializer. */
  ints(hint: string, values: number[], dims = [values.length]): string {
    const name = this.fresh(hint);
    const raw = new Uint8Array(BigInt64Array.from(values, (v) => BigInt(v)).buffer);
    this.#inits.push(this.#tensor(name, DT_INT64, dims, raw));
    return name;
  }

  scalar(v: number): string {
    return this.floats('c', [], [v]);
  }

  #tensor(name: string, type: number, dims: number[], raw: Uint8Array): Pb {
    const t = new Pb();
    for (const d of dims) t.varint(1, d);
    return t.varint(2, type).string(8, name).bytes(9, raw);
  }

  /** Adds a node and returns its (single) output name. */
  op(type: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    const out = output ?? this.fresh(type.toLowerCase());
    const n = new Pb();
    for (const i of inputs) n.string(1, i);
    n.string(2, out)
      .string(3, this.fresh(`n_${type}`))
      .string(4, type);
    for (const [k, v] of Object.entries(attrs)) n.message(5, attribute(k, v));
    this.#nodes.push(n);
    return out;
  }

  model(opset = 17): Uint8Array {
    const g = new Pb();
    for (const n of this.#nodes) g.message(1, n);
    g.string(2, 'tunelab_reference');
    for (const i of this.#inits) g.message(5, i);
    for (const i of this.#inputs) g.message(11, i);
    for (const o of this.#outputs) g.message(12, o);
    return new Pb()
      .varint(1, 8) // ir_version 8 goes with opset 17
      .string(2, 'tunelab')
      .message(7, g)
      .message(8, new Pb().varint(2, opset))
      .finish();
  }
}

// ───────────────────────────── the model ─────────────────────────────

function transpose2d(t: RefTensor): Float64Array {
  const [R, Cc] = t.shape;
  const out = new Float64Array(R * Cc);
  for (let r = 0; r < R; r++) for (let c = 0; c < Cc; c++) out[c * R + r] = t.data[r * Cc + c];
  return out;
}

export interface OnnxExportOptions {
  lora?: RefLora;
  prefix?: string;
}

/**
 * The model as a float32 ONNX graph: input_ids int64 (B, T) → logits float (B, T, V). Weights as
 * initializers (Linear weights transposed to (in, out) on the host), RoPE cos/sin and the causal mask
 * precomputed, LoRA (when given) as two extra MatMuls per target.
 */
export function exportOnnx(
  spec: ModelSpec,
  weights: RefWeights,
  B: number,
  T: number,
  opts: OnnxExportOptions = {},
): Uint8Array {
  const g = new OnnxGraph();
  const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, vocab: V } = spec;
  const gpt2 = spec.family === 'gpt2';
  const prefix = opts.prefix ?? (gpt2 ? 'transformer.' : 'model.');
  const W = (name: string): RefTensor => {
    const t = weights.get(name);
    if (!t) throw new Error(`onnx export: tensor '${name}' is missing`);
    return t;
  };
  const vecInit = (name: string) => g.floats('w', [...W(name).shape], W(name).data);

  const ids = g.input('input_ids', 'int64', [B, T]);
  const minusOneAxis = { axes: [-1], keepdims: 1 };

  const lora = (y: string, x: string, module: string): string => {
    const ad = opts.lora?.adapters.get(module);
    if (!ad || !opts.lora) return y;
    const at = g.floats('loraAT', [ad.A.shape[1], ad.A.shape[0]], transpose2d(ad.A));
    const bt = g.floats('loraBT', [ad.B.shape[1], ad.B.shape[0]], transpose2d(ad.B));
    const u = g.op('MatMul', [g.op('MatMul', [x, at]), bt]);
    return g.op('Add', [y, g.op('Mul', [u, g.scalar(opts.lora.scaling)])]);
  };
  /** torch Linear: W (out, in) → initializer (in, out). */
  const linear = (x: string, module: string, bias: boolean): string => {
    const w = W(`${module}.weight`);
    let y = g.op('MatMul', [x, g.floats('wT', [w.shape[1], w.shape[0]], transpose2d(w))]);
    if (bias) y = g.op('Add', [y, vecInit(`${module}.bias`)]);
    return lora(y, x, module);
  };
  /** GPT-2 Conv1D: W (in, out) as is. */
  const conv1d = (x: string, module: string): string => {
    const y = g.op('Add', [g.op('MatMul', [x, vecInit(`${module}.weight`)]), vecInit(`${module}.bias`)]);
    return lora(y, x, module);
  };
  const rmsnorm = (x: string, w: string): string => {
    const ms = g.op('ReduceMean', [g.op('Mul', [x, x])], minusOneAxis);
    const rms = g.op('Sqrt', [g.op('Add', [ms, g.scalar(spec.rmsNormEps!)])]);
    return g.op('Mul', [g.op('Div', [x, rms]), vecInit(w)]);
  };
  const layernorm = (x: string, w: string, b: string): string => {
    const mean = g.op('ReduceMean', [x], minusOneAxis);
    const d = g.op('Sub', [x, mean]);
    const variance = g.op('ReduceMean', [g.op('Mul', [d, d])], minusOneAxis);
    const norm = g.op('Div', [d, g.op('Sqrt', [g.op('Add', [variance, g.scalar(spec.layerNormEps!)])])]);
    return g.op('Add', [g.op('Mul', [norm, vecInit(w)]), vecInit(b)]);
  };

  // Causal mask (T, T): 0 on and below the diagonal, −1e9 above.
  const mask = new Float64Array(T * T);
  for (let i = 0; i < T; i++) for (let j = i + 1; j < T; j++) mask[i * T + j] = -1e9;
  const maskInit = g.floats('mask', [T, T], mask);
  const scale = g.scalar(1 / Math.sqrt(D));

  // RoPE tables (T, D): HF's emb = cat(freqs, freqs), angle formed in float32.
  let cos = '';
  let sin = '';
  if (!gpt2) {
    const half = D / 2;
    const cosT = new Float64Array(T * D);
    const sinT = new Float64Array(T * D);
    const invFreq = scaledInvFreqRef(D, spec.ropeTheta!, spec.ropeScaling).map(Math.fround);
    for (let i = 0; i < half; i++) {
      const inv = invFreq[i];
      for (let t = 0; t < T; t++) {
        const a = Math.fround(t * inv);
        cosT[t * D + i] = cosT[t * D + i + half] = Math.cos(a);
        sinT[t * D + i] = sinT[t * D + i + half] = Math.sin(a);
      }
    }
    cos = g.floats('cos', [T, D], cosT);
    sin = g.floats('sin', [T, D], sinT);
  }
  const rope = (x: string): string => {
    const x1 = g.op('Slice', [x, g.ints('s', [0]), g.ints('e', [D / 2]), g.ints('a', [3])]);
    const x2 = g.op('Slice', [x, g.ints('s', [D / 2]), g.ints('e', [D]), g.ints('a', [3])]);
    const rotated = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: -1 });
    return g.op('Add', [g.op('Mul', [x, cos]), g.op('Mul', [rotated, sin])]);
  };
  /** (B, T, n·D) → (B, n, T, D). */
  const heads = (x: string, n: number): string =>
    g.op('Transpose', [g.op('Reshape', [x, g.ints('shape', [B, T, n, D])])], { perm: [0, 2, 1, 3] });
  const attention = (q: string, k: string, v: string): string => {
    const scores = g.op('Mul', [g.op('MatMul', [q, g.op('Transpose', [k], { perm: [0, 1, 3, 2] })]), scale]);
    const probs = g.op('Softmax', [g.op('Add', [scores, maskInit])], { axis: -1 });
    const o = g.op('Transpose', [g.op('MatMul', [probs, v])], { perm: [0, 2, 1, 3] });
    return g.op('Reshape', [o, g.ints('shape', [B, T, H * D])]);
  };

  const wteName = gpt2 ? `${prefix}wte.weight` : `${prefix}embed_tokens.weight`;
  const wte = vecInit(wteName);
  let x = g.op('Gather', [wte, ids], { axis: 0 });
  if (gpt2) {
    const wpe = W(`${prefix}wpe.weight`);
    x = g.op('Add', [x, g.floats('wpe', [T, C], Array.from(wpe.data).slice(0, T * C))]);
  }

  for (let l = 0; l < spec.layers; l++) {
    if (gpt2) {
      const p = `${prefix}h.${l}.`;
      const h1 = layernorm(x, `${p}ln_1.weight`, `${p}ln_1.bias`);
      const qkv = conv1d(h1, `${p}attn.c_attn`);
      const part = (i: number) =>
        g.op('Slice', [qkv, g.ints('s', [i * C]), g.ints('e', [(i + 1) * C]), g.ints('a', [2])]);
      const att = attention(heads(part(0), H), heads(part(1), H), heads(part(2), H));
      x = g.op('Add', [x, conv1d(att, `${p}attn.c_proj`)]);
      const h2 = layernorm(x, `${p}ln_2.weight`, `${p}ln_2.bias`);
      const fc = conv1d(h2, `${p}mlp.c_fc`);
      const cube = g.op('Mul', [fc, g.op('Mul', [fc, fc])]);
      const inner = g.op('Mul', [
        g.scalar(Math.sqrt(2 / Math.PI)),
        g.op('Add', [fc, g.op('Mul', [g.scalar(0.044715), cube])]),
      ]);
      const gelu = g.op('Mul', [
        g.op('Mul', [g.scalar(0.5), fc]),
        g.op('Add', [g.scalar(1), g.op('Tanh', [inner])]),
      ]);
      x = g.op('Add', [x, conv1d(gelu, `${p}mlp.c_proj`)]);
      continue;
    }
    const p = `${prefix}layers.${l}.`;
    const h1 = rmsnorm(x, `${p}input_layernorm.weight`);
    // Qwen3: RMSNorm over the last axis of (B, n, T, D), i.e. each head's D values; SmolLM3's NoPE layers skip RoPE.
    const headNorm = (y: string, norm: string) =>
      spec.qkNorm ? rmsnorm(y, `${p}self_attn.${norm}.weight`) : y;
    const position = (y: string) => (spec.noRopeLayers.includes(l) ? y : rope(y));
    const q = position(headNorm(heads(linear(h1, `${p}self_attn.q_proj`, spec.qkvBias), H), 'q_norm'));
    let k = position(headNorm(heads(linear(h1, `${p}self_attn.k_proj`, spec.qkvBias), Hkv), 'k_norm'));
    let v = heads(linear(h1, `${p}self_attn.v_proj`, spec.qkvBias), Hkv);
    if (Hkv !== H) {
      // GQA: query head h reads kv head h / (H / Hkv).
      const idx = g.ints(
        'kvidx',
        Array.from({ length: H }, (_, h) => Math.floor(h / (H / Hkv))),
      );
      k = g.op('Gather', [k, idx], { axis: 1 });
      v = g.op('Gather', [v, idx], { axis: 1 });
    }
    x = g.op('Add', [x, linear(attention(q, k, v), `${p}self_attn.o_proj`, spec.oBias)]);
    const h2 = rmsnorm(x, `${p}post_attention_layernorm.weight`);
    const gate = linear(h2, `${p}mlp.gate_proj`, false);
    const up = linear(h2, `${p}mlp.up_proj`, false);
    const act = g.op('Mul', [g.op('Mul', [gate, g.op('Sigmoid', [gate])]), up]);
    x = g.op('Add', [x, linear(act, `${p}mlp.down_proj`, false)]);
  }
  const hf = gpt2
    ? layernorm(x, `${prefix}ln_f.weight`, `${prefix}ln_f.bias`)
    : rmsnorm(x, `${prefix}norm.weight`);
  const head = spec.tieWordEmbeddings ? W(wteName) : W('lm_head.weight');
  g.op('MatMul', [hf, g.floats('headT', [C, V], transpose2d(head))], {}, 'logits');
  g.output('logits', [B, T, V]);
  return g.model();
}
