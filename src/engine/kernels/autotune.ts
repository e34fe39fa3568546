// Autotuning on the user's card (DESIGN.md: "the user's card decides"): the candidate variants of each hot kernel
// family are timed on this device at the model's real shapes, and the fastest per shape class goes into
// gpu.tuning, which the family's launcher reads (matmul's `chooseVariant`). The host keeps the record between
// sessions (src/node/tuning-cache.ts, IndexedDB in the page), so an adapter is tuned once.
//
// A family plugs in as `TuneTask`s: one per shape class, each knowing its candidates, its untuned (heuristic)
// choice and how to launch one variant on operands it allocates itself. Only matmul is tuned today; the
// attention and cross-entropy rewrites can add their tasks to `modelTuneTasks`.
//
// Timing: GPU timestamps around one compute pass holding `reps` launches (so a coarse browser timestamp still
// resolves a 10 µs kernel), the median of `runs` such passes after a warm-up pass that also compiles the
// pipelines. Without 'timestamp-query' nothing is timed and each family's heuristic stays.

import {
  BufferArena,
  bytesPerElement,
  CommandRecorder,
  Profiler,
  type Gpu,
  type ScalarType,
} from '../gpu/index.ts';
import {
  blockLinears,
  resolveTargets,
  type AdaptedModule,
  type LoraConfig,
  type LoraModelShape,
} from '../lora/config.ts';
import { crossEntropyPlan } from './crossentropy.ts';
import {
  chooseSplits,
  defaultTiledVariant,
  defaultVariant,
  matmul,
  MATMUL_VARIANTS,
  matmulShapeClass,
  skinnyShape,
  tiledEligible,
  matmulWorkspaceBytes,
  variantFits,
  type MatmulDims,
  type MatmulLayout,
  type MatmulVariant,
} from './matmul.ts';

/** One shape class of one kernel family, with what it takes to time its variants. */
export interface TuneTask {
  readonly family: string;
  readonly shapeClass: string;
  /** What the class stands for, e.g. 'q_proj fwd X·Wᵀ 1024×576×576'. */
  readonly label: string;
  /** Launches per training step that fall in this class (orders the work; shown). */
  readonly calls: number;
  /** FLOPs of one launch of this task's shape. */
  readonly flops: number;
  /** Variants worth timing on this device (eligible and within its limits). */
  candidates(gpu: Gpu): string[];
  /** The variant that runs when nothing is tuned. */
  heuristic(gpu: Gpu): string;
  /**
   * Allocates the operands in `arena` once; the function returned records one launch of `variant`, or of what
   * the family's launcher chooses by itself (tuned or heuristic) when `variant` is undefined.
   */
  prepare(gpu: Gpu, arena: BufferArena): (rec: CommandRecorder, variant?: string) => void;
}

export interface AutotuneOptions {
  /**
   * Wall-clock budget in ms (compiles included), checked before each class: a class once started is timed to
   * its end, so at least the hottest class is tuned; classes not reached keep the heuristic. Default 4000.
   */
  budgetMs?: number;
  /** Timed passes per candidate (the median is kept). Default 5. */
  runs?: number;
  /** Time classes that already have a choice in gpu.tuning too. Default false. */
  retune?: boolean;
  /**
   * Stops timing at the next candidate (a search is starting): the class in progress keeps the heuristic, the
   * classes already timed keep their choice.
   */
  signal?: AbortSignal;
  onProgress?(done: number, total: number, label: string): void;
}

export interface TunedCandidate {
  variant: string;
  /** Median milliseconds per launch; null when it failed. */
  ms: number | null;
  error?: string;
}

export interface TunedClass {
  family: string;
  shapeClass: string;
  label: string;
  calls: number;
  heuristic: string;
  candidates: TunedCandidate[];
  /** The choice now in gpu.tuning; null when every candidate failed, or the timing was stopped in it. */
  winner: string | null;
}

export type AutotuneStatus = 'tuned' | 'cached' | 'no-timestamps';

export interface AutotuneResult {
  status: AutotuneStatus;
  adapter: string;
  /** One line for a person: what was done, or why nothing was. */
  message: string;
  /** The classes timed now, hottest first. */
  classes: TunedClass[];
  /** Classes that already had a choice (a stored record) and were not timed again. */
  known: number;
  /** Classes left to the heuristic because the budget ran out. */
  untimed: number;
  elapsedMs: number;
}

