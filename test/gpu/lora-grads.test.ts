// Grouped LoRA weight gradients (shaders/lora-grads.wgsl) against an f64 reference: mixed problem lists of a
// block phase (dB of q, k, v from three dy inputs; dA of several adapters from two x inputs, with dropout) at
// awkward N and r, f32 and f16 inputs; dropout masks bit-exact with the reference hash; accumulation,
// determinism, one dispatch per call with nothing new on the second recording; errors before recording. The
// token split (chunks > 1: partial tiles in a workspace, then a reduce) at awkward N and chunk counts.
import { describe, expect, it } from 'vitest';
import { CommandRecorder, roundToF16, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  loraGrads,
  loraGradsPlan,
  uploadLoraGrads,
  type LoraGradProblem,
  type LoraGradsBindings,
  type LoraGradsPlan,
  type LoraGradsVariant,
} from '../../src/engine/kernels/lora-grads.ts';
import { expectClose } from '../reference/compare.ts';
import { dropoutMaskRef } from '../reference/dropout.ts';
import { loraGradsRef } from '../reference/lora-grads.ts';
import { randomArray } from '../reference/random.ts';
import { download, f16SkipReason, testGpu, upload } from './harness.ts';

const gpu = await testGpu();
const skipF16 = f16SkipReason(gpu);

/** The dropout step is rng[0] + stepOffset: a base word and a micro-batch's index. */
const STEP_BASE = 40;
const STEP_OFFSET = 3;

interface Case {
  problems: LoraGradProblem[];
  tokens: number;
  rankStride: number;
  /** Elements per row of each input tensor. */
  inputCols: number[];
  /** G's length in elements. */
  gradLength: number;
}

/** Host data of a case: inputs as stored (f16-rounded when f16), R, and G's values before the launch. */
function caseData(c: Case, dtype: ScalarType, seed = 1) {
  const round = (x: Float64Array) => (dtype === 'f16' ? roundToF16(x) : x);
  const inputs = c.inputCols.map((cols, j) => round(randomArray(c.tokens * cols, seed + 10 + j)));
  const ranks = Float64Array.from(randomArray(c.tokens * c.rankStride, seed + 2), Math.fround);
  const grads = Float64Array.from(randomArray(c.gradLength, seed + 3), Math.fround);
  return { inputs, ranks, grads };
}

/** Records `launches` calls of one plan (one recorder, one submit) and returns G. */
async function runCase(
  c: Case,
  dtype: ScalarType,
  launches = 1,
  plan?: LoraGradsPlan,
  variant?: LoraGradsVariant,
) {
  const data = caseData(c, dtype);
  plan ??= loraGradsPlan(c.problems, c.tokens, { rankStride: c.rankStride });
  const table = uploadLoraGrads(gpu, plan);
  // The split's workspace starts as NaN: a partial sum the kernel failed to store would poison G.
  const workspace = upload(gpu, new Float64Array(Math.max(1, plan.workspaceWords)).fill(NaN), 'f32');
  const buffers = [
    ...data.inputs.map((x) => upload(gpu, x, dtype)),
    upload(gpu, data.ranks, 'f32'),
    upload(gpu, data.grads, 'f32'),
    upload(gpu, [STEP_BASE], 'u32'),
  ];
  const [ranks, grads, rng] = buffers.slice(-3);
  const bindings: LoraGradsBindings = {
    inputs: buffers.slice(0, -3).map((binding) => ({ binding, dtype })),
    ranks,
    grads,
    rng: { buffer: rng, stepOffset: STEP_OFFSET },
    workspace,
  };
  const rec = new CommandRecorder(gpu);
  for (let i = 0; i < launches; i++) loraGrads(rec, table, bindings, variant);
  const dispatches = rec.counts.dispatches;
  await rec.submitAndWait();
  const actual = await download(gpu, grads, c.gradLength, 'f32');
  rec.destroy();
  table.buffer.destroy();
  workspace.destroy();
  for (const b of buffers) b.destroy();
  return { actual, data, dispatches, plan };
}

