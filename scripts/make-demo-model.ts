// Builds the offline demo model served from public/demo-model/: a tiny Llama (hidden 128, 4 query heads of
// 32 and 2 key/value heads, 2 layers, SwiGLU 256, vocab 320, tied embeddings, F32, about 1.35 MB) with the
// byte-level BPE tokenizer of the test fixtures (~290 tokens, ChatML template), trained by tunelab itself on
// the samples the playground ships.
//
// The engine trains LoRA adapters only, so that is how the demo is trained: from a random base (fixed seed),
// a full-rank LoRA adapter (r = 128 = the hidden size ≥ min(in, out) of every linear, so B·A can be any
// update) on all linear layers, trained with AdamW on real WebGPU (Dawn; lavapipe when there is no GPU), then
// merged into the base on the host in f64 as PEFT's merge_and_unload does (W ← W + (alpha/r)·B·A). ROUNDS
// can repeat train → merge on the merged base; one round is used. Only the linears of the blocks learn: the
// token embeddings (tied with the LM head) and the RMSNorm weights stay as drawn, fixed random features; the
// embeddings are drawn larger than a random model would need so the tied head can give confident logits.
//
// Data (public/samples/): aesop.txt, one document per fable, in windows of 65 tokens; reverse.jsonl; and 48
// rows of addition.jsonl from the playground's own training split, the prompt-completion rows packed end to
// end. So the demo continues a fable's title with the fable (it has memorised the four of them: the text is
// 2 KB) and knows the shape of the task answers, without having learnt to add or reverse: a search on
// addition in the playground still has most of it to learn. The last tenth of each fable, a tenth of
// reverse.jsonl and the playground's validation rows of addition.jsonl are held out and only reported.
// Seeded throughout; about 5 minutes on a CPU-only software adapter (2 cores).
//
//   npm run make:demo [-- outDir]   (default public/demo-model; needs WebGPU: see scripts/setup.mjs)
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cliGpu } from '../src/cli/gpu.ts';
import type { Gpu } from '../src/engine/gpu/index.ts';
import { loraScaling, type LoraConfig } from '../src/engine/lora/config.ts';
import { segmentView } from '../src/engine/lora/init.ts';
import { memoryFiles } from '../src/engine/checkpoint/byte-source.ts';
import { loadModel } from '../src/engine/model/load.ts';
import { openModel, type OpenedModel } from '../src/engine/model/open.ts';
import { writeSafetensors, type WriteTensor } from '../src/engine/checkpoint/safetensors.ts';
import { TextGenerator } from '../src/engine/model/text-generator.ts';
import {
  dataTokenizer,
  IGNORE_INDEX,
  padIdOf,
  parseDataset,
  splitExamples,
  type DataTokenizer,
  type Example,
} from '../src/engine/train/data.ts';
import { Trainer, type TrainerOptions } from '../src/engine/train/trainer.ts';
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

// Training: the run is a pure function of these and the samples.
const SEQ = 64;
const BATCH = 8;
const SEED = 7;
const LORA: LoraConfig = { r: C, alpha: C, dropout: 0, targets: 'all-linear', rslora: false };
// Rounds of train → merge; one is enough here (the loss was still falling at the end of it).
const ROUNDS = [{ steps: 200, lr: 3e-3 }];
const AESOP_REPEAT = 2; // fable windows per epoch, next to ~60 packed task examples
const ADDITION_ROWS = 48; // addition rows trained on, from the playground's training split
const PLAYGROUND_SPLIT = { valRatio: 0.1, seed: 42 }; // src/ui/lib/search-config.ts defaults
const SAMPLES = 'public/samples';

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

// ---- the random base ----

interface HostTensor {
  shape: number[];
  data: Float32Array;
}

function randomBase(): Map<string, HostTensor> {
  const next = rng(20240601);
  const uniform = (n: number, scale: number, offset = 0): Float32Array => {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = offset + scale * (2 * next() - 1);
    return out;
  };
  const tensors = new Map<string, HostTensor>();
  const put = (name: string, shape: number[], data: Float32Array) => tensors.set(name, { shape, data });
  // Rows of norm ≈ 1 (U(−0.15, 0.15) in 128 dimensions): the final RMSNorm gives the head an input of norm
  // ≈ √128 whatever the blocks do, so the embeddings' scale caps the logits (0.05, as a random demo had, would
  // cap them near ±4 and the loss near 2 nats).
  put('model.embed_tokens.weight', [V, C], uniform(V * C, 0.15));
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
  return tensors;
}

function modelFiles(tensors: Map<string, HostTensor>): Record<string, string | Uint8Array> {
  const tok = tinyTokenizer(true);
  const write: Record<string, WriteTensor> = {};
  for (const [name, t] of tensors) write[name] = { dtype: 'F32', shape: t.shape, data: t.data };
  return {
    'config.json': JSON.stringify(config, null, 2) + '\n',
    'generation_config.json':
      JSON.stringify({ bos_token_id: ids.imStart, eos_token_id: ids.imEnd, max_new_tokens: 32 }, null, 2) +
      '\n',
    'tokenizer.json': JSON.stringify(tok.json) + '\n',
    'tokenizer_config.json': JSON.stringify({ ...tok.config, model_max_length: P }, null, 2) + '\n',
    'model.safetensors': writeSafetensors(write, { format: 'pt' }),
  };
}