/** A tuned choice within this fraction of the heuristic's time keeps the heuristic (timing noise). */
const NOISE = 0.03;
/** Launches per timed pass aim at this much GPU time, within [1, MAX_REPS]. */
const TARGET_PASS_MS = 2;
const MAX_REPS = 64;

/**
 * Times every candidate of each task's shape class that has no choice yet and stores the fastest in gpu.tuning
 * (hottest classes first, until `budgetMs` runs out). Sets gpu.tuning.tunedAt when it chose anything.
 */
export async function autotune(
  gpu: Gpu,
  tasks: readonly TuneTask[],
  options: AutotuneOptions = {},
): Promise<AutotuneResult> {
  const started = performance.now();
  const { budgetMs = 4000, runs = 5, retune = false, onProgress, signal } = options;
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`autotune: runs must be ≥ 1, got ${runs}`);
  if (!(budgetMs > 0)) throw new RangeError(`autotune: budgetMs must be > 0, got ${budgetMs}`);
  const unique = dedupeTasks(tasks);
  const todo = unique
    .filter((t) => retune || gpu.tuning.get(t.family, t.shapeClass) === undefined)
    .map((task) => ({ task, candidates: task.candidates(gpu) }))
    .filter((t) => t.candidates.length > 1) // one candidate: nothing to choose
    .sort((x, y) => y.task.flops * y.task.calls - x.task.flops * x.task.calls);
  const known = unique.length - todo.length;
  const result = (status: AutotuneStatus, message: string, classes: TunedClass[] = [], untimed = 0) => ({
    status,
    adapter: gpu.tuning.adapterKey,
    message,
    classes,
    known,
    untimed,
    elapsedMs: performance.now() - started,
  });
  if (todo.length === 0)
    return result('cached', `every shape class already tuned for ${gpu.tuning.adapterKey}`);
  if (!gpu.hasTimestamps) {
    return result('no-timestamps', "no GPU timestamps ('timestamp-query'): default kernels");
  }
  const total = todo.reduce((n, t) => n + t.candidates.length, 0);
  let done = 0;
  const classes: TunedClass[] = [];
  for (const { task, candidates } of todo) {
    if (performance.now() - started > budgetMs || signal?.aborted) break;
    const timed = await timeTask(gpu, task, candidates, runs, signal, (label) => {
      onProgress?.(++done, total, label);
    });
    classes.push(timed);
    if (timed.winner) {
      const ms = timed.candidates.find((c) => c.variant === timed.winner)?.ms;
      gpu.tuning.set(task.family, task.shapeClass, timed.winner, ms ?? undefined);
    }
  }
  const chosen = classes.filter((c) => c.winner).length;
  if (chosen > 0) gpu.tuning.tunedAt = new Date().toISOString();
  const failed = classes.filter(
    (c) => c.candidates.length > 0 && c.candidates.every((x) => x.ms === null),
  ).length;
  const untimed = todo.length - chosen - failed; // not reached, or stopped while being timed
  onProgress?.(total, total, 'done');
  return result(
    'tuned',
    `tuned ${chosen} shape class${chosen === 1 ? '' : 'es'} for ${gpu.tuning.adapterKey}` +
      (failed > 0 ? ` (${failed} with every variant failing: default kernels)` : '') +
      (untimed > 0
        ? ` (${untimed} left to the defaults: ${signal?.aborted ? 'stopped' : `the ${budgetMs} ms budget ran out`})`
        : ''),
    classes,
    untimed,
  );
}

/**
 * One task per family/shape class: launches summed, the first task kept as the class's representative. Tasks
 * are plain objects (their methods own properties), so a spread copy keeps them.
 */
export function dedupeTasks(tasks: readonly TuneTask[]): TuneTask[] {
  const byKey = new Map<string, TuneTask>();
  for (const task of tasks) {
    const key = `${task.family}/${task.shapeClass}`;
    const seen = byKey.get(key);
    byKey.set(key, seen ? { ...seen, calls: seen.calls + task.calls } : task);
  }
  return [...byKey.values()];
}

/**
 * Times each candidate of one class (a failed one is reported, not thrown, unless the device is lost); no winner
 * when stopped before the last candidate.
 */
