// Training-step benchmark (not a test): tokens/s, dispatches, submits and readbacks per optimizer step, and
// peak GPU bytes, for a Llama-family model with random frozen weights. `--model smol` has SmolLM2-135M's
// shapes (hidden 576, 9 heads / 3 kv heads, ffn 1536, vocab 49,152, tied); `--layers` cuts its depth so a
// software driver finishes (30 on a real GPU).
// `--model` also takes the ladder's models (src/engine/model/ladder.ts) by short name: smollm2-135m,
// smollm2-360m, smollm2-1.7b, qwen3-0.6b, qwen3-1.7b, qwen3-4b, llama-3.2-1b, llama-3.2-3b, gemma-3-270m,
// gemma-3-1b, smollm3-3b, qwen2.5-0.5b, qwen2.5-1.5b: the repo's config.json with its family's structure and
// random weights as safetensors in memory (F16 for an f16 run, BF16 for f32), opened and loaded by openModel /
// loadModel and trained through the family's own model code (bench/ladder-model.ts); `--layers` cuts their
// depth too (default: all). `--vocab N` cuts the vocabulary (any model): a software driver binds at most
// 128 MiB, less than most ladder models' embedding (a real GPU takes the full vocabulary).
//   npm run bench:train -- --model gemma-3-1b --batch 4 --seq 256 --steps 10 --tune --profile
//
//   npm run bench:train -- --model smol --layers 30 --batch 4 --seq 256 --steps 10 --targets all-linear
// `--recompute` adds a second row with activation recomputation per block (same model, same card).
// `--profile` adds GPU time per kernel of one step (timestamp queries; one pass per dispatch).
// `--tune` autotunes the kernel variants at this run's shapes first (on a real GPU a few seconds), for at most
// `--tune-ms` milliseconds (default 30,000; the hottest shape classes first, the rest keep their defaults).
// `--grad-chunk-tokens K` sets the LoRA weight gradients' token chunks (kernels/lora-grads.ts); K ≥ batch·seq
// turns the split off, to compare with the default (its rule on a GPU, no split on a software driver).
// `--count` records steps without running them (queue.submit is skipped) and prints what one step issues:
// dispatches, compute passes, bind groups created, submits, FLOPs and bytes (each launch's own count), and the host
// milliseconds to record it (wall and CPU) — the first step (pipelines and bind groups built), the second
// (confirms the replay), then replayed steps; `--no-replay` records every step with the model's code instead.
import { parseArgs } from 'node:util';
import {
  acquireGpu,
  BufferArena,
  Profiler,
  toF16Array,
  type Gpu,
  type Precision,
} from '../src/engine/gpu/index.ts';
import { parseTargets } from '../src/engine/lora/config.ts';
import { parseModelConfig, type ModelSpec } from '../src/engine/model/config.ts';
import type { LoraAdapter } from '../src/engine/model/linear.ts';
import { llamaDims, type LoadedModel } from '../src/engine/model/load.ts';
import { LLAMA_LINEARS, LlamaModel, linearShape, type LlamaWeights } from '../src/engine/model/llama.ts';
import type { Example } from '../src/engine/train/data.ts';
import { Trainer } from '../src/engine/train/trainer.ts';
import { autotune, modelTuneTasks, runTuneOptions } from '../src/engine/kernels/autotune.ts';
import { estimateMemory } from '../src/engine/model/memory.ts';
import { nodeGpu } from '../src/node/dawn.ts';
import { benchDtype, LADDER_NAMES, ladderModel, loadLadderModel } from './ladder-model.ts';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string', default: 'tiny' },
    layers: { type: 'string' },
    vocab: { type: 'string' },
    batch: { type: 'string', default: '4' },
    seq: { type: 'string', default: '64' },
    steps: { type: 'string', default: '5' },
    precision: { type: 'string', default: 'auto' },
    targets: { type: 'string', default: 'all-linear' },
    r: { type: 'string', default: '16' },
    recompute: { type: 'boolean', default: false },
    count: { type: 'boolean', default: false },
    tune: { type: 'boolean', default: false },
    'tune-ms': { type: 'string', default: '30000' },
    'no-replay': { type: 'boolean', default: false },
    profile: { type: 'boolean', default: false },
    'grad-chunk-tokens': { type: 'string' },
  },
});
const gradChunkTokens =
  args['grad-chunk-tokens'] === undefined ? undefined : Number(args['grad-chunk-tokens']);
const chunksNote = gradChunkTokens === undefined ? '' : `, gradient token chunks of ${gradChunkTokens}`;

