// Builds the offline demo model served from public/demo-model/: a tiny Llama (hidden 128, 4 query heads of
// 32 and 2 key/value heads, 2 layers, SwiGLU 256) with the byte-level BPE tokenizer of the test fixtures
// (~290 tokens, ChatML template), random weights from a fixed seed, F32. About 1.5 MB, so the playground works
// with no network and trains fast enough even on a software WebGPU adapter. It is a demo: it knows no
// language, and what it "says" in the Try step is noise until a search has trained an adapter on it.
//
//   node --import tsx scripts/make-demo-model.ts [outDir]   (default public/demo-model)
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeSafetensors, type WriteTensor } from '../src/engine/model/safetensors.ts';
import { tinySpecialIds, tinyTokenizer } from '../test/fixtures/tiny-models.ts';
import { rng } from '../test/reference/random.ts';

const C = 128; // hidden
const H = 4; // query heads
const HKV = 2; // key/value heads
const D = C / H; // head dim 32: the attention kernels take 32, 64 or 128
const L = 2; // layers
const F = 256; // SwiGLU inner size
const V = 320; // embedding rows (≥ the tokenizer's 289 tokens)
const P = 256; // max positions

const ids = tinySpecialIds();
const config = {
  architectures: ['LlamaForCausalLM'],
  model_type: 'llama',
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: ids.imStart,
  eos_token_id: ids.imEnd,
  hidden_act: 'silu',
  hidden_size: C,
  initializer_range: 0.02,
  intermediate_size: F,
  max_position_embeddings: P,
  mlp_bias: false,
  num_attention_heads: H,
  num_hidden_layers: L,
  num_key_value_heads: HKV,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000.0,
  tie_word_embeddings: true,
  torch_dtype: 'float32',
  transformers_version: '4.45.0',
  use_cache: true,
  vocab_size: V,
  _name_or_path: 'tunelab/demo-tiny-llama',
};

const next = rng(20240601);
const uniform = (n: number, scale: number, offset = 0): Float32Array => {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = offset + scale * (2 * next() - 1);
  return out;
};
const tensors: Record<string, WriteTensor> = {};
const put = (name: string, shape: number[], data: Float32Array) => {
  tensors[name] = { dtype: 'F32', shape, data };
};
// Small embeddings (tied with the LM head) so the untrained model starts near the uniform loss ln V.
put('model.embed_tokens.weight', [V, C], uniform(V * C, 0.05));
for (let l = 0; l < L; l++) {
  const p = `model.layers.${l}.`;
  const matrix = (name: string, out: number, inp: number) =>
    put(p + name, [out, inp], uniform(out * inp, 1 / Math.sqrt(inp)));
  put(`${p}input_layernorm.weight`, [C], uniform(C, 0.1, 1));
  matrix('self_attn.q_proj.weight', H * D, C);
  matrix('self_attn.k_proj.weight', HKV * D, C);
  matrix('self_attn.v_proj.weight', HKV * D, C);
  matrix('self_attn.o_proj.weight', C, H * D);
  put(`${p}post_attention_layernorm.weight`, [C], uniform(C, 0.1, 1));
  matrix('mlp.gate_proj.weight', F, C);
  matrix('mlp.up_proj.weight', F, C);
  matrix('mlp.down_proj.weight', C, F);
}
put('model.norm.weight', [C], uniform(C, 0.1, 1));

const tok = tinyTokenizer(true);
const out = process.argv[2] ?? 'public/demo-model';
await mkdir(out, { recursive: true });
const files: Record<string, string | Uint8Array> = {
  'config.json': JSON.stringify(config, null, 2) + '\n',
  'generation_config.json':
    JSON.stringify({ bos_token_id: ids.imStart, eos_token_id: ids.imEnd, max_new_tokens: 32 }, null, 2) +
    '\n',
  'tokenizer.json': JSON.stringify(tok.json) + '\n',
  'tokenizer_config.json': JSON.stringify({ ...tok.config, model_max_length: P }, null, 2) + '\n',
  'model.safetensors': writeSafetensors(tensors, { format: 'pt' }),
};
for (const [name, data] of Object.entries(files)) await writeFile(join(out, name), data);
const bytes = Object.values(files).reduce((s, d) => s + (typeof d === 'string' ? d.length : d.byteLength), 0);
console.log(`wrote ${Object.keys(files).join(', ')} to ${out} (${(bytes / 2 ** 20).toFixed(2)} MiB)`);
