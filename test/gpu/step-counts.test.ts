// A structural guard on the training step's command stream (not a timing): how many dispatches, compute passes
// and submits one optimizer step records, that a step after the first creates no bind group (everything is found
// again by the recorder's caches), and that from the third step on the step is replayed. A change that adds
// dispatches per layer, splits the pass, or makes a step's commands differ from the last one fails here.
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, type LoadedModel } from '../../src/engine/model/load.ts';
import { openModel } from '../../src/engine/model/open.ts';
import { Trainer } from '../../src/engine/train/trainer.ts';
import { modelTuneTasks, runTuneOptions } from '../../src/engine/kernels/autotune.ts';
import { randomExamples } from '../fixtures/examples.ts';
import { buildTinyModel, tinyModelFiles } from '../fixtures/tiny-models.ts';
import { testGpu } from './harness.ts';

const gpu = await testGpu();
const loaded: LoadedModel[] = [];
afterAll(() => loaded.forEach((m) => m.destroy()));

/**
 * Dispatches per step today, as budgets: per layer (LoRA on every linear, with dropout, accum 2 counts both
 * micro-batches) plus the head and optimizer. Lower them when a fusion lands; never raise them without a reason.
 */
const BUDGET: Record<'llama' | 'qwen3' | 'gemma3' | 'gpt2', { perLayer: number; rest: number }> = {
  llama: { perLayer: 2 * 36, rest: 2 * 8 + 4 },
  // Llama's, plus the per-head q/k norms: two launches forward, two backward.
  qwen3: { perLayer: 2 * 40, rest: 2 * 8 + 4 },
  // Qwen3's, plus the sandwich: each branch's post-norm and its residual add (4 forward), the post-norms'
  // backward (2); the residual no longer rides in o_proj's and down_proj's epilogues.
  gemma3: { perLayer: 2 * 46, rest: 2 * 8 + 4 },
  gpt2: { perLayer: 2 * 28, rest: 2 * 8 + 4 },
};
/**
 * The LoRA gradients' token split (kernels/lora-grads.ts, by default from 512 tokens a micro-batch on a GPU;
 * forced here with chunks of 8 of the 24 tokens) adds a reduce after each of a layer's 3 gradient dispatches: 3
 * per layer and micro-batch, so 2 · 3 more per layer here (+90 a step on SmolLM2-135M's 30 layers, accum 1).
 */
const SPLIT_PER_LAYER = 2 * 3;

const LORA = { r: 4, alpha: 8, dropout: 0.1, targets: 'all-linear', rslora: false } as const;

/** Four optimizer steps of a tiny model: each step's counts, and how many dispatches each step replayed. */
async function stepCounts(
  arch: keyof typeof BUDGET,
  tune?: (model: LoadedModel) => void,
  gradChunkTokens?: number,
) {
  const opened = await openModel(tinyModelFiles(buildTinyModel({ arch, dtype: 'F32' })));
  const model = await loadModel(gpu, opened, { precision: 'f32' });
  loaded.push(model);
  tune?.(model);
  const rows = randomExamples(model.spec.vocab, 8, 13, 29);
  const trainer = new Trainer(gpu, model, rows, [], 0, {
    lora: LORA,
    optimizer: 'adamw',
    lr: 1e-3,
    schedule: 'cosine',
    warmupSteps: 1,
    batch: 2,
    accum: 2,
    seq: 12,
    steps: 4,
    maxGradNorm: 1,
    seed: 5,
    gradChunkTokens,
  });
  const counts = [];
  const replayed = [];
  for (let step = 0; step < 4; step++) {
    const before = { ...gpu.stats };
    const metrics = trainer.submitStep();
    counts.push(Object.fromEntries(Object.entries(gpu.stats).map(([k, v]) => [k, v - before[k as 'flops']])));
    replayed.push(trainer.lastStepCounts.replayed);
    await metrics();
  }
  trainer.destroy();
  return { model, counts, replayed };
}

describe('one training step’s command stream', () => {
  it.each([
    ['llama', undefined],
    ['qwen3', undefined],
    ['gemma3', undefined],
    ['gpt2', undefined],
    ['llama', 8],
    ['gemma3', 8],
    ['gpt2', 8],
  ] as const)(
    '%s, gradient chunks of %s tokens: one submit, ≤ 2 passes, dispatches within budget, nothing made after step 1',
    async (arch, gradChunkTokens) => {
      const { model, counts, replayed } = await stepCounts(arch, undefined, gradChunkTokens);
      const budget = BUDGET[arch];
      const perLayer = budget.perLayer + (gradChunkTokens ? SPLIT_PER_LAYER : 0);
      console.log(
        `${arch} (${model.spec.layers} layers, chunks ${gradChunkTokens}): ${JSON.stringify(counts[2])}`,
      );
      for (const c of counts) {
        expect(c.submits).toBe(1);
        expect(c.passes).toBeLessThanOrEqual(2);
        expect(c.dispatches).toBeLessThanOrEqual(model.spec.layers * perLayer + budget.rest);
      }
      // Later steps (another dropout step, learning rate, loss normaliser): the dropout step is a GPU word and
      // the scalars are StepScalar uniform words, so no bind group is made; step 2 records the same commands as
      // step 1, which confirms the capture, and steps 3 and 4 replay it without running the model's code.
      for (const c of counts.slice(1)) expect(c.bindGroups).toBe(0);
      expect(replayed).toEqual([0, 0, counts[2].dispatches, counts[3].dispatches]);
      for (const c of counts.slice(2)) expect(c.dispatches).toBe(counts[1].dispatches);
    },
  );

  it('llama with the rank-r products on the skinny matmul (as tuned on a GPU where it wins): the same counts', async () => {
    const tiled = await stepCounts('llama');
    const ran = new Set<string>();
    const get = gpu.pipelines.get.bind(gpu.pipelines);
    gpu.pipelines.get = (program) => (ran.add(program.name), get(program));
    try {
      const skinny = await stepCounts('llama', (model) => {
        const options = {
          ...runTuneOptions(model.spec, { batch: 2, seq: 12, lora: LORA }),
          dtype: 'f32' as const,
        };
        for (const task of modelTuneTasks(gpu, model.spec, options)) {
          if (task.candidates(gpu).includes('skinny')) gpu.tuning.set('matmul', task.shapeClass, 'skinny');
        }
      });
      // v = dy·B and u = dropout(x)·Aᵀ (and any other product of ≤ 64 columns without fused extras).
      expect([...ran]).toEqual(expect.arrayContaining(['matmul.skinny16', 'matmul.skinny16+mask_a+rng']));
      expect(skinny.counts).toEqual(tiled.counts);
      expect(skinny.replayed).toEqual(tiled.replayed);
    } finally {
      gpu.pipelines.get = get;
      gpu.tuning.clear();
    }
  });
});
