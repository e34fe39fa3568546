// The autotuner's pure parts: which matmuls a model's training step records (so the classes tuned are the
// classes that run), how problems fold into shape classes, and how a winner is picked from measured times.
import { describe, expect, it } from 'vitest';
import {
  dedupeTasks,
  matmulTasks,
  modelMatmulProblems,
  pickWinner,
  runTuneOptions,
  type MatmulProblem,
  type TuneModelShape,
} from '../../../src/engine/kernels/autotune.ts';
import { chooseSplits } from '../../../src/engine/kernels/matmul.ts';
import { blockLinears } from '../../../src/engine/lora/config.ts';

const LIMITS = {
  minStorageBufferOffsetAlignment: 256,
  maxStorageBufferBindingSize: 2 ** 30,
  maxBufferSize: 2 ** 30,
};
/** SmolLM2-135M. */
const smol: TuneModelShape = {
  family: 'llama',
  hidden: 576,
  ffn: 1536,
  heads: 9,
  kvHeads: 3,
  headDim: 64,
  layers: 30,
  vocab: 49152,
};
const gpt2: TuneModelShape = {
  family: 'gpt2',
  hidden: 768,
  ffn: 3072,
  heads: 12,
  kvHeads: 12,
  headDim: 64,
  layers: 12,
  vocab: 50257,
};

const smolTypes = { a: 'f32', b: 'f32', c: 'f32' } as const;
const find = (problems: MatmulProblem[], label: string) => problems.filter((p) => p.label === label);

describe('a model step’s matmuls', () => {
  const smolProblems = modelMatmulProblems(smol, LIMITS, { tokens: 1024, rank: 16, dtype: 'f16' });

  it('per linear and layer: forward, input gradient and the four LoRA products, as linear.ts runs them', () => {
    expect(smolProblems.length).toBe(30 * 7 * 6 + 2);
    const [q] = find(smolProblems, 'q_proj fwd X·Wᵀ');
    expect(q).toMatchObject({ dims: { M: 1024, N: 576, K: 576 }, transB: true });
    expect(q.types).toEqual({ a: 'f16', b: 'f16', c: 'f16' });
    const [k] = find(smolProblems, 'k_proj bwd dX = dY·W');
    expect(k).toMatchObject({ dims: { M: 1024, N: 576, K: 192 }, transB: false });
    const [u] = find(smolProblems, 'down_proj LoRA u = X·Aᵀ');
    expect(u).toMatchObject({ dims: { M: 1024, N: 16, K: 1536 }, transB: true });
    expect(u.types).toEqual({ a: 'f16', b: 'f32', c: 'f32' });
    const [dA] = find(smolProblems, 'up_proj LoRA dA += s·vᵀ·X');
    expect(dA).toMatchObject({ dims: { M: 16, N: 576, K: 1024 }, transA: true, beta: 1 });
    expect(dA.splits).toBe(chooseSplits({ M: 16, N: 576, K: 1024 }));
    expect(dA.splits).toBeGreaterThan(1);
    expect(dA.types).toEqual({ a: 'f32', b: 'f16', c: 'f32' });
    const [dB] = find(smolProblems, 'gate_proj LoRA dB += s·dYᵀ·u');
    expect(dB).toMatchObject({ dims: { M: 1536, N: 16, K: 1024 }, transA: true });
    // The up-projection rides inside the base products (a K-extension): no products of its own.
    expect(smolProblems.some((p) => /s·u·Bᵀ|s·v·A/.test(p.label))).toBe(false);
  });

  it('the LM head in vocabulary chunks, fused: logits into f32 once a step, G ← α∘G + P·W_c in f32', () => {
    const [logits] = find(smolProblems, 'head logits = H·W_cᵀ');
    expect(logits).toMatchObject({ dims: { M: 1024, N: 8192, K: 576 }, transB: true, calls: 6 });
    expect(logits.types).toEqual({ a: 'f16', b: 'f16', c: 'f32' });
    const [g] = find(smolProblems, 'head G ← α∘G + P·W_c');
    expect(g).toMatchObject({ dims: { M: 1024, N: 576, K: 8192 }, calls: 6, beta: 1 });
    expect(g.types).toEqual({ a: 'f32', b: 'f16', c: 'f32' });
  });

  it('a last, shorter vocabulary chunk is a problem of its own', () => {
    const problems = modelMatmulProblems(gpt2, LIMITS, { tokens: 512, rank: 8, dtype: 'f32' });
    const logits = find(problems, 'head logits = H·W_cᵀ');
    expect(logits.map((p) => [p.dims.N, p.calls])).toEqual([
      [8192, 6],
      [50257 - 6 * 8192, 1],
    ]);
  });

  it("GPT-2's Conv1D weight (in, out): NN forward, NT input gradient", () => {
    const problems = modelMatmulProblems(gpt2, LIMITS, { tokens: 512, rank: 8, dtype: 'f32' });
    const [fwd] = find(problems, 'c_attn fwd X·Wᵀ');
    expect(fwd).toMatchObject({ dims: { M: 512, N: 2304, K: 768 }, transB: false });
    const [bwd] = find(problems, 'c_fc bwd dX = dY·W');
    expect(bwd).toMatchObject({ dims: { M: 512, N: 768, K: 3072 }, transB: true });
  });

  it('only the adapted linears get LoRA products; the run’s tokens and rank come from its options', () => {
    const run = {
      batch: 2,
      seq: 64,
      lora: { r: 4, alpha: 8, dropout: 0, targets: ['v_proj'], rslora: false },
    };
    const options = runTuneOptions(smol, run);
    expect(options).toMatchObject({ tokens: 128, rank: 4 });
    expect(options.adapted?.map((m) => m.name)).toEqual(Array(30).fill('v_proj'));
    const problems = modelMatmulProblems(smol, LIMITS, { ...options, dtype: 'f32' });
    const lora = problems.filter((p) => p.label.includes('LoRA'));
    expect(lora.length).toBe(30 * 4);
    expect(lora.every((p) => p.label.startsWith('v_proj'))).toBe(true);
  });
});