function expected(c: Case, data: ReturnType<typeof caseData>, launches = 1): Float64Array {
  let g: Float64Array = data.grads;
  for (let i = 0; i < launches; i++) {
    g = loraGradsRef(c.problems, c.tokens, c.rankStride, data.inputs, data.ranks, g, STEP_BASE + STEP_OFFSET);
  }
  return g;
}

/** Problems laid out one after another in G (offsets in elements). */
function packGrads(
  list: Omit<LoraGradProblem, 'gradOffset'>[],
  gap = 0,
): { problems: LoraGradProblem[]; length: number } {
  let offset = gap;
  const problems = list.map((q) => {
    const p = { ...q, gradOffset: offset };
    offset += q.cols * q.r + gap;
    return p;
  });
  return { problems, length: offset };
}

/**
 * The attention phase's dB: q (out 36), k, v (out 12) from three dy inputs, u_q, u_k, u_v side by side in R
 * (the stacked x·[A_q; A_k; A_v]ᵀ), as in a Llama block with GQA.
 */
function dbCase(tokens: number, r: number): Case {
  const outs = [36, 12, 12];
  const { problems, length } = packGrads(
    outs.map((cols, j) => ({ kind: 'dB', input: j, cols, r, rankCol: j * r, scale: 1.5 - 0.25 * j })),
    1,
  );
  return { problems, tokens, rankStride: 3 * r, inputCols: outs, gradLength: length };
}

/**
 * dA of q, k, v reading x = xn1 (in 20) with their own dropout streams, and of o reading att (in 36, no
 * dropout); v_q, v_k, v_v, v_o side by side in R with a padded row.
 */
function daCase(tokens: number, r: number, p = 0.25): Case {
  const list: Omit<LoraGradProblem, 'gradOffset'>[] = [0, 1, 2].map((j) => ({
    kind: 'dA',
    input: 0,
    cols: 20,
    r,
    rankCol: j * r,
    scale: 2,
    dropout: { p, seed: 99, stream: 7 + j },
  }));
  list.push({ kind: 'dA', input: 1, cols: 36, r, rankCol: 3 * r, scale: 0.5 });
  const { problems, length } = packGrads(list);
  return { problems, tokens, rankStride: 4 * r + 4, inputCols: [20, 36], gradLength: length };
}

const shapes: [number, number][] = [
  [1, 16],
  [7, 3],
  [33, 4],
  [300, 1],
  [1025, 8],
  [64, 20],
];