const SHAPES: Record<string, Record<string, unknown>> = {
  tiny: {
    hidden_size: 128,
    intermediate_size: 384,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    num_hidden_layers: 2,
    vocab_size: 1024,
  },
  smol: {
    hidden_size: 576,
    intermediate_size: 1536,
    num_attention_heads: 9,
    num_key_value_heads: 3,
    num_hidden_layers: 30,
    vocab_size: 49152,
  },
};

function specFor(name: string, layers?: number, vocab?: number): ModelSpec {
  const shape = SHAPES[name];
  if (!shape)
    throw new Error(`--model must be one of ${[...Object.keys(SHAPES), ...LADDER_NAMES].join(', ')}`);
  return parseModelConfig({
    architectures: ['LlamaForCausalLM'],
    hidden_act: 'silu',
    max_position_embeddings: 8192,
    rms_norm_eps: 1e-5,
    rope_theta: 100000,
    tie_word_embeddings: true,
    bos_token_id: 0,
    eos_token_id: 0,
    ...shape,
    ...(layers ? { num_hidden_layers: layers } : {}),
    ...(vocab ? { vocab_size: vocab } : {}),
  });
}

/** Random frozen weights straight onto the GPU (a bench needs shapes, not a checkpoint). */
function randomModel(gpu: Gpu, spec: ModelSpec, precision: Precision): LoadedModel {
  const arena = new BufferArena(gpu);
  let seed = 1;
  const random = (n: number, scale: number) => {
    const values = new Float32Array(n);
    let s = seed++ * 2654435761;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      values[i] = (s / 2 ** 31 - 1) * scale;
    }
    return values;
  };
  const up = (name: string, n: number, scale: number, offset = 0) => {
    const values = random(n, scale).map((v) => v + offset);
    return arena.upload(name, precision === 'f16' ? toF16Array(values) : values);
  };
  const dims = llamaDims(spec);
  const { hidden: C, vocab: V } = dims;
  const embed = up('embed', V * C, 0.05);
  const weights: LlamaWeights = {
    dtype: precision,
    embed,
    finalNorm: up('norm', C, 0.1, 1),
    lmHead: embed,
    layers: Array.from({ length: dims.layers }, (_, l) => {
      const linears = {} as LlamaWeights['layers'][number]['linears'];
      for (const name of LLAMA_LINEARS) {
        const { inFeatures, outFeatures } = linearShape(dims, name);
        linears[name] = up(`l${l}.${name}`, inFeatures * outFeatures, 1 / Math.sqrt(inFeatures));
      }
      return {
        inputNorm: up(`l${l}.ln1`, C, 0.1, 1),
        postAttentionNorm: up(`l${l}.ln2`, C, 0.1, 1),
        linears,
      };
    }),
  };
  return {
    spec,
    precision,
    arena,
    weightBytes: arena.bytesInUse,
    f16Overflow: 0,
    withAdapters: (adapters: ReadonlyMap<string, LoraAdapter>) =>
      new LlamaModel(gpu, dims, weights, adapters),
    destroy: () => arena.destroy(),
  };
}

const gpu = await acquireGpu({ gpu: nodeGpu(), precision: args.precision as 'auto' | 'f16' | 'f32' });
const layers = args.layers ? Number(args.layers) : undefined;
const vocab = args.vocab ? Number(args.vocab) : undefined;
const entry = ladderModel(args.model!);
const loadStart = performance.now();
const loaded = entry
  ? await loadLadderModel(gpu, entry, { layers, vocab }, gpu.precision)
  : randomModel(gpu, specFor(args.model!, layers, vocab), gpu.precision);
const loadSeconds = (performance.now() - loadStart) / 1000;
const spec = loaded.spec;
const [batch, seq, steps, r] = [args.batch, args.seq, args.steps, args.r].map(Number);
/** The header's model line: what the device report quotes. */
const modelLine =
  `model: ${entry?.id ?? args.model} (${spec.layers} layers, hidden ${spec.hidden}, heads ${spec.heads}/${spec.kvHeads}, ` +
  `head dim ${spec.headDim}, ffn ${spec.ffn}, vocab ${spec.vocab})`;
const rows = 64;
let s = 7;
const examples: Example[] = Array.from({ length: rows }, (_, i) => {
  const ids = Int32Array.from(
    { length: seq + 1 },
    () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) % spec.vocab,
  );
  return { ids, labels: ids.slice(), promptLength: 0, line: i + 1 };
});
const targets = parseTargets(args.targets!);