async function timeTask(
  gpu: Gpu,
  task: TuneTask,
  candidates: string[],
  runs: number,
  signal: AbortSignal | undefined,
  progress: (label: string) => void,
): Promise<TunedClass> {
  const heuristic = task.heuristic(gpu);
  const timed: TunedCandidate[] = [];
  const arena = new BufferArena(gpu);
  try {
    const launch = task.prepare(gpu, arena);
    for (const variant of candidates) {
      if (signal?.aborted) break;
      try {
        timed.push({ variant, ms: await timeVariant(gpu, (rec) => launch(rec, variant), runs) });
      } catch (error) {
        if (gpu.lost) throw gpu.lost;
        timed.push({ variant, ms: null, error: error instanceof Error ? error.message : String(error) });
      }
      progress(`${task.label}: ${variant}`);
    }
  } finally {
    arena.destroy();
  }
  return {
    family: task.family,
    shapeClass: task.shapeClass,
    label: task.label,
    calls: task.calls,
    heuristic,
    candidates: timed,
    winner: timed.length === candidates.length ? pickWinner(timed, heuristic) : null,
  };
}

/** The fastest candidate, unless the heuristic's own time is within the noise of it. */
export function pickWinner(timed: readonly TunedCandidate[], heuristic: string): string | null {
  const ok = timed.filter((c): c is TunedCandidate & { ms: number } => c.ms !== null);
  if (ok.length === 0) return null;
  const best = ok.reduce((a, b) => (b.ms < a.ms ? b : a));
  const fallback = ok.find((c) => c.variant === heuristic);
  return fallback && fallback.ms <= best.ms * (1 + NOISE) ? heuristic : best.variant;
}