describe('grouped LoRA gradients', () => {
  it.each(shapes)('dB of q, k, v from 3 inputs: N %i, r %i, f32 (rel < 1e-5)', async (N, r) => {
    const c = dbCase(N, r);
    const { actual, data, dispatches, plan } = await runCase(c, 'f32');
    expect(dispatches).toBe(plan.chunks > 1 ? 2 : 1); // N 1025 splits by the rule: the reduce too
    expectClose(`dB N ${N} r ${r}`, actual, expected(c, data), 1e-5);
  });

  it.each(shapes)(
    'dA of q, k, v (dropout) and o from 2 inputs: N %i, r %i, f32 (rel < 1e-5)',
    async (N, r) => {
      const c = daCase(N, r);
      const { actual, data } = await runCase(c, 'f32');
      expectClose(`dA N ${N} r ${r}`, actual, expected(c, data), 1e-5);
    },
  );

  // f16 changes only X's load type: three shapes cover the scalar-R, vec4 and several-rank-tile variants.
  it.skipIf(skipF16).each([shapes[1], shapes[4], shapes[5]])(
    'dB and dA, f16 inputs: N %i, r %i (rel < 1e-2)',
    async (N, r) => {
      for (const c of [dbCase(N, r), daCase(N, r)]) {
        const { actual, data } = await runCase(c, 'f16');
        expectClose(`f16 ${c.problems[0].kind} N ${N} r ${r}`, actual, expected(c, data), 1e-2);
      }
    },
  );

  // The GPU default (two tokens loaded per trip; lavapipe runs one): tails of 1 (N = 33 = 2·16 + 1) and of
  // 1 token past whole trips (1025), dropout, f32 and f16.
  it.each([
    [33, 4],
    [1025, 8],
  ])('two tokens per trip: N %i, r %i', async (N, r) => {
    const u2: LoraGradsVariant = { tokensPerTrip: 2 };
    for (const dtype of skipF16 ? (['f32'] as const) : (['f32', 'f16'] as const)) {
      for (const c of [dbCase(N, r), daCase(N, r)]) {
        const { actual, data } = await runCase(c, dtype, 1, undefined, u2);
        const label = `u2 ${dtype} ${c.problems[0].kind} N ${N} r ${r}`;
        expectClose(label, actual, expected(c, data), dtype === 'f32' ? 1e-5 : 1e-2);
      }
    }
  });

  it('odd columns and a view into a wider input (scalar loads), mixed kinds and ranks in one list', async () => {
    // x (N, 29) holds two adapters' inputs side by side: columns 0..13 and 13..29; dy (N, 11).
    const { problems, length } = packGrads([
      {
        kind: 'dA',
        input: 0,
        cols: 13,
        r: 5,
        rankCol: 0,
        scale: 1,
        inputStride: 29,
        dropout: { p: 0.5, seed: 3, stream: 1 },
      },
      { kind: 'dA', input: 0, cols: 16, r: 2, rankCol: 5, scale: -0.5, inputStride: 29, inputCol: 13 },
      { kind: 'dB', input: 1, cols: 11, r: 3, rankCol: 7, scale: 0.75 },
    ]);
    const c: Case = { problems, tokens: 45, rankStride: 10, inputCols: [29, 11], gradLength: length };
    const plan = loraGradsPlan(c.problems, c.tokens, { rankStride: c.rankStride });
    expect([plan.vecX, plan.vecR]).toEqual([false, false]);
    for (const dtype of skipF16 ? (['f32'] as const) : (['f32', 'f16'] as const)) {
      const { actual, data } = await runCase(c, dtype, 1, plan);
      expectClose(`scalar loads ${dtype}`, actual, expected(c, data), dtype === 'f32' ? 1e-5 : 1e-2);
    }
  });

  it('two launches add up (G accumulates), and reruns are bitwise identical', async () => {
    const c = daCase(130, 8);
    const once = await runCase(c, 'f32', 2);
    expectClose('two launches', once.actual, expected(c, once.data, 2), 1e-5);
    const again = await runCase(c, 'f32', 2);
    expect(bits(again.actual)).toEqual(bits(once.actual));
  });
});

const bits = (x: Float64Array) => Array.from(new Uint32Array(Float32Array.from(x).buffer));

