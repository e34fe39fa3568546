// Inference with a KV cache: prefill logits and step-by-step decode logits against the f64 reference
// forward of real (tiny) checkpoints, LoRA at inference against the reference and the training forward,
// and greedy generation with the cache against the argmax of a full forward over the growing sequence.
import { afterAll, describe, expect, it } from 'vitest';
import type { Precision } from '../../src/engine/gpu/index.ts';
import { generate } from '../../src/engine/model/generate.ts';
import { asInferenceModel, InferenceSession, type InferenceModel } from '../../src/engine/model/inference.ts';
import { GPT2_LINEARS, gpt2LinearShape, gpt2ModulePath } from '../../src/engine/model/gpt2.ts';
import { LLAMA_LINEARS, linearShape, llamaModulePath } from '../../src/engine/model/llama.ts';
import { gpt2Dims, llamaDims, loadModel, type LoadedModel } from '../../src/engine/model/load.ts';
import { openModel } from '../../src/engine/model/open.ts';
import { buildTinyModel, tinyModelFiles, type TinyArch } from '../fixtures/tiny-models.ts';
import { compare, expectClose } from '../reference/compare.ts';
import { rng } from '../reference/random.ts';
import { transformerForwardRef, type RefLora } from '../reference/transformer.ts';
import { download, f16SkipReason, testGpu } from './harness.ts';
import { randomAdapters, type HostAdapter } from './model-gradcheck.ts';
import { buildTinyGemma3, buildTinyGpt2, buildTinyLlama, TINY_LLAMA } from './tiny-models.ts';
import { BufferArena, CommandRecorder } from '../../src/engine/gpu/index.ts';
import { loraScaling } from '../../src/engine/lora/config.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  exportPeftAdapter,
  importPeftAdapter,
} from '../../src/engine/lora/peft.ts';
import { loraAdapters } from '../../src/engine/model/lora-bindings.ts';
import { Trainer } from '../../src/engine/train/trainer.ts';
import { randomExamples } from '../fixtures/examples.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);
const loaded: LoadedModel[] = [];
const sessions: InferenceSession[] = [];
afterAll(() => {
  sessions.forEach((s) => s.destroy());
  loaded.forEach((m) => m.destroy());
});

async function loadFixture(arch: TinyArch, precision: Precision, config?: Record<string, unknown>) {
  const tiny = buildTinyModel({ arch, dtype: 'F32', config });
  const opened = await openModel(tinyModelFiles(tiny));
  const model = await loadModel(gpu, opened, { precision });
  loaded.push(model);
  return { tiny, opened, loaded: model };
}

function session(model: InferenceModel, options: ConstructorParameters<typeof InferenceSession>[1]) {
  const s = new InferenceSession(model, options);
  sessions.push(s);
  return s;
}

function randomTokens(vocab: number, n: number, seed: number): number[] {
  const next = rng(seed);
  return Array.from({ length: n }, () => Math.floor(next() * vocab));
}

/** Rows `t` of every sequence of (B, T, V) logits, as (B, V). */
function rowsAt(logits: Float64Array, B: number, T: number, V: number, t: number): Float64Array {
  const out = new Float64Array(B * V);
  for (let b = 0; b < B; b++) out.set(logits.subarray((b * T + t) * V, (b * T + t + 1) * V), b * V);
  return out;
}

const cases: [TinyArch, Precision, number][] = [
  ['llama', 'f32', 1e-4],
  ['qwen2', 'f32', 1e-4],
  ['gpt2', 'f32', 1e-4],
  ['llama', 'f16', 2e-2],
  ['gpt2', 'f16', 2e-2],
  ['llama3', 'f32', 1e-4],
  ['qwen3', 'f32', 1e-4],
  ['smollm3', 'f32', 1e-4],
  ['llama3', 'f16', 2e-2],
  ['qwen3', 'f16', 2e-2],
  ['smollm3', 'f16', 2e-2],
  // Gemma 3: its sliding layer's window (6) is shorter than the 9 positions decoded.
  ['gemma3', 'f32', 1e-4],
  ['gemma3', 'f16', 2e-2],
];

// Sliding windows (3 on Mistral's every layer; Qwen2's layer 1 only) shorter than the 9 positions decoded.
const windowed: [TinyArch, Precision, number, Record<string, unknown>][] = [
  ['mistral', 'f32', 1e-4, { sliding_window: 3 }],
  ['qwen2', 'f32', 1e-4, { use_sliding_window: true, sliding_window: 3, max_window_layers: 1 }],
  ['mistral', 'f16', 2e-2, { sliding_window: 3 }],
];