/** Median GPU milliseconds of one launch: a warm-up pass (compiles, sizes `reps`), then `runs` timed passes. */
export async function timeVariant(
  gpu: Gpu,
  launch: (rec: CommandRecorder) => void,
  runs: number,
): Promise<number> {
  const profiler = new Profiler(gpu, runs);
  const rec = new CommandRecorder(gpu, { label: 'autotune' });
  try {
    rec.timedPass(profiler, 'warm-up', () => launch(rec));
    await rec.submitAndWait();
    const [warm] = await profiler.durations();
    const reps =
      warm.ms > 0 ? Math.min(MAX_REPS, Math.max(1, Math.round(TARGET_PASS_MS / warm.ms))) : MAX_REPS;
    for (let i = 0; i < runs; i++) {
      rec.timedPass(profiler, `run ${i}`, () => {
        for (let r = 0; r < reps; r++) launch(rec);
      });
    }
    await rec.submitAndWait();
    const samples = (await profiler.durations()).map((d) => d.ms / reps).sort((a, b) => a - b);
    const median = samples[Math.floor(samples.length / 2)];
    // Some drivers reset or wrap their timestamp counter: such a sample must not win (nor rank at all).
    if (!(median >= 0 && Number.isFinite(median))) throw new Error(`unusable GPU timestamps (${median} ms)`);
    return median;
  } finally {
    rec.destroy();
    profiler.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------
// The matmul family.

export interface MatmulTypes {
  a: ScalarType;
  b: ScalarType;
  c: ScalarType;
}

/** One matmul as a caller records it: dims, layout, storage types, and the K splits it asks for. */
export interface MatmulProblem {
  label: string;
  dims: MatmulDims;
  transA?: boolean;
  transB?: boolean;
  types: MatmulTypes;
  /** 1 when the caller accumulates into C (reads C too). */
  beta?: number;
  /** K splits as the caller runs them (the LoRA gradients' split-K); default 1. */
  splits?: number;
  /** Launches per training step; default 1. */
  calls?: number;
}

const layoutOf = (p: MatmulProblem): MatmulLayout => ({ aK: !p.transA, bK: p.transB === true });

/** Whether the tiled variants can run this problem at all (else only the generic kernel can). */
export function problemTiled(p: MatmulProblem): boolean {
  // The tiled kernels read any operand (vec4 where it can, scalar loads elsewhere); only matvec (M = 1) and
  // Aᵀ·Bᵀ run the generic kernel.
  return p.dims.M > 1 && !(p.transA && p.transB);
}

/** Whether the skinny variant can run this problem (N ≤ 64, A K-contiguous and vec4-readable, no split-K). */
export function problemSkinny(p: MatmulProblem): boolean {
  return problemTiled(p) && skinnyShape(p.dims, layoutOf(p)) && (p.splits ?? 1) <= 1;
}

export function matmulTask(p: MatmulProblem): TuneTask {
  const { M, N, K, batch = 1 } = p.dims;
  const layout = layoutOf(p);
  const splits = p.splits ?? 1;
  return {
    family: 'matmul',
    shapeClass: matmulShapeClass(p.dims, layout, p.types),
    label: `${p.label} ${M}×${N}×${K}${batch > 1 ? ` ×${batch}` : ''}${splits > 1 ? ` split-K ${splits}` : ''}`,
    calls: p.calls ?? 1,
    flops: 2 * M * N * K * batch,
    candidates: (gpu) =>
      problemTiled(p)
        ? MATMUL_VARIANTS.filter(
            (v) => (v === 'skinny' ? problemSkinny(p) : true) && variantFits(gpu, v, layout),
          )
        : ['generic'],
    heuristic: (gpu) => {
      if (!problemTiled(p)) return 'generic';
      return problemSkinny(p)
        ? defaultVariant(gpu, p.dims, layout)
        : defaultTiledVariant(gpu, p.dims, layout);
    },
    prepare(gpu, arena) {
      const bytes = (n: number, t: ScalarType) => n * batch * bytesPerElement(t);
      const a = { binding: arena.alloc('autotune.a', bytes(M * K, p.types.a)), dtype: p.types.a };
      const b = { binding: arena.alloc('autotune.b', bytes(K * N, p.types.b)), dtype: p.types.b };
      const c = { binding: arena.alloc('autotune.c', bytes(M * N, p.types.c)), dtype: p.types.c };
      const wsBytes = matmulWorkspaceBytes(p.dims, splits);
      const workspace = wsBytes > 0 ? arena.alloc('autotune.workspace', wsBytes) : undefined;
      const { transA, transB, beta } = p;
      return (rec, variant) => {
        if (variant !== undefined && !(MATMUL_VARIANTS as readonly string[]).includes(variant)) {
          throw new RangeError(`matmul: no variant '${variant}' (variants: ${MATMUL_VARIANTS.join(', ')})`);
        }
        const forced = variant as MatmulVariant | undefined;
        matmul(rec, c, a, b, p.dims, { transA, transB, beta, splits, workspace, variant: forced });
      };
    },
  };
}

/**
 * One task per shape class. A class's representative is a problem the tiled kernels can run when any of its
 * problems is one (so its candidates are all there), the larger by FLOPs among those; launches are summed.
 */
export function matmulTasks(problems: readonly MatmulProblem[]): TuneTask[] {
  const best = new Map<string, { problem: MatmulProblem; calls: number }>();
  for (const p of problems) {
    const key = matmulShapeClass(p.dims, layoutOf(p), p.types);
    const seen = best.get(key);
    const calls = (seen?.calls ?? 0) + (p.calls ?? 1);
    const better = !seen || outranks(p, seen.problem);
    best.set(key, { problem: better ? p : seen.problem, calls });
  }
  return [...best.values()].map(({ problem, calls }) => matmulTask({ ...problem, calls }));
}

/** A class's representative: one the tiled kernels read as vec4 (the class's usual case), then the largest. */
function outranks(p: MatmulProblem, q: MatmulProblem): boolean {
  const vec4 = (x: MatmulProblem) =>
    problemTiled(x) && tiledEligible(x.dims, layoutOf(x), x.dims.M * x.dims.K, x.dims.K * x.dims.N);
  if (vec4(p) !== vec4(q)) return vec4(p);
  const flops = (x: MatmulProblem) => x.dims.M * x.dims.N * x.dims.K * (x.dims.batch ?? 1);
  return flops(p) > flops(q);
}

// ---------------------------------------------------------------------------------------------------------
// A model's problems at its real shapes.

/** What the model's shapes come from: the block structure plus the vocabulary (the LM head). */
export interface TuneModelShape extends LoraModelShape {
  vocab: number;
}

export interface ModelTuneOptions {
  /** Tokens per micro-batch (batch·seq). Default 4·256. */
  tokens?: number;
  /** LoRA rank. Default 16. */
  rank?: number;
  /** The linears that carry an adapter; default every linear of the blocks (all-linear). */
  adapted?: readonly AdaptedModule[];
  /** Storage type of the frozen weights and activations. Default the device's precision. */
  dtype?: 'f16' | 'f32';
}

export const DEFAULT_TUNE_TOKENS = 4 * 256;
export const DEFAULT_TUNE_RANK = 16;

/** The tune options of a training run: its micro-batch tokens, rank and adapted linears. */
export function runTuneOptions(
  spec: TuneModelShape,
  run: { batch: number; seq: number; lora: LoraConfig },
): ModelTuneOptions {
  return { tokens: run.batch * run.seq, rank: run.lora.r, adapted: resolveTargets(run.lora, spec) };
}

/**
 * Every matmul one training step records, as src/engine/model/linear.ts and kernels/crossentropy.ts run them:
 * per linear the forward X·Wᵀ and input gradient dY·W (GPT-2's Conv1D stores Wᵀ: NN forward, NT backward),
 * the adapter's products where there is one, and the LM head's vocabulary chunks.
 */
export function modelMatmulProblems(
  spec: TuneModelShape,
  limits: Parameters<typeof crossEntropyPlan>[0]['limits'],
  options: ModelTuneOptions & { dtype: 'f16' | 'f32' },
): MatmulProblem[] {
  const T = options.tokens ?? DEFAULT_TUNE_TOKENS;
  const r = options.rank ?? DEFAULT_TUNE_RANK;
  const act = options.dtype;
  const adapted = new Set((options.adapted ?? blockLinears(spec)).map((m) => m.path));
  const problems: MatmulProblem[] = [];
  for (const m of blockLinears(spec)) {
    problems.push(...linearProblems(m, T, act, adapted.has(m.path) ? r : 0));
  }
  problems.push(...headProblems(spec, limits, T, act));
  return problems;
}

/**
 * A linear's products as linear.ts runs them: the base forward and input gradient (each carrying the adapter's
 * up-projection as an extension of K, a small share of the work), and the adapter's own skinny products.
 */
function linearProblems(m: AdaptedModule, T: number, act: ScalarType, r: number): MatmulProblem[] {
  const { name, inFeatures: I, outFeatures: O, fanInFanOut } = m;
  const same = { a: act, b: act, c: act };
  const base: MatmulProblem[] = [
    { label: `${name} fwd X·Wᵀ`, dims: { M: T, N: O, K: I }, transB: !fanInFanOut, types: same },
    { label: `${name} bwd dX = dY·W`, dims: { M: T, N: I, K: O }, transB: fanInFanOut, types: same },
  ];
  if (r === 0) return base;
  const f32 = 'f32' as const;
  const split = (M: number, N: number) => chooseSplits({ M, N, K: T });
  return [
    ...base,
    {
      label: `${name} LoRA u = X·Aᵀ`,
      dims: { M: T, N: r, K: I },
      transB: true,
      types: { a: act, b: f32, c: f32 },
    },
    { label: `${name} LoRA v = dY·B`, dims: { M: T, N: r, K: O }, types: { a: act, b: f32, c: f32 } },
    {
      label: `${name} LoRA dB += s·dYᵀ·u`,
      dims: { M: O, N: r, K: T },
      transA: true,
      beta: 1,
      splits: split(O, r),
      types: { a: act, b: f32, c: f32 },
    },
    {
      label: `${name} LoRA dA += s·vᵀ·X`,
      dims: { M: r, N: I, K: T },
      transA: true,
      beta: 1,
      splits: split(r, I),
      types: { a: f32, b: act, c: f32 },
    },
  ];
}

/**
 * The LM head in vocabulary chunks as training runs it (crossentropy.ts, fused): logits H·W_cᵀ into the f32
 * chunk, then G ← α∘G + P·W_c into f32. The last chunk may be shorter: its own shape class.
 */
function headProblems(
  spec: TuneModelShape,
  limits: Parameters<typeof crossEntropyPlan>[0]['limits'],
  T: number,
  act: ScalarType,
): MatmulProblem[] {
  const C = spec.hidden;
  const plan = crossEntropyPlan({ limits }, { N: T, C, V: spec.vocab }, act);
  const sizes = new Map<number, number>(); // chunk length → chunks of that length
  for (let v0 = 0; v0 < spec.vocab; v0 += plan.chunk) {
    const vc = Math.min(plan.chunk, spec.vocab - v0);
    sizes.set(vc, (sizes.get(vc) ?? 0) + 1);
  }
  return [...sizes].flatMap(([vc, count]) => [
    {
      label: 'head logits = H·W_cᵀ',
      dims: { M: T, N: vc, K: C },
      transB: true,
      calls: count,
      types: { a: act, b: act, c: 'f32' as const },
    },
    {
      label: 'head G ← α∘G + P·W_c',
      dims: { M: T, N: C, K: vc },
      beta: 1,
      calls: count,
      types: { a: 'f32' as const, b: act, c: 'f32' as const },
    },
  ]);
}

/** Every family's tasks for one model on this device: matmul today. */
export function modelTuneTasks(gpu: Gpu, spec: TuneModelShape, options: ModelTuneOptions = {}): TuneTask[] {
  const dtype = options.dtype ?? gpu.precision;
  return matmulTasks(modelMatmulProblems(spec, gpu.limits, { ...options, dtype }));
}