describe('grouped LoRA gradients, tokens split into chunks', () => {
  const planOf = (c: Case, chunkTokens?: number) =>
    loraGradsPlan(c.problems, c.tokens, { rankStride: c.rankStride, chunkTokens });

  it('the rule: one chunk below 512 tokens; ≥ 256 tokens a chunk, a multiple of 16, up to ~1024 workgroups', () => {
    expect(planOf(dbCase(511, 16)).chunks).toBe(1);
    const at1024 = planOf(dbCase(1024, 16)); // 3 tiles: 4 chunks, capped by 1024 / 256
    expect([at1024.items, at1024.chunks, at1024.chunkTokens]).toEqual([3, 4, 256]);
    expect(at1024.workspaceWords).toBe(4 * 60 * 16);
    const big = planOf(dbCase(1000, 4), 1); // one token a chunk: 1000 chunks of 3 tiles
    expect([big.chunks, big.chunkTokens]).toEqual([1000, 1]);
    expect(planOf(dbCase(1000, 4), 5000).chunks).toBe(1); // a chunk past N is N
  });

  // Chunk counts from 1 token a chunk (chunks ≫ tiles) to a last chunk of 1 token (257 = 256 + 1).
  const cases: [number, number, number][] = [
    [1, 16, 1],
    [7, 3, 2],
    [255, 8, 16],
    [257, 4, 256],
    [257, 16, 1],
    [1000, 8, 96],
    [1000, 20, 333],
  ];
  it.each(cases)(
    'N %i, r %i, %i tokens a chunk: dB and dA (dropout), f32 (rel < 1e-5)',
    async (N, r, size) => {
      for (const c of [dbCase(N, r), daCase(N, r)]) {
        const plan = planOf(c, size);
        expect(plan.chunks).toBe(Math.ceil(N / size));
        const { actual, data, dispatches } = await runCase(c, 'f32', 1, plan);
        expect(dispatches).toBe(plan.chunks > 1 ? 2 : 1);
        expectClose(`${c.problems[0].kind} N ${N} r ${r} chunk ${size}`, actual, expected(c, data), 1e-5);
      }
    },
  );

  it.skipIf(skipF16).each([cases[2], cases[5]])(
    'N %i, r %i, %i tokens a chunk: f16 inputs (rel < 1e-2)',
    async (N, r, size) => {
      for (const c of [dbCase(N, r), daCase(N, r)]) {
        const { actual, data } = await runCase(c, 'f16', 1, planOf(c, size));
        expectClose(`f16 ${c.problems[0].kind} N ${N} chunk ${size}`, actual, expected(c, data), 1e-2);
      }
    },
  );

  it('the rule’s split at N 1024, two tokens per trip, f32 and f16', async () => {
    for (const dtype of skipF16 ? (['f32'] as const) : (['f32', 'f16'] as const)) {
      for (const c of [dbCase(1024, 16), daCase(1024, 16)]) {
        const plan = planOf(c);
        expect(plan.chunks).toBeGreaterThan(1);
        const { actual, data } = await runCase(c, dtype, 1, plan, { tokensPerTrip: 2 });
        const label = `rule ${dtype} ${c.problems[0].kind}`;
        expectClose(label, actual, expected(c, data), dtype === 'f32' ? 1e-5 : 1e-2);
      }
    }
  });

  it('scalar loads (odd columns, a view into a wider input) split into chunks', async () => {
    const { problems, length } = packGrads([
      { kind: 'dA', input: 0, cols: 13, r: 5, rankCol: 0, scale: 1, inputStride: 29 },
      { kind: 'dB', input: 1, cols: 11, r: 3, rankCol: 5, scale: 0.75 },
    ]);
    const c: Case = { problems, tokens: 301, rankStride: 9, inputCols: [29, 11], gradLength: length };
    const plan = planOf(c, 50);
    expect([plan.vecX, plan.vecR, plan.chunks]).toEqual([false, false, 7]);
    const { actual, data } = await runCase(c, 'f32', 1, plan);
    expectClose('scalar loads split', actual, expected(c, data), 1e-5);
  });

  // One plan for every layer: a layer's gradients sit gradBase further in G, its dropout streams streamBase on.
  it('gradBase and streamBase shift the problems as a layer’s would, split and not', async () => {
    const [gradBase, streamBase] = [7, 3];
    for (const size of [undefined, 40]) {
      const c = daCase(130, 8);
      const shifted: Case = {
        ...c,
        problems: c.problems.map((q) => ({
          ...q,
          gradOffset: q.gradOffset + gradBase,
          dropout: q.dropout && { ...q.dropout, stream: q.dropout.stream + streamBase },
        })),
        gradLength: c.gradLength + gradBase,
      };
      const plan = planOf(c, size);
      const data = caseData(shifted, 'f32');
      const table = uploadLoraGrads(gpu, plan);
      const inputs = data.inputs.map((x) => upload(gpu, x, 'f32'));
      const [ranks, grads, rng, workspace] = [
        upload(gpu, data.ranks, 'f32'),
        upload(gpu, data.grads, 'f32'),
        upload(gpu, [STEP_BASE], 'u32'),
        upload(gpu, new Float64Array(Math.max(1, plan.workspaceWords)).fill(NaN), 'f32'),
      ];
      const rec = new CommandRecorder(gpu);
      loraGrads(rec, table, {
        inputs: inputs.map((binding) => ({ binding, dtype: 'f32' as const })),
        ranks,
        grads,
        rng: { buffer: rng, stepOffset: STEP_OFFSET },
        gradBase,
        streamBase,
        workspace,
      });
      await rec.submitAndWait();
      const actual = await download(gpu, grads, shifted.gradLength, 'f32');
      expectClose(`shifted, chunk ${size}`, actual, expected(shifted, data), 1e-5);
      rec.destroy();
      table.buffer.destroy();
      for (const b of [...inputs, ranks, grads, rng, workspace]) b.destroy();
    }
  });

  it('two launches add up, and reruns are bitwise identical', async () => {
    for (const c of [dbCase(1000, 16), daCase(1000, 16)]) {
      const plan = planOf(c, 64);
      const once = await runCase(c, 'f32', 2, plan);
      expectClose('two split launches', once.actual, expected(c, once.data, 2), 1e-5);
      const again = await runCase(c, 'f32', 2, plan);
      expect(bits(again.actual)).toEqual(bits(once.actual));
    }
  });
});