describe('KV-cache inference matches the f64 reference forward of a checkpoint', () => {
  const B = 2;
  const T = 9;
  const all = [
    ...cases.map(([arch, precision, tol]) => [arch, precision, tol, '', undefined] as const),
    ...windowed.map(
      ([arch, precision, tol, config]) => [arch, precision, tol, ' (sliding window 3)', config] as const,
    ),
  ];
  it.each(all)(
    '%s %s: prefill logits at every position, then decode step by step (rel < %s)%s',
    async (arch, precision, tol, _windowed, config) => {
      if (precision === 'f16' && skipF16) return;
      const { tiny, opened, loaded } = await loadFixture(arch, precision, config);
      const model = asInferenceModel(loaded.withAdapters(new Map()));
      const V = opened.spec.vocab;
      const tokens = randomTokens(V, B * T, 4);
      const ref = transformerForwardRef(opened.spec, tiny.tensors, tokens, B, T, {
        prefix: opened.weights.prefix,
      });

      // Prefill of the whole sequence at offset 0: the logits of every position.
      const full = session(model, { batch: B, capacity: 16 });
      const error = expectClose(
        `${arch} ${precision} prefill logits`,
        await full.forward(tokens, 'all'),
        ref,
        tol,
      );
      console.log(`${arch} ${precision}: prefill logits max rel error ${error.toExponential(2)}`);
      expect(full.length).toBe(T);

      // Prefill 5 tokens in chunks of 4 (+1), then decode the rest one at a time: last-position logits.
      const kv = session(model, { batch: B, capacity: 16, maxChunk: 4 });
      const column = (t0: number, t1: number) =>
        Array.from({ length: B }, (_, b) => tokens.slice(b * T + t0, b * T + t1)).flat();
      const prefill = await kv.forward(column(0, 5));
      expectClose(`${arch} ${precision} chunked prefill, position 4`, prefill, rowsAt(ref, B, T, V, 4), tol);
      let decodeError = 0;
      for (let t = 5; t < T; t++) {
        const logits = await kv.forward(column(t, t + 1));
        const at = `${arch} ${precision} decode, position ${t}`;
        decodeError = Math.max(decodeError, expectClose(at, logits, rowsAt(ref, B, T, V, t), tol));
      }
      console.log(`${arch} ${precision}: decode logits max rel error ${decodeError.toExponential(2)}`);
      expect(kv.length).toBe(T);
      await expect(kv.forward(new Array(B * 8).fill(0))).rejects.toThrow(/capacity/);
      await expect(kv.forward([0, V])).rejects.toThrow(/vocabulary/);
    },
  );
});

describe('LoRA at inference (unmerged, dropout off)', () => {
  it.each(['llama', 'qwen3', 'gemma3', 'gpt2'] as const)(
    '%s: logits match the f64 reference with the adapter and the training forward',
    async (arch) => {
      const { tiny, opened, loaded } = await loadFixture(arch, 'f32');
      const spec = opened.spec;
      const modules =
        arch === 'gpt2'
          ? Array.from({ length: spec.layers }, (_, l) =>
              GPT2_LINEARS.map((name) => ({
                key: gpt2ModulePath(l, name),
                ...gpt2LinearShape(gpt2Dims(spec), name),
              })),
            ).flat()
          : Array.from({ length: spec.layers }, (_, l) =>
              LLAMA_LINEARS.map((name) => ({
                key: llamaModulePath(l, name),
                ...linearShape(llamaDims(spec), name),
              })),
            ).flat();
      // Dropout 0.5 on every adapter: inference must ignore it.
      const { host, gpu: adapters } = randomAdapters(gpu, modules, { rank: 3, seed: 9, dropout: 0.5 });
      const refLora: RefLora = {
        scaling: 2,
        adapters: new Map(
          host.map((h: HostAdapter) => [
            h.key,
            { A: { shape: [h.r, h.inFeatures], data: h.a }, B: { shape: [h.outFeatures, h.r], data: h.b } },
          ]),
        ),
      };
      const B = 2;
      const T = 7;
      const V = spec.vocab;
      const tokens = randomTokens(V, B * T, 12);
      const model = asInferenceModel(loaded.withAdapters(adapters));
      const logits = await session(model, { batch: B, capacity: T }).forward(tokens, 'all');
      const prefix = opened.weights.prefix;
      const ref = transformerForwardRef(spec, tiny.tensors, tokens, B, T, { prefix, lora: refLora });
      const loraError = expectClose(`${arch} LoRA logits vs f64 reference`, logits, ref, 1e-4);
      console.log(`${arch}: unmerged LoRA logits max rel error ${loraError.toExponential(2)}`);
      const base = await session(asInferenceModel(loaded.withAdapters(new Map())), {
        batch: B,
        capacity: T,
      }).forward(tokens, 'all');
      const change = Math.max(...logits.map((v, i) => Math.abs(v - base[i])));
      expect(change, 'the adapter changes the logits').toBeGreaterThan(0.05);

      // The training forward (same adapters without dropout) computes −log softmax(logits)[target] per token.
      const noDropout = new Map([...adapters].map(([k, a]) => [k, { ...a, dropout: undefined }]));
      const train = loaded.withAdapters(noDropout);
      const acts = train.createActivations(loaded.arena, B, T);
      const targets = randomTokens(V, B * T, 13);
      gpu.device.queue.writeBuffer(acts.tokens, 0, Uint32Array.from(tokens));
      gpu.device.queue.writeBuffer(acts.targets, 0, Int32Array.from(targets));
      const rec = new CommandRecorder(gpu);
      train.forward(rec, acts, { invNormaliser: 1 / (B * T), accumulate: false });
      await rec.submitAndWait();
      rec.destroy();
      const losses = await download(gpu, acts.losses, B * T, 'f32');
      const expected = targets.map((target, n) => {
        const row = logits.subarray(n * V, (n + 1) * V);
        const max = Math.max(...row);
        const z = row.reduce((sum, v) => sum + Math.exp(v - max), 0);
        return Math.log(z) + max - row[target];
      });
      expectClose(
        `${arch} training per-token loss vs −log softmax of inference logits`,
        losses,
        expected,
        1e-5,
      );
    },
  );
});

