// The LoRA weight gradients of one SmolLM2-135M layer (7 adapters, r 16, N = 4 × 256 tokens, f16 activations,
// dropout 0.05 on x): all 7 dB and 7 dA, recorded the way model/linear.ts records them today (a split-K matmul
// pair, partial + reduce, per gradient: 28 dispatches) against the grouped kernel (kernels/lora-grads.ts), in
// 4 dispatches (dB and dA per block phase: MLP, then attention) or 3 (the dA of the whole layer at once: its 4
// inputs xn1, att, xn2, h fit one dispatch; the 7 distinct dy do not, so dB stays in 2). The 3-dispatch layout
// (the model's) also at N = 8 × 512 and with the tokens split into chunks (a reduce after each dispatch): not
// split, the kernel's rule, and fixed chunk sizes, so a GPU shows which chunk size pays.
import { BufferArena, type Gpu, type ScalarType } from '../../src/engine/gpu/index.ts';
import {
  loraGrads,
  loraGradsPlan,
  uploadLoraGrads,
  type LoraGradProblem,
  type LoraGradsTable,
} from '../../src/engine/kernels/lora-grads.ts';
import { chooseSplits, matmul, matmulWorkspaceBytes } from '../../src/engine/kernels/matmul.ts';
import { SMOL, type KernelBenchCase } from './types.ts';

const { tokens: N, hidden: C, ffn: F, kvHeads, headDim, rank: r } = SMOL;
const act: ScalarType = 'f16';
const DROPOUT = 0.05;
const KV = kvHeads * headDim;

/** The layer's adapters: x is the input they read (dA), dy the gradient of their output (dB). */
const ADAPTERS = [
  { name: 'q', in: C, out: C, x: 'xn1', dy: 'dq', phase: 'attn' },
  { name: 'k', in: C, out: KV, x: 'xn1', dy: 'dk', phase: 'attn' },
  { name: 'v', in: C, out: KV, x: 'xn1', dy: 'dv', phase: 'attn' },
  { name: 'o', in: C, out: C, x: 'att', dy: 'dOut', phase: 'attn' },
  { name: 'gate', in: C, out: F, x: 'xn2', dy: 'dGate', phase: 'mlp' },
  { name: 'up', in: C, out: F, x: 'xn2', dy: 'dUp', phase: 'mlp' },
  { name: 'down', in: F, out: C, x: 'h', dy: 'dDown', phase: 'mlp' },
] as const;
type Adapter = (typeof ADAPTERS)[number];

/** Activations (N, cols) by name, f16. */
const COLS: Record<string, number> = {
  xn1: C,
  att: C,
  xn2: C,
  h: F,
  dq: C,
  dk: KV,
  dv: KV,
  dOut: C,
  dGate: F,
  dUp: F,
  dDown: C,
};

const flopsAt = (tokens: number) => ADAPTERS.reduce((s, a) => s + 2 * 2 * tokens * r * (a.in + a.out), 0);
const bytesAt = (tokens: number) =>
  ADAPTERS.reduce((s, a) => s + tokens * (2 * (a.in + a.out) + 2 * 4 * r) + 2 * 4 * r * (a.in + a.out), 0);
const FLOPS = flopsAt(N);
const BYTES = bytesAt(N);

/** G: each adapter's dA (r, in) then dB (out, r), one flat f32 buffer as the LoRA gradients are. */
const gradOffsets = (() => {
  let at = 0;
  return ADAPTERS.map((a) => {
    const o = { dA: at, dB: at + r * a.in };
    at += r * (a.in + a.out);
    return o;
  });
})();
const GRAD_LENGTH = ADAPTERS.reduce((s, a) => s + r * (a.in + a.out), 0);

/**
 * One grouped dispatch: the chosen adapters' gradients of one kind, inputs in order of first use, over `tokens`
 * (default N) in chunks of `chunkTokens` (default: the kernel's rule).
 */
function group(kind: 'dA' | 'dB', adapters: readonly Adapter[], tokens: number = N, chunkTokens?: number) {
  const inputs: string[] = [];
  const problems: LoraGradProblem[] = adapters.map((a) => {
    const i = ADAPTERS.indexOf(a);
    const tensor = kind === 'dA' ? a.x : a.dy;
    if (!inputs.includes(tensor)) inputs.push(tensor);
    return {
      kind,
      input: inputs.indexOf(tensor),
      cols: kind === 'dA' ? a.in : a.out,
      r,
      rankCol: i * r, // u (or v) of all 7 adapters side by side: (N, 7r)
      gradOffset: gradOffsets[i][kind],
      scale: 2,
      dropout: kind === 'dA' ? { p: DROPOUT, seed: 1, stream: i } : undefined,
    };
  });
  const plan = loraGradsPlan(problems, tokens, { rankStride: ADAPTERS.length * r, chunkTokens });
  return { inputs, plan };
}