/**
 * dA of two adapters (own streams) with R = [I | I] (N × N identity twice) and x = 1, p = 0.5: dA[j, c] gains
 * s·mask(t = j, c)/(1 − p) = 2·mask(j, c), so G − G₀ is the mask matrix itself, element for element. G₀ holds
 * small integers, so the difference is exact.
 */
async function maskMatrices(tokens: number, stepOffset: number) {
  const cols = [40, 23];
  const { problems, length } = packGrads(
    cols.map((c, j) => ({
      kind: 'dA',
      input: j,
      cols: c,
      r: tokens,
      rankCol: j * tokens,
      scale: 1,
      dropout: { p: 0.5, seed: 5, stream: 2 + j },
    })),
  );
  const identity = Array.from({ length: tokens * 2 * tokens }, (_, i) => {
    const [t, k] = [Math.floor(i / (2 * tokens)), i % (2 * tokens)];
    return k % tokens === t ? 1 : 0;
  });
  const g0 = Array.from({ length }, (_, i) => (i % 17) - 8);
  const buffers = [
    ...cols.map((c) => upload(gpu, new Float64Array(tokens * c).fill(1), 'f32')),
    upload(gpu, identity, 'f32'),
    upload(gpu, g0, 'f32'),
    upload(gpu, [STEP_BASE], 'u32'),
  ];
  const [x0, x1, ranks, grads, rng] = buffers;
  const table = uploadLoraGrads(gpu, loraGradsPlan(problems, tokens, { rankStride: 2 * tokens }));
  const rec = new CommandRecorder(gpu);
  loraGrads(rec, table, {
    inputs: [x0, x1].map((binding) => ({ binding, dtype: 'f32' as const })),
    ranks,
    grads,
    rng: { buffer: rng, stepOffset },
  });
  await rec.submitAndWait();
  const g = await download(gpu, grads, length, 'f32');
  rec.destroy();
  table.buffer.destroy();
  for (const b of buffers) b.destroy();
  // Problem q's dA is (r = tokens, cols) at its offset: row j is token j's mask row.
  return problems.map((q) =>
    Array.from({ length: tokens * q.cols }, (_, i) => (g[q.gradOffset + i] - g0[q.gradOffset + i]) / 2),
  );
}

describe('grouped LoRA gradients: dropout masks', () => {
  it('are the reference hash’s, element for element, per stream and at step rng[0] + stepOffset', async () => {
    const tokens = 33; // r = 33: three rank tiles
    const got = await maskMatrices(tokens, STEP_OFFSET);
    const later = await maskMatrices(tokens, STEP_OFFSET + 2);
    [40, 23].forEach((cols, j) => {
      const want = (offset: number) =>
        Array.from(dropoutMaskRef(tokens * cols, 0.5, 5, STEP_BASE + offset, 2 + j));
      expect(got[j], `stream ${2 + j}`).toEqual(want(STEP_OFFSET));
      expect(later[j], `stream ${2 + j}, stepOffset + 2`).toEqual(want(STEP_OFFSET + 2));
      expect(later[j]).not.toEqual(got[j]);
    });
    expect(got[0].filter((k) => k === 1).length / got[0].length).toBeCloseTo(0.5, 1);
  });
});