const openFromMemory = (tensors: Map<string, HostTensor>) =>
  openModel(memoryFiles('demo-model', modelFiles(tensors)));

// ---- data ----

interface Sets {
  train: Example[];
  heldOut: Record<string, Example[]>;
  seen: Record<string, Example[]>;
}

async function datasets(opened: OpenedModel): Promise<Sets> {
  const tok = dataTokenizer(opened.tokenizer);
  const read = (file: string) => readFile(join(SAMPLES, file), 'utf8');
  const parse = async (file: string) => parseDataset(file, await read(file), tok, { seq: SEQ }).examples;
  const aesop = fables(await read('aesop.txt'), tok);
  const reverse = splitExamples(await parse('reverse.jsonl'), 0.1, SEED);
  const addition = splitExamples(
    await parse('addition.jsonl'),
    PLAYGROUND_SPLIT.valRatio,
    PLAYGROUND_SPLIT.seed,
  );
  const additionSeen = addition.train.slice(0, ADDITION_ROWS);
  const train = [
    ...Array.from({ length: AESOP_REPEAT }, () => aesop.train).flat(),
    ...pack([...reverse.train, ...additionSeen]),
  ];
  return {
    train,
    heldOut: { aesop: aesop.heldOut, reverse: reverse.validation, addition: addition.validation },
    // Training loss is reported on 48 of the reverse rows trained on, to keep the evaluations short.
    seen: { aesop: aesop.train, reverse: reverse.train.slice(0, 48), addition: additionSeen },
  };
}

/**
 * aesop.txt as one document per fable (title and text: BOS, the tokens, EOS, as parseDataset encodes a text
 * file), so a prompt that starts like a fable starts where fables start. Each fable's last tenth is held out;
 * the rest is cut into windows of SEQ + 1 tokens that overlap by one (as parseDataset packs), plus one ending
 * at the cut. A held-out example is the window that ends the fable, scored only past the cut.
 */
function fables(text: string, tok: DataTokenizer): { train: Example[]; heldOut: Example[] } {
  const paragraphs = text.trim().split(/\n\s*\n/);
  const train: Example[] = [];
  const heldOut: Example[] = [];
  for (let f = 0; f + 1 < paragraphs.length; f += 2) {
    const fable = `${paragraphs[f]}\n\n${paragraphs[f + 1]}`;
    const line = text.slice(0, text.indexOf(fable)).split('\n').length;
    const [doc] = parseDataset('fable.txt', fable, tok, { seq: 4 * P }).examples;
    const ids = Array.from(doc.ids);
    const cut = ids.length - Math.ceil(ids.length / 10);
    const window = (end: number, scoredFrom: number): Example => {
      const start = Math.max(0, end - (SEQ + 1));
      const w = ids.slice(start, end);
      const labels = w.map((id, i) => (start + i >= scoredFrom ? id : IGNORE_INDEX));
      return { ids: Int32Array.from(w), labels: Int32Array.from(labels), promptLength: 0, line };
    };
    for (let end = SEQ + 1; end < cut; end += SEQ) train.push(window(end, 0));
    train.push(window(cut, 0));
    heldOut.push(window(ids.length, cut));
  }
  return { train, heldOut };
}

/**
 * Short rows packed end to end into examples of up to SEQ + 1 tokens (TRL's packing): each keeps its BOS, its
 * masked prompt and its EOS, so no position is spent on padding (a row is 10–19 tokens; SEQ is 64).
 */
function pack(rows: readonly Example[]): Example[] {
  const out: Example[] = [];
  let ids: number[] = [];
  let labels: number[] = [];
  let first: Example | null = null;
  const flush = () => {
    if (!first) return;
    out.push({
      ids: Int32Array.from(ids),
      labels: Int32Array.from(labels),
      promptLength: 0,
      line: first.line,
    });
    ids = [];
    labels = [];
    first = null;
  };
  for (const row of rows) {
    if (ids.length + row.ids.length > SEQ + 1) flush();
    first ??= row;
    ids.push(...row.ids);
    labels.push(...row.labels);
  }
  flush();
  return out;
}

// ---- training and merging ----

function trainerOptions(steps: number, lr: number, round: number): TrainerOptions {
  return {
    lora: LORA,
    optimizer: 'adamw',
    lr,
    weightDecay: 0,
    schedule: 'cosine',
    warmupSteps: Math.round(steps / 20),
    batch: BATCH,
    accum: 1,
    seq: SEQ,
    steps,
    maxGradNorm: 1,
    seed: SEED + round,
  };
}

