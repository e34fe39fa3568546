// Autotuning on the device (lavapipe here): every shape class of a tiny model's training step gets a timed
// choice, and matmul() then dispatches exactly that choice. Timings are never asserted, only what was chosen
// and what ran. (Every variant giving the same product is matmul.test.ts's business.)
import { describe, expect, it } from 'vitest';
import {
  BufferArena,
  CommandRecorder,
  Gpu,
  Profiler,
  type RecordingCounts,
} from '../../src/engine/gpu/index.ts';
import {
  autotune,
  matmulTask,
  modelMatmulProblems,
  modelTuneTasks,
  problemTiled,
  type TuneModelShape,
} from '../../src/engine/kernels/autotune.ts';
import { matmulShapeClass } from '../../src/engine/kernels/matmul.ts';
import { blockLinears } from '../../src/engine/lora/config.ts';
import { testGpu } from './harness.ts';

const gpu = await testGpu();

/** Awkward sizes on purpose: ffn 44 and vocab 70 are no tile multiples (70 rows are not vec4-readable). */
const llama: TuneModelShape = {
  family: 'llama',
  hidden: 32,
  ffn: 44,
  heads: 4,
  kvHeads: 2,
  headDim: 8,
  layers: 2,
  vocab: 70,
};
const gpt2: TuneModelShape = { ...llama, family: 'gpt2', kvHeads: 4, ffn: 128, layers: 1 };
const TOKENS = 12;
const RANK = 4;

/** The matmul variant a recording ran (tiled, skinny, or generic for the strided kernel), from the program names. */
function ranVariant(counts: RecordingCounts): string {
  const names = [...counts.kernels.keys()];
  expect(names.every((n) => n === 'matmul' || n.startsWith('matmul.'))).toBe(true);
  const tiled = new Set(names.flatMap((n) => /^matmul\.(t\d+x\d+|skinny)/.exec(n)?.[1] ?? []));
  expect(tiled.size).toBeLessThanOrEqual(1);
  return [...tiled][0] ?? 'generic';
}

// GPT-2 with one adapted linear: its own point is the Conv1D layout of the base products (the LoRA products
// do not depend on it), and fewer classes keep the test short on a loaded software driver.
const cases = [
  { name: 'llama f32', shape: llama, dtype: 'f32' as const, adapted: undefined },
  {
    name: 'gpt2 (Conv1D: NN forward, NT backward) f16',
    shape: gpt2,
    dtype: 'f16' as const,
    adapted: blockLinears(gpt2).slice(0, 1),
  },
];

describe.each(cases)('autotune $name', ({ shape, dtype, adapted }) => {
  const skip = dtype === 'f16' && !gpu.hasF16;
  const options = { tokens: TOKENS, rank: RANK, dtype, adapted };

  it.skipIf(skip)(
    'fills gpu.tuning for every class, and matmul() dispatches each choice',
    async () => {
      gpu.tuning.clear();
      const tasks = modelTuneTasks(gpu, shape, options);
      const seen: number[] = [];
      const result = await autotune(gpu, tasks, {
        budgetMs: 600_000,
        runs: 2,
        onProgress: (done) => seen.push(done),
      });
      expect(result.status).toBe('tuned');
      expect(result.untimed).toBe(0);
      expect(seen.at(-1)).toBe(seen.length - 1); // one report per candidate, then the final one
      const tunable = tasks.filter((t) => t.candidates(gpu).length > 1);
      expect(tunable.length).toBeGreaterThan(5);
      expect(result.classes.map((c) => c.shapeClass).sort()).toEqual(tunable.map((t) => t.shapeClass).sort());
      for (const c of result.classes) {
        expect(c.candidates.every((x) => x.ms !== null && x.ms >= 0)).toBe(true);
        expect(c.winner).not.toBeNull();
        expect(gpu.tuning.get('matmul', c.shapeClass)).toBe(c.winner);
      }
      // Every matmul of the step, not only each class's representative, runs its class's choice.
      const arena = new BufferArena(gpu);
      const rec = new CommandRecorder(gpu);
      try {
        for (const p of modelMatmulProblems(shape, gpu.limits, options)) {
          const layout = { aK: !p.transA, bK: p.transB === true };
          const choice = gpu.tuning.get('matmul', matmulShapeClass(p.dims, layout, p.types));
          if (problemTiled(p)) expect(choice, p.label).toBeDefined();
          matmulTask(p).prepare(gpu, arena)(rec);
          const counts = rec.counts;
          rec.submit();
          expect(ranVariant(counts), p.label).toBe(problemTiled(p) ? choice : 'generic');
        }
        await rec.submitAndWait();
      } finally {
        rec.destroy();
        arena.destroy();
      }
    },
    400_000,
  );

  it.skipIf(skip)('times nothing again once every class has a choice', async () => {
    const before = gpu.tuning.toRecord();
    const dispatches = gpu.stats.dispatches;
    const result = await autotune(gpu, modelTuneTasks(gpu, shape, options));
    expect(result.status).toBe('cached');
    expect(result.classes).toEqual([]);
    expect(gpu.stats.dispatches).toBe(dispatches);
    expect(gpu.tuning.toRecord()).toEqual(before);
  });
});