describe('a trained Gemma 3 adapter through PEFT files', () => {
  it('exported, imported and run unmerged: logits equal the f64 reference with the same adapter (rel < 1e-4)', async () => {
    const { tiny, opened, loaded } = await loadFixture('gemma3', 'f32');
    const spec = opened.spec;
    const lora = { r: 4, alpha: 8, dropout: 0.1, targets: 'all-linear' as const, rslora: false };
    const rows = randomExamples(spec.vocab, 4, 10, 31);
    const trainer = new Trainer(gpu, loaded, rows, [], 0, {
      lora,
      optimizer: 'adamw',
      lr: 1e-2,
      schedule: 'constant',
      batch: 2,
      accum: 1,
      seq: 9,
      steps: 3,
      maxGradNorm: 1,
      seed: 3,
    });
    await trainer.run();
    const params = await trainer.readParams();
    const files = exportPeftAdapter(lora, spec, trainer.layout, params, { baseModel: 'tiny-gemma3' });
    trainer.destroy();
    const imported = await importPeftAdapter(files[ADAPTER_CONFIG_FILE], files[ADAPTER_WEIGHTS_FILE], spec);
    expect(imported.params).toEqual(params);
    expect(imported.layout.modules).toHaveLength(7 * spec.layers);

    const B = 2;
    const T = 9; // longer than the sliding layer's window (6)
    const tokens = randomTokens(spec.vocab, B * T, 32);
    const arena = new BufferArena(gpu);
    const adapters = loraAdapters(
      imported.config,
      imported.layout,
      arena.upload('adapter', imported.params),
      null,
    );
    const model = asInferenceModel(loaded.withAdapters(adapters));
    const logits = await session(model, { batch: B, capacity: T }).forward(tokens, 'all');
    const refAdapters = new Map(
      imported.layout.modules.map((m, i) => {
        const [a, b] = imported.layout.segments.filter((s) => s.module === i);
        const view = (seg: typeof a) => ({
          shape: seg.shape,
          data: imported.params.subarray(seg.offset, seg.offset + seg.length),
        });
        return [m.path, { A: view(a), B: view(b) }];
      }),
    );
    const ref = transformerForwardRef(spec, tiny.tensors, tokens, B, T, {
      prefix: opened.weights.prefix,
      lora: { scaling: loraScaling(imported.config), adapters: refAdapters },
    });
    const error = expectClose('gemma3 imported adapter logits vs f64 reference', logits, ref, 1e-4);
    console.log(`gemma3: trained adapter through PEFT files, logits max rel error ${error.toExponential(2)}`);
    // The adapter is not a no-op: the base model's logits differ.
    const base = transformerForwardRef(spec, tiny.tensors, tokens, B, T, { prefix: opened.weights.prefix });
    expect(compare(base, ref, 1e-4).relError).toBeGreaterThan(1e-3);
    arena.destroy();
  });
});