async function losses(trainer: Trainer, sets: Sets): Promise<string> {
  const parts: string[] = [];
  for (const [label, group] of [
    ['train', sets.seen],
    ['held-out', sets.heldOut],
  ] as const) {
    const each: string[] = [];
    for (const [name, examples] of Object.entries(group)) {
      each.push(`${name} ${(await trainer.evaluate(examples)).valLoss.toFixed(3)}`);
    }
    parts.push(`${label}: ${each.join(', ')}`);
  }
  return parts.join(' | ');
}

/** W ← W + scaling · B·A for every adapted linear (torch Linear: W [out, in], A [r, in], B [out, r]), in f64. */
function merge(tensors: Map<string, HostTensor>, trainer: Trainer, params: Float32Array): void {
  const scaling = loraScaling(LORA);
  const { layout } = trainer;
  const r = layout.r;
  layout.modules.forEach((m, i) => {
    const [a, b] = layout.segments.filter((s) => s.module === i);
    if (a?.kind !== 'A' || b?.kind !== 'B') throw new Error(`internal: segments of ${m.path}`);
    const A = segmentView(params, a);
    const B = segmentView(params, b);
    const W = tensors.get(`${m.path}.weight`);
    if (!W || W.shape[0] !== m.outFeatures || W.shape[1] !== m.inFeatures) {
      throw new Error(`internal: no [${m.outFeatures}, ${m.inFeatures}] weight for ${m.path}`);
    }
    const { outFeatures: out, inFeatures: inp } = m;
    const row = new Float64Array(inp);
    for (let o = 0; o < out; o++) {
      row.fill(0);
      for (let k = 0; k < r; k++) {
        const bok = B[o * r + k];
        if (bok === 0) continue;
        for (let j = 0; j < inp; j++) row[j] += bok * A[k * inp + j];
      }
      for (let j = 0; j < inp; j++) W.data[o * inp + j] = W.data[o * inp + j] + scaling * row[j];
    }
  });
}

async function samples(gpu: Gpu, opened: OpenedModel): Promise<string[]> {
  const loaded = await loadModel(gpu, opened, { precision: 'f32' });
  const generator = new TextGenerator(gpu, opened, loaded);
  const out: string[] = [];
  try {
    for (const prompt of [
      'The Fox',
      'The Lion',
      'The Crow and the',
      'A Hare',
      '12+34=',
      '27+15=',
      'rev stone:',
      'rev abcd:',
    ]) {
      const result = await generator.generate({ prompt, maxNewTokens: 48, temperature: 0 });
      out.push(`${JSON.stringify(prompt)} → ${JSON.stringify(opened.tokenizer.decode(result.tokens))}`);
    }
  } finally {
    loaded.destroy();
  }
  return out;
}

const outDir = process.argv[2] ?? 'public/demo-model';
const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(0);
const tensors = randomBase();
const gpu = await cliGpu('f32');
try {
  let opened = await openFromMemory(tensors);
  const sets = await datasets(opened);
  const padId = padIdOf(dataTokenizer(opened.tokenizer));
  console.log(
    `data: ${sets.train.length} training examples (aesop ${sets.seen.aesop.length} windows × ${AESOP_REPEAT}, ` +
      `reverse and addition packed); held out: ` +
      Object.entries(sets.heldOut)
        .map(([k, v]) => `${k} ${v.length}`)
        .join(', '),
  );
  for (const [round, { steps, lr }] of ROUNDS.entries()) {
    const loaded = await loadModel(gpu, opened, { precision: 'f32' });
    const options = { ...trainerOptions(steps, lr, round), evalEvery: 20 };
    const trainer = new Trainer(gpu, loaded, sets.train, sets.heldOut.aesop, padId, options);
    console.log(`round ${round + 1}: ${steps} steps at lr ${lr}, start  ${await losses(trainer, sets)}`);
    let last = 0;
    await trainer.run({
      onStep: (m) => {
        last = m.loss;
      },
      onEval: (m) => {
        console.log(
          `  step ${m.step}: batch loss ${last.toFixed(3)}, held-out aesop ${m.valLoss.toFixed(3)} (${seconds()} s)`,
        );
      },
    });
    console.log(`round ${round + 1}: end    ${await losses(trainer, sets)}`);
    merge(tensors, trainer, await trainer.readParams());
    trainer.destroy();
    loaded.destroy();
    opened = await openFromMemory(tensors);
  }
  console.log(`trained in ${seconds()} s; merged model, greedy:`);
  for (const line of await samples(gpu, opened)) console.log(`  ${line}`);
} finally {
  gpu.destroy();
}

const files = modelFiles(tensors);
await mkdir(outDir, { recursive: true });
for (const [name, data] of Object.entries(files)) await writeFile(join(outDir, name), data);
const bytes = Object.values(files).reduce((s, d) => s + (typeof d === 'string' ? d.length : d.byteLength), 0);
console.log(`wrote ${Object.keys(files).join(', ')} to ${outDir} (${(bytes / 2 ** 20).toFixed(2)} MiB)`);