describe('grouped LoRA gradients: the command stream', () => {
  // A step of two micro-batches (dropout step offsets 0 and 1), recorded twice. A bind group's key holds its
  // uniform slot's offset, so new uniform contents would have made a new bind group too.
  // Split (chunks of 16 tokens): a second dispatch per call, the reduce, whose uniforms are the same for both.
  it.each([
    ['dA with dropout: one bind group per micro-batch', daCase(50, 16), 'lora_grads.rv4+mask', 2, 0],
    ['dB: the same bind group for both micro-batches', dbCase(50, 16), 'lora_grads.rv4', 1, 0],
    ['split dA with dropout: and one reduce bind group', daCase(50, 16), 'lora_grads.rv4+mask', 3, 16],
    ['split dB: one bind group each', dbCase(50, 16), 'lora_grads.rv4', 2, 16],
  ] as const)(
    'one dispatch per call, nothing new the second step: %s',
    async (_name, c, kernel, groups, size) => {
      const data = caseData(c, 'f32');
      const plan = loraGradsPlan(c.problems, c.tokens, {
        rankStride: c.rankStride,
        chunkTokens: size || undefined,
      });
      const table = uploadLoraGrads(gpu, plan);
      const perCall = plan.chunks > 1 ? 2 : 1;
      const inputs = data.inputs.map((x) => upload(gpu, x, 'f32'));
      const [ranks, grads, rng, workspace] = [
        upload(gpu, data.ranks, 'f32'),
        upload(gpu, data.grads, 'f32'),
        upload(gpu, [STEP_BASE], 'u32'),
        upload(gpu, new Float64Array(Math.max(1, plan.workspaceWords)), 'f32'),
      ];
      const rec = new CommandRecorder(gpu);
      const counts = [];
      for (let step = 0; step < 2; step++) {
        for (const stepOffset of [0, 1]) {
          const x = inputs.map((binding) => ({ binding, dtype: 'f32' as const }));
          loraGrads(rec, table, { inputs: x, ranks, grads, rng: { buffer: rng, stepOffset }, workspace });
        }
        counts.push({ dispatches: rec.counts.dispatches, bindGroups: rec.counts.bindGroups });
        await rec.submitAndWait();
      }
      expect(counts).toEqual([
        { dispatches: 2 * perCall, bindGroups: groups },
        { dispatches: 2 * perCall, bindGroups: 0 },
      ]);
      expect(rec.lastCounts.kernels.get(kernel)).toBe(2);
      expect(rec.lastCounts.kernels.get('lora_grads.reduce')).toBe(perCall > 1 ? 2 : undefined);
      const flops = c.problems.reduce((sum, q) => sum + 2 * c.tokens * q.cols * q.r, 0);
      const reduceFlops = perCall > 1 ? (plan.chunks + 1) * plan.outputs : 0;
      expect(rec.lastCounts.flops).toBe(2 * (flops + reduceFlops));
      rec.destroy();
      table.buffer.destroy();
      for (const b of [...inputs, ranks, grads, rng, workspace]) b.destroy();
    },
  );
});