describe('greedy generation with the KV cache equals the argmax of a full forward at every step', () => {
  const families = [
    ['Llama (GQA 4:2)', (dtype: Precision) => buildTinyLlama(gpu, dtype, { seed: 5 })],
    [
      'Qwen2 (q/k/v bias, GQA 4:1)',
      (dtype: Precision) =>
        buildTinyLlama(gpu, dtype, {
          seed: 6,
          dims: { ...TINY_LLAMA, kvHeads: 1, qkvBias: true, rmsNormEps: 1e-6, ropeTheta: 1e6 },
        }),
    ],
    [
      'Qwen3 (q/k norms, head dim 48): the cache holds the normed k',
      (dtype: Precision) =>
        buildTinyLlama(gpu, dtype, {
          seed: 8,
          dims: { ...TINY_LLAMA, headDim: 48, qkNorm: true, rmsNormEps: 1e-6, ropeTheta: 1e6 },
        }),
    ],
    [
      'SmolLM3 (layer 1 without RoPE), Llama 3.2 RoPE scaling',
      (dtype: Precision) =>
        buildTinyLlama(gpu, dtype, {
          seed: 9,
          dims: {
            ...TINY_LLAMA,
            noRopeLayers: [1],
            ropeScaling: {
              type: 'llama3',
              factor: 32,
              lowFreqFactor: 1,
              highFreqFactor: 4,
              originalMaxPositions: 16,
            },
          },
        }),
    ],
    [
      'Gemma 3 (sliding window 3 with its own RoPE base, then global; q/k norms; score scale 32^−½)',
      (dtype: Precision) => buildTinyGemma3(gpu, dtype, { seed: 10 }),
    ],
    ['GPT-2', (dtype: Precision) => buildTinyGpt2(gpu, dtype, { seed: 7 })],
    [
      'sliding windows 3 and 2 (Mistral, Qwen2), 17 positions',
      (dtype: Precision) => buildTinyLlama(gpu, dtype, { seed: 8, dims: { ...TINY_LLAMA, windows: [3, 2] } }),
    ],
  ] as const;
  const matrix = families.flatMap(([name, build]) =>
    (['f32', 'f16'] as const).map((dtype) => [name, dtype, build] as const),
  );

  it.each(matrix)('%s %s (with LoRA on every linear)', async (name, dtype, build) => {
    if (dtype === 'f16' && skipF16) return;
    const tiny = build(dtype);
    const model = tiny.model;
    const prompt = randomTokens(model.vocab, 5, 21);
    const steps = 12;
    const cached = session(model, { capacity: 24 });
    const result = await generate(cached, prompt, { maxNewTokens: steps });
    expect(result.tokens).toHaveLength(steps);
    expect(result.stopReason).toBe('length');

    // Full forward over the growing sequence each step, from an empty cache (offset 0, T = length).
    const full = session(model, { capacity: 24 });
    const seq = [...prompt];
    let exact = 0;
    for (const id of result.tokens) {
      full.reset();
      const logits = await full.forward(seq);
      const max = Math.max(...logits);
      const scale = Math.max(...logits.map(Math.abs));
      // f16 activations round differently with T = 1 and T = length: a near-tie may flip, nothing more.
      const tol = (dtype === 'f16' ? 2e-2 : 1e-5) * scale;
      expect(logits[id], `${name} ${dtype} step ${seq.length - prompt.length}`).toBeGreaterThanOrEqual(
        max - tol,
      );
      if (logits[id] === max) exact++;
      seq.push(id);
    }
    if (dtype === 'f32') expect(exact).toBe(steps);
    tiny.arena.destroy();
  });
});

describe('generation with a tokenizer', () => {
  it('streams pieces that add up to the decoded text; the same seed reproduces the tokens', async () => {
    const { opened, loaded } = await loadFixture('llama', 'f32');
    const model = asInferenceModel(loaded.withAdapters(new Map()));
    const s = session(model, { capacity: 40 });
    const prompt = opened.tokenizer.encode('the quick brown fox');
    const run = async () => {
      const pieces: string[] = [];
      const result = await generate(s, prompt, {
        maxNewTokens: 16,
        temperature: 1,
        topK: 40,
        topP: 0.95,
        seed: 3,
        tokenizer: opened.tokenizer,
        eosTokenIds: opened.tokenizer.eosTokenId === null ? [] : [opened.tokenizer.eosTokenId],
        onToken: (_id, text) => pieces.push(text),
      });
      return { result, pieces };
    };
    const first = await run();
    const second = await run();
    expect(second.result.tokens).toEqual(first.result.tokens);
    expect(first.result.tokens.length).toBeGreaterThan(0);
    expect(first.pieces.join('')).toBe(first.result.text!.replace(/\uFFFD+$/, ''));
    expect(first.result.text).toBe(opened.tokenizer.decode(first.result.tokens));
  });

  it('an EOS first generates nothing: empty text, stop reason eos (the tokenizer never decodes [])', async () => {
    const { opened, loaded } = await loadFixture('llama', 'f32');
    const s = session(asInferenceModel(loaded.withAdapters(new Map())), { capacity: 16 });
    const everyId = Array.from({ length: opened.spec.vocab }, (_, i) => i);
    const result = await generate(s, opened.tokenizer.encode('the quick'), {
      maxNewTokens: 4,
      tokenizer: opened.tokenizer,
      eosTokenIds: everyId,
    });
    expect(result).toMatchObject({ tokens: [], text: '', stopReason: 'eos' });
  });
});