/** One timed run: a table row. */
async function bench(recompute: boolean): Promise<{ row: string; params: number }> {
  const trainer = makeTrainer(recompute);
  // Two warm-up steps compile every pipeline; then `steps` timed steps with one step in flight.
  for (let i = 0; i < 2; i++) await trainer.submitStep()();
  const before = { ...gpu.stats };
  let hostMs = 0;
  const submit = () => {
    const t = performance.now();
    const next = trainer.submitStep();
    hostMs += performance.now() - t;
    return next;
  };
  const start = performance.now();
  let pending = submit();
  for (let i = 1; i < steps; i++) {
    const next = submit();
    await pending();
    pending = next;
  }
  const last = await pending();
  const seconds = (performance.now() - start) / 1000;
  const per = (key: keyof typeof before, scale = 1, digits = 1) =>
    ((gpu.stats[key] - before[key]) / steps / scale).toFixed(digits);
  const tokens = batch * seq * steps;
  const row =
    `| ${recompute ? 'on' : 'off'} | ${(tokens / seconds).toFixed(1)} | ${((1000 * seconds) / steps).toFixed(1)} | ` +
    `${(hostMs / steps).toFixed(1)} | ${per('dispatches', 1, 0)} | ${per('passes', 1, 0)} | ${per('bindGroups', 1, 0)} | ` +
    `${per('submits', 1, 0)} | ${per('readbacks', 1, 0)} | ${per('flops', 1e9, 2)} | ${per('bytes', 2 ** 20)} | ` +
    `${((loaded.weightBytes + trainer.gpuBytes) / 2 ** 20).toFixed(1)} | ${estimatedMiB(recompute)} | ` +
    `${last.loss.toFixed(4)} |`;
  const params = trainer.layout.paramCount;
  trainer.destroy();
  return { row, params };
}

/** What src/engine/model/memory.ts expects this run to hold (the ladder's and the CLI's fit checks use it). */
function estimatedMiB(recompute: boolean): string {
  const estimate = estimateMemory(spec, {
    batch,
    seq,
    precision: gpu.precision,
    lora: { rank: r, targets, dropout: 0.05 },
    recompute,
    gradChunkTokens,
  });
  return (estimate.totalBytes / 2 ** 20).toFixed(1);
}

function makeTrainer(recompute: boolean, profiler?: Profiler): Trainer {
  return new Trainer(gpu, loaded, examples, [], 0, {
    lora: { r, alpha: 2 * r, dropout: 0.05, targets, rslora: false },
    optimizer: 'adamw',
    lr: 1e-4,
    schedule: 'constant',
    batch,
    accum: 1,
    seq,
    steps: steps + 2,
    maxGradNorm: 1,
    seed: 1,
    recompute,
    replay: !args['no-replay'],
    profiler,
    gradChunkTokens,
  });
}

/** Records `steps` steps without submitting them; one table row per step. */
async function count(recompute: boolean): Promise<string[]> {
  const trainer = makeTrainer(recompute);
  const queue = gpu.device.queue;
  const submit = queue.submit.bind(queue);
  queue.submit = () => {}; // count what a step issues, without running it (a software driver takes minutes)
  const rows: string[] = [];
  try {
    for (let i = 0; i < Math.max(2, steps); i++) {
      const before = { ...gpu.stats };
      const start = performance.now();
      const cpu = process.cpuUsage();
      trainer.submitStep(); // its metrics are never read: nothing ran
      const ms = performance.now() - start;
      const cpuUsed = process.cpuUsage(cpu);
      // CPU time of this thread's process: what a loaded machine does not inflate (wall ms does).
      const cpuMs = (cpuUsed.user + cpuUsed.system) / 1000;
      await gpu.pipelines.check();
      const d = (key: keyof typeof before) => gpu.stats[key] - before[key];
      rows.push(
        `| ${recompute ? 'on' : 'off'} | ${i + 1} | ${d('dispatches')} | ${trainer.lastStepCounts.replayed} | ` +
          `${d('passes')} | ${d('bindGroups')} | ` +
          `${d('submits')} | ${(d('flops') / 1e9).toFixed(2)} | ${(d('bytes') / 2 ** 20).toFixed(1)} | ${ms.toFixed(1)} | ` +
          `${cpuMs.toFixed(1)} |`,
      );
    }
  } finally {
    queue.submit = submit;
    trainer.destroy();
  }
  return rows;
}

if (args.tune) {
  const tuneStart = performance.now();
  const run = { batch, seq, lora: { r, alpha: 2 * r, dropout: 0.05, targets, rslora: false } };
  const result = await autotune(gpu, modelTuneTasks(gpu, spec, runTuneOptions(spec, run)), {
    budgetMs: Number(args['tune-ms']),
  });
  console.log(`autotune: ${result.message} (${((performance.now() - tuneStart) / 1000).toFixed(1)} s)`);
}