function groupedCase(name: string, groups: ReturnType<typeof group>[]): KernelBenchCase {
  const tokens = groups[0].plan.tokens;
  return {
    name,
    flops: flopsAt(tokens),
    bytes: bytesAt(tokens),
    setup(gpu: Gpu) {
      const arena = new BufferArena(gpu);
      const acts = Object.fromEntries(
        Object.entries(COLS).map(([k, cols]) => [k, arena.alloc(k, 2 * tokens * cols)]),
      );
      const [u, v] = ['U', 'V'].map((k) => arena.alloc(k, 4 * tokens * ADAPTERS.length * r));
      const grads = arena.alloc('grads', 4 * GRAD_LENGTH);
      const rng = arena.alloc('rng', 16);
      const words = Math.max(1, ...groups.map((g) => g.plan.workspaceWords));
      const workspace = arena.alloc('workspace', 4 * words);
      const tables: LoraGradsTable[] = groups.map((g) => uploadLoraGrads(gpu, g.plan, arena));
      return {
        record(rec) {
          groups.forEach((g, i) => {
            const dA = g.plan.problems[0].kind === 'dA';
            loraGrads(rec, tables[i], {
              inputs: g.inputs.map((k) => ({ binding: acts[k], dtype: act })),
              ranks: dA ? v : u,
              grads,
              rng: { buffer: rng, stepOffset: 0 },
              workspace,
            });
          });
        },
        destroy: () => arena.destroy(),
      };
    },
  };
}

/** Today's path (model/linear.ts): per adapter, dB and dA each a split-K matmul (partial + reduce). */
const perAdapterCase: KernelBenchCase = {
  name: `LoRA grads of a layer, per adapter split-K matmuls (linear.ts): 7 dB + 7 dA, N ${N}, r ${r}, ${act}`,
  flops: FLOPS,
  bytes: BYTES,
  setup(gpu: Gpu) {
    const arena = new BufferArena(gpu);
    const acts = Object.fromEntries(
      Object.entries(COLS).map(([k, cols]) => [k, arena.alloc(k, 2 * N * cols)]),
    );
    const dims = ADAPTERS.flatMap((a) => [
      { M: a.out, N: r, K: N },
      { M: r, N: a.in, K: N },
    ]);
    const workspace = arena.alloc(
      'workspace',
      Math.max(...dims.map((d) => matmulWorkspaceBytes(d, chooseSplits(d)))),
    );
    const rng = arena.alloc('rng', 16);
    const per = ADAPTERS.map((a) => ({
      u: arena.alloc(`u.${a.name}`, 4 * N * r),
      v: arena.alloc(`v.${a.name}`, 4 * N * r),
      dA: arena.alloc(`dA.${a.name}`, 4 * r * a.in),
      dB: arena.alloc(`dB.${a.name}`, 4 * a.out * r),
    }));
    const f32 = (binding: GPUBuffer) => ({ binding, dtype: 'f32' as const });
    return {
      record(rec) {
        ADAPTERS.forEach((a, i) => {
          const b = per[i];
          const split = (M: number, n: number) => ({ splits: chooseSplits({ M, N: n, K: N }), workspace });
          const common = { transA: true, alpha: 2, beta: 1 };
          const dy = { binding: acts[a.dy], dtype: act };
          matmul(rec, f32(b.dB), dy, f32(b.u), { M: a.out, N: r, K: N }, { ...common, ...split(a.out, r) });
          const maskB = { p: DROPOUT, seed: 1, stream: i, rowLength: a.in, rng, stepOffset: 0 };
          const x = { binding: acts[a.x], dtype: act };
          matmul(
            rec,
            f32(b.dA),
            f32(b.v),
            x,
            { M: r, N: a.in, K: N },
            { ...common, maskB, ...split(r, a.in) },
          );
        });
      },
      destroy: () => arena.destroy(),
    };
  },
};

const inPhase = (phase: 'attn' | 'mlp') => ADAPTERS.filter((a) => a.phase === phase);

/** The model's layout (dB per phase, dA of the layer) at `tokens` in chunks of `chunkTokens` (rule: undefined). */
function layerCase(tokens: number, chunkTokens?: number): KernelBenchCase {
  const groups = [
    group('dB', inPhase('mlp'), tokens, chunkTokens),
    group('dB', inPhase('attn'), tokens, chunkTokens),
    group('dA', ADAPTERS, tokens, chunkTokens),
  ];
  const chunks = groups.map((g) => g.plan.chunks);
  const split = chunks.every((c) => c === 1)
    ? 'not split'
    : `${chunkTokens === undefined ? 'rule: ' : ''}chunks of ${groups[0].plan.chunkTokens} (${chunks.join('/')} chunks, + 3 reduces)`;
  return groupedCase(
    `LoRA grads of a layer, grouped: 3 dispatches (dB per phase, dA of the layer), ${split}, N ${tokens}, r ${r}, ${act}`,
    groups,
  );
}

/** N of the large training shape, 8 × 512. */
const N_LARGE = 4096;

export const loraGradsBenches: KernelBenchCase[] = [
  perAdapterCase,
  groupedCase(
    `LoRA grads of a layer, grouped: 4 dispatches (dB, dA per phase), not split, N ${N}, r ${r}, ${act}`,
    [
      group('dB', inPhase('mlp'), N, N),
      group('dA', inPhase('mlp'), N, N),
      group('dB', inPhase('attn'), N, N),
      group('dA', inPhase('attn'), N, N),
    ],
  ),
  ...[N, N_LARGE].flatMap((tokens) => [
    layerCase(tokens, tokens),
    layerCase(tokens),
    layerCase(tokens, 128),
    layerCase(tokens, 512),
  ]),
];
