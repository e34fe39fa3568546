// Kernel autotuning for the CLI's runs: the choices cached for this GPU are loaded, the shape classes of this run
// that have none are timed (progress on stderr) and the cache is saved again. `--no-autotune` uses neither the
// cache nor timing: the built-in heuristic defaults.
import type { Gpu, PrecisionChoice, TuningRecord } from '../engine/gpu/index.ts';
import { autotune, modelTuneTasks, runTuneOptions, type TuneModelShape } from '../engine/kernels/autotune.ts';
import type { LoraConfig } from '../engine/lora/config.ts';
import { loadTuningCache, saveTuningCache, tuningCachePath } from '../node/tuning-cache.ts';
import { Progress } from './common.ts';
import { cliGpu } from './gpu.ts';

export const AUTOTUNE_USAGE = `  kernels:     --no-autotune  use the built-in kernel defaults: neither time kernel variants on this GPU
               nor load the choices timed before. Otherwise the shapes of the run not yet timed on this GPU
               are timed first (a few seconds) and kept in $TUNELAB_CACHE_DIR (else $XDG_CACHE_HOME/tunelab
               or ~/.cache/tunelab). $TUNELAB_AUTOTUNE_MS sets the time budget (default 4000 ms)`;

/** The autotuning budget: $TUNELAB_AUTOTUNE_MS when set (a slow or cold-cache machine reaches more classes). */
export function autotuneBudgetMs(env: NodeJS.ProcessEnv = process.env): number | undefined {
  const raw = env.TUNELAB_AUTOTUNE_MS;
  if (raw === undefined || raw === '') return undefined;
  const ms = Number(raw);
  if (!Number.isFinite(ms) || ms <= 0)
    throw new Error(`TUNELAB_AUTOTUNE_MS: expected a positive number of milliseconds, got '${raw}'`);
  return ms;
}

/** The shapes a run trains at: batch·seq tokens, its rank and adapted linears. */
export interface RunShape {
  batch: number;
  seq: number;
  lora: LoraConfig;
}

/** Fills gpu.tuning for this run: the cached record for the adapter, then timing what it lacks. */
export async function prepareKernelTuning(
  gpu: Gpu,
  spec: TuneModelShape,
  run: RunShape,
  enabled: boolean,
): Promise<void> {
  if (!enabled) {
    process.stderr.write('kernels: built-in defaults (--no-autotune)\n');
    return;
  }
  const path = tuningCachePath();
  const cached = await loadTuningCache(gpu.tuning, path);
  const progress = new Progress('autotuning kernels');
  const result = await autotune(gpu, modelTuneTasks(gpu, spec, runTuneOptions(spec, run)), {
    budgetMs: autotuneBudgetMs(),
    onProgress: (done, total, label) => progress.update(done, total, label),
  });
  if (result.status === 'cached') {
    const when = gpu.tuning.tunedAt ? ` (tuned ${gpu.tuning.tunedAt.slice(0, 10)})` : '';
    process.stderr.write(`kernels: choices for ${result.adapter} loaded from ${path}${when}\n`);
    return;
  }
  if (result.status === 'no-timestamps') {
    process.stderr.write(`kernels: ${result.message}\n`);
    return;
  }
  progress.done(`${result.message}${cached ? ', the rest loaded from the cache' : ''}`);
  try {
    await saveTuningCache(gpu.tuning, path);
  } catch (error) {
    process.stderr.write(
      `warning: the kernel choices could not be saved to ${path}: ${(error as Error).message}\n`,
    );
  }
}

/**
 * The tuning record trial workers load (they never tune: the main thread tunes once, on a device of its own).
 * Undefined with --no-autotune or when nothing could be chosen.
 */
export async function tuningRecordForWorkers(
  precision: PrecisionChoice,
  spec: TuneModelShape,
  run: RunShape,
  enabled: boolean,
): Promise<TuningRecord | undefined> {
  if (!enabled) {
    process.stderr.write('kernels: built-in defaults (--no-autotune)\n');
    return undefined;
  }
  const gpu = await cliGpu(precision);
  try {
    await prepareKernelTuning(gpu, spec, run, true);
    return gpu.tuning.size > 0 ? gpu.tuning.toRecord() : undefined;
  } finally {
    gpu.destroy();
  }
}