describe('shape classes', () => {
  it('fold a step into few classes, launches summed, a tiled-eligible representative kept', () => {
    const problems = modelMatmulProblems(smol, LIMITS, { tokens: 1024, rank: 16, dtype: 'f16' });
    const tasks = matmulTasks(problems);
    expect(tasks.length).toBeLessThan(40);
    expect(tasks.reduce((n, t) => n + t.calls, 0)).toBe(30 * 7 * 6 + 6 + 6);
    const keys = tasks.map((t) => `${t.family}/${t.shapeClass}`);
    expect(new Set(keys).size).toBe(keys.length);
    // K = 575 (rows not vec4-readable) and 576 share a class; the eligible 576 stands for it.
    const odd: MatmulProblem = { label: 'odd', dims: { M: 64, N: 576, K: 575 }, types: smolTypes };
    const even: MatmulProblem = { ...odd, label: 'even', dims: { M: 64, N: 576, K: 576 } };
    const [merged] = matmulTasks([odd, even]);
    expect(merged.label).toMatch(/^even /);
    expect(merged.calls).toBe(2);
  });

  it('dedupeTasks keeps one task per family/class and sums launches', () => {
    const dims = { M: 64, N: 64, K: 64 };
    const [a] = matmulTasks([{ label: 'a', dims, types: smolTypes }]);
    const [b] = matmulTasks([{ label: 'b', dims, types: smolTypes, calls: 3 }]);
    const tasks = dedupeTasks([a, b]);
    expect(tasks.length).toBe(1);
    expect(tasks[0]).toMatchObject({ label: a.label, calls: 4 });
    expect(typeof tasks[0].prepare).toBe('function');
  });
});

describe('pickWinner', () => {
  it('the fastest, unless the heuristic is within 3 % of it; failures never win', () => {
    const times = [
      { variant: 'generic', ms: 5 },
      { variant: 't64x64', ms: 1.02 },
      { variant: 't32x32', ms: 1 },
      { variant: 't128x128', ms: null, error: 'no' },
    ];
    expect(pickWinner(times, 't64x64')).toBe('t64x64');
    expect(pickWinner(times, 'generic')).toBe('t32x32');
    expect(pickWinner(times.slice(3), 't128x128')).toBeNull();
    expect(pickWinner([{ variant: 'generic', ms: 0.5 }, ...times], 't32x32')).toBe('generic');
  });
});

it('blockLinears drives the problems (one forward per linear and layer)', () => {
  const problems = modelMatmulProblems(smol, LIMITS, { tokens: 8, rank: 2, dtype: 'f32', adapted: [] });
  expect(problems.filter((p) => p.label.includes(' fwd ')).length).toBe(blockLinears(smol).length);
});