describe('grouped LoRA gradients: bad input', () => {
  const problem: LoraGradProblem = {
    kind: 'dB',
    input: 0,
    cols: 8,
    r: 4,
    rankCol: 0,
    gradOffset: 0,
    scale: 1,
  };
  const plan =
    (problems: LoraGradProblem[], rankStride = 8) =>
    () =>
      loraGradsPlan(problems, 10, { rankStride });

  it.each([
    ['an input past the fourth', { input: 4 }, /input 4, but a dispatch reads at most 4/],
    ['ranks past R’s row', { rankCol: 6 }, /ranks 6\.\.10 run past R’s row \(8\)/],
    [
      'columns past the input row',
      { inputCol: 4, inputStride: 8 },
      /columns 4\.\.12 run past the input’s row/,
    ],
    ['dropout on dB', { dropout: { p: 0.1, seed: 1, stream: 0 } }, /dropout applies to x, so to dA only/],
    ['p = 1', { kind: 'dA', dropout: { p: 1, seed: 1, stream: 0 } }, /p must be in \[0, 1\)/],
    ['r = 0', { r: 0 }, /cols and r must be ≥ 1/],
  ] as const)('the plan refuses %s', (_name, change, message) => {
    expect(plan([{ ...problem, ...change } as LoraGradProblem])).toThrow(message);
  });

  it.each([0, 2.5, -1])('the plan refuses chunkTokens %d', (chunkTokens) => {
    expect(() => loraGradsPlan([problem], 10, { rankStride: 8, chunkTokens })).toThrow(
      /chunkTokens must be a whole number ≥ 1/,
    );
  });

  it('the plan refuses problems writing overlapping ranges of G', () => {
    expect(plan([problem, { ...problem, input: 1, gradOffset: 31 }])).toThrow(
      /problems 0 and 1 write overlapping ranges of G \(0\.\.32 and 31\.\.63\)/,
    );
  });

  it('a call is refused before anything is recorded', () => {
    const buffer = (bytes: number) => upload(gpu, new Float64Array(bytes / 4), 'f32');
    const [x, ranks, grads, small] = [buffer(4 * 80), buffer(4 * 80), buffer(4 * 64), buffer(4 * 40)];
    const two = loraGradsPlan([problem, { ...problem, input: 1, gradOffset: 32 }], 10, { rankStride: 8 });
    const masked = loraGradsPlan([{ ...problem, kind: 'dA', dropout: { p: 0.5, seed: 1, stream: 0 } }], 10, {
      rankStride: 8,
    });
    const [table, maskedTable] = [uploadLoraGrads(gpu, two), uploadLoraGrads(gpu, masked)];
    const input = { binding: x, dtype: 'f32' as const };
    const rec = new CommandRecorder(gpu);
    const call = (t: typeof table, b: Partial<LoraGradsBindings>) => () =>
      loraGrads(rec, t, { inputs: [input, input], ranks, grads, ...b });
    expect(call(table, { inputs: Array(5).fill(input) })).toThrow(/5 inputs given; a dispatch reads 1 to 4/);
    expect(call(table, { inputs: [input] })).toThrow(/problem 1 reads input 1, but 1 inputs are given/);
    expect(call(table, { grads: small })).toThrow(/gradient offsets reach element 64, beyond G \(40 f32\)/);
    expect(call(table, { ranks: small })).toThrow(/R must hold 10 rows of 8 f32/);
    expect(call(table, { inputs: [input, { binding: small, dtype: 'f32' }] })).toThrow(
      /problem 1 reads 80 elements of input 1, which holds 40/,
    );
    expect(call(table, { grads: ranks })).toThrow(/G must be a buffer of its own/);
    expect(call(maskedTable, {})).toThrow(/the plan has dropout, so the call needs `rng`/);
    // Split into chunks of 4 tokens: 3 chunks × 64 outputs of workspace, a buffer of its own.
    const split = loraGradsPlan(two.problems, 10, { rankStride: 8, chunkTokens: 4 });
    const splitTable = uploadLoraGrads(gpu, split);
    expect(call(splitTable, {})).toThrow(/splits the tokens into 3 chunks, so the call needs `workspace`/);
    expect(call(splitTable, { workspace: grads })).toThrow(
      /workspace must hold 192 f32 \(3 chunks × 64\), it holds 64/,
    );
    const wide = buffer(4 * 192);
    expect(call(splitTable, { grads: wide, workspace: wide })).toThrow(
      /workspace must be a buffer of its own/,
    );
    splitTable.buffer.destroy();
    wide.destroy();
    expect(rec.counts.dispatches).toBe(0);
    expect(rec.counts.bindGroups).toBe(0);
    rec.destroy();
    for (const b of [x, ranks, grads, small, table.buffer, maskedTable.buffer]) b.destroy();
  });
});