describe('autotune limits', () => {
  it('the budget is checked between classes: the hottest is always tuned, the rest keep the heuristic', async () => {
    gpu.tuning.clear();
    const tasks = modelTuneTasks(gpu, llama, { tokens: TOKENS, rank: RANK, dtype: 'f32' });
    const tunable = tasks.filter((t) => t.candidates(gpu).length > 1);
    const result = await autotune(gpu, tasks, { budgetMs: 1, runs: 1 });
    expect(result.status).toBe('tuned');
    expect(result.classes).toHaveLength(1);
    const hottest = tunable.reduce((a, b) => (b.flops * b.calls > a.flops * a.calls ? b : a));
    expect(result.classes[0].shapeClass).toBe(hottest.shapeClass);
    expect(result.untimed).toBe(tunable.length - 1);
    expect(gpu.tuning.entries()).toEqual([[`matmul/${hottest.shapeClass}`, result.classes[0].winner]]);
    expect(gpu.tuning.tunedAt).not.toBeNull();
    gpu.tuning.clear();
  });

  it('a stop keeps the classes already timed and drops the one in progress', async () => {
    gpu.tuning.clear();
    const tasks = modelTuneTasks(gpu, llama, { tokens: TOKENS, rank: RANK, dtype: 'f32' });
    const stop = new AbortController();
    const first = await autotune(gpu, tasks, { runs: 1, budgetMs: 1, signal: stop.signal });
    const [done] = first.classes;
    expect(gpu.tuning.entries()).toEqual([[`matmul/${done.shapeClass}`, done.winner]]);
    const result = await autotune(gpu, tasks, {
      runs: 1,
      signal: stop.signal,
      onProgress: (n) => n === 1 && stop.abort(), // after the first variant of the next class
    });
    expect(result.classes).toHaveLength(1);
    expect(result.classes[0].winner).toBeNull();
    expect(result.classes[0].candidates).toHaveLength(1);
    expect(result.message).toMatch(/left to the defaults: stopped/);
    expect(gpu.tuning.entries()).toEqual([[`matmul/${done.shapeClass}`, done.winner]]);
    gpu.tuning.clear();
  });

  it("without 'timestamp-query' nothing is timed and the result says so", async () => {
    const plain = new Gpu(gpu.device, { ...gpu.adapter }, gpu.precision);
    Object.defineProperty(plain, 'hasTimestamps', { get: () => false });
    const dispatches = plain.stats.dispatches;
    const result = await autotune(plain, modelTuneTasks(plain, llama, { tokens: TOKENS, rank: RANK }));
    expect(result.status).toBe('no-timestamps');
    expect(result.message).toMatch(/no GPU timestamps/);
    expect(plain.tuning.size).toBe(0);
    expect(plain.stats.dispatches).toBe(dispatches);
  });

  it("a tuned 'generic' is honoured: the strided kernel runs although tiled variants could", async () => {
    gpu.tuning.clear();
    const [linear] = blockLinears(llama);
    const [forward] = modelMatmulProblems(llama, gpu.limits, { tokens: 16, rank: RANK, dtype: 'f32' });
    expect(forward.label).toBe(`${linear.name} fwd X·Wᵀ`);
    const task = matmulTask(forward);
    expect(task.candidates(gpu).length).toBeGreaterThan(1);
    const arena = new BufferArena(gpu);
    const rec = new CommandRecorder(gpu);
    const launch = task.prepare(gpu, arena);
    launch(rec);
    expect(ranVariant(rec.counts)).toBe(task.heuristic(gpu));
    rec.submit();
    gpu.tuning.set('matmul', task.shapeClass, 'generic');
    launch(rec);
    expect(ranVariant(rec.counts)).toBe('generic');
    await rec.submitAndWait();
    rec.destroy();
    arena.destroy();
    gpu.tuning.clear();
  });

  it('a timed pass holds every launch recorded in it and gives one duration', async () => {
    const task = matmulTask(
      modelMatmulProblems(llama, gpu.limits, { tokens: TOKENS, rank: RANK, dtype: 'f32' })[0],
    );
    const arena = new BufferArena(gpu);
    const profiler = new Profiler(gpu, 2);
    const rec = new CommandRecorder(gpu);
    const launch = task.prepare(gpu, arena);
    rec.timedPass(profiler, 'three', () => [0, 1, 2].forEach(() => launch(rec, 't32x32')));
    rec.timedPass(profiler, 'one', () => launch(rec, 'generic'));
    expect(rec.counts.passes).toBe(2);
    expect(rec.counts.dispatches).toBe(4);
    await rec.submitAndWait();
    const durations = await profiler.durations();
    expect(durations.map((d) => d.label)).toEqual(['three', 'one']);
    expect(durations.every((d) => Number.isFinite(d.ms) && d.ms >= 0)).toBe(true);
    const timing = new CommandRecorder(gpu, { profiler });
    expect(() => timing.timedPass(profiler, 'x', () => {})).toThrow(/already times every dispatch/);
    for (const x of [rec, timing]) x.destroy();
    profiler.destroy();
    arena.destroy();
  });
});