if (args.count) {
  const rows = [...(await count(false)), ...(args.recompute ? await count(true) : [])];
  console.log(`# tunelab training-step counts — ${new Date().toISOString().slice(0, 10)}`);
  console.log(
    `${modelLine}, ${gpu.precision}, LoRA r=${r} on ${args.targets}, dropout 0.05, batch ${batch} × seq ${seq}` +
      `${chunksNote}; recorded, not run`,
  );
  console.log(
    '| recompute | step | dispatches | replayed | passes | bind groups created | submits | GFLOP | MiB moved | ' +
      'host ms | host CPU ms |',
  );
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  const hostMs = (column: number) => {
    const cells = rows.map((row) => row.split('|').map((cell) => cell.trim()));
    const steady = cells.filter((cell) => cell[1] === 'off' && Number(cell[2]) > 10);
    const values = steady.map((cell) => Number(cell[column]));
    return values.length ? median(values).toFixed(1) : 'n/a';
  };
  for (const row of rows) console.log(row);
  console.log(`median over steps 11 on: host ms ${hostMs(10)}, host CPU ms ${hostMs(11)}`);
  loaded.destroy();
  gpu.destroy();
  process.exit(0);
}

/**
 * GPU time per kernel of one step: every dispatch in its own timestamped pass (so the sum is somewhat above the
 * unprofiled step), averaged over 3 steps after one warm-up; FLOPs by each kernel's own count.
 */
async function profile(): Promise<string[]> {
  if (!gpu.hasTimestamps) return ['profile: this adapter has no timestamp-query feature'];
  const profiler = new Profiler(gpu, 2048);
  const trainer = makeTrainer(false, profiler);
  const runs = 3;
  const byKernel = new Map<string, { n: number; ms: number; flops: number }>();
  for (let i = 0; i <= runs; i++) {
    await trainer.submitStep()();
    const durations = await profiler.durations();
    if (i === 0) continue; // warm-up
    for (const { label, ms } of durations) {
      const k = byKernel.get(label) ?? { n: 0, ms: 0, flops: 0 };
      k.n++;
      k.ms += ms / runs;
      byKernel.set(label, k);
    }
    for (const [name, flops] of trainer.lastStepCounts.kernelFlops) {
      const k = byKernel.get(name);
      if (k) k.flops += flops / runs;
    }
  }
  trainer.destroy();
  profiler.destroy();
  const total = [...byKernel.values()].reduce((sum, k) => sum + k.ms, 0);
  const lines = [
    `profile: one step, ${total.toFixed(2)} ms of kernel time (sum of per-dispatch timestamps, mean of ${runs} steps)`,
    '| kernel | dispatches | GPU ms | share | TFLOP/s |',
    '| --- | ---: | ---: | ---: | ---: |',
  ];
  for (const [name, k] of [...byKernel].sort((a, b) => b[1].ms - a[1].ms)) {
    const tflops = k.flops > 0 && k.ms > 0 ? (k.flops / (k.ms / 1000) / 1e12).toPrecision(3) : '';
    lines.push(
      `| ${name} | ${k.n / runs} | ${k.ms.toFixed(3)} | ${((100 * k.ms) / total).toFixed(1)} % | ${tflops} |`,
    );
  }
  return lines;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

const rowsOut = [await bench(false)];
if (args.recompute) rowsOut.push(await bench(true));
console.log(`# tunelab training-step bench — ${new Date().toISOString().slice(0, 10)}`);
console.log(
  `device: ${[gpu.adapter.vendor, gpu.adapter.architecture, gpu.adapter.description].filter(Boolean).join(' ')}`,
);
console.log(
  `${modelLine}, ${gpu.precision}, ` +
    `LoRA r=${r} on ${args.targets} (${rowsOut[0].params.toLocaleString()} params), batch ${batch} × seq ${seq}` +
    chunksNote,
);
console.log(
  `load: ${(loaded.weightBytes / 2 ** 20).toFixed(1)} MiB of weights in ${loadSeconds.toFixed(1)} s` +
    (entry
      ? ` (random ${benchDtype(gpu.precision)} safetensors through openModel / loadModel)`
      : ' (random weights uploaded directly)'),
);
console.log(
  '| recompute | tokens/s | ms/step | host ms/step | dispatches | passes | bind groups made | submits | readbacks | ' +
    'GFLOP | MiB moved | GPU MiB held | GPU MiB estimated | last loss |',
);
console.log(
  '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
);
for (const { row } of rowsOut) console.log(row);
if (args.profile) for (const line of await profile()) console.log(line);
// performance.now() counts from the process's start: what one device call spends on this run.
console.log(`wall: ${(performance.now() / 1000).toFixed(1)} s for the whole run`);
loaded.destroy();
gpu.destroy();
process.exit(0);
