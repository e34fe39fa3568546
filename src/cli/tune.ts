// `tunelab tune`: a hyperparameter search on a pool of worker threads, each with its own GPU device and copy
// of the model. Live table on a terminal, plain lines otherwise. Everything the study does is appended to
// <out>/study.jsonl as it happens (written per event), so `--resume <out>` continues a stopped study.
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import {
  datasetFingerprint,
  EXPORT_PATHS,
  exportBundle,
  preset,
  PRESET_NAMES,
  type ExportFile,
  type PresetName,
} from '../engine/export/index.ts';
import type { ModelFamily } from '../engine/model/config.ts';
import {
  createStudy,
  loadStudy,
  SAMPLER_NAMES,
  type PrunerSpec,
  type SamplerName,
  type SpaceSpec,
  type Study,
  type StudyEvent,
} from '../engine/search/index.ts';
import { fieldOfParam, trialConfigFromParams, type TrialConfig } from '../engine/train/config.ts';
import { dataTokenizer, padIdOf, splitExamples, type Example } from '../engine/train/data.ts';
import {
  checkObjective,
  checkSpaceNames,
  defaultPoolSize,
  InProcessSlots,
  OBJECTIVES,
  optimize,
  pbtConflicts,
  trialTrainerOptions,
  type BestTrial,
  type Objective,
  type OptimizeResult,
  type TrialResult,
  type TrialSlots,
  type WorkerInfo,
  type WorkerInit,
} from '../engine/tune/index.ts';
import { nodeDirectoryFiles } from '../node/files.ts';
import { nodeGpu } from '../node/dawn.ts';
import { WorkerPool } from '../workers/pool.ts';
import { spawnNodeWorker } from '../workers/spawn-node.ts';
import {
  numberFlag,
  parseFlags,
  precisionFlag,
  stringFlag,
  TRAIN_FLAGS,
  trainerOptionsFromFlags,
  UsageError,
  type FlagValues,
} from './args.ts';
import { openModelDir, readDataset } from './common.ts';
import { cliGpu } from './gpu.ts';
import { AUTOTUNE_USAGE, tuningRecordForWorkers } from './tuning.ts';

export const TUNE_USAGE = `tunelab tune --model DIR --data FILE [--val FILE | --val-ratio 0.1] --out DIR [options]
tunelab tune --resume DIR [--trials N] [--workers K]

  search:      --space FILE (JSON search space) | --preset lora-basic|lora-full (lora-basic)
               --sampler ${SAMPLER_NAMES.join('|')} (tpe)  --pruner none|median|asha (none)  --pbt
               --objective val_loss|perplexity|accuracy|macro_f1 (val_loss)  --seed 42
  budget:      --trials N (10, complete + pruned)  --timeout SECONDS (no new trial after it)
               --steps N | --epochs E per trial  --eval-every N (steps/4: the pruning rung, PBT interval)
  workers:     --workers K (from the memory estimate and the adapter)  --in-process (no worker threads)
               --recompute (activation recomputation per block in every trial: less memory, more time)
  fixed:       any \`tunelab train\` flag (--seq, --batch, --lr, --r, ...) fixes that value for every trial
${AUTOTUNE_USAGE}
               (tuned once here at the fixed shapes; every worker loads the same choices)

  Writes to --out: study.jsonl (the study's event log, appended per event), trials.jsonl (how each trial
  ended, with the reason of a failure), tune.json (the settings, for --resume), adapter/ (the best trial's
  PEFT adapter, rewritten whenever a trial beats it) and at the end the export bundle of the best trial
  (best-config.json, hf/, axolotl.yaml, optuna_search.py, ray_tune_search.py, trials.csv). --resume marks trials that were running when the study stopped as failed
  and asks new ones in their place; finished trials are never run again.`;

const TUNE_FLAGS = {
  ...TRAIN_FLAGS,
  model: { type: 'string' },
  data: { type: 'string' },
  val: { type: 'string' },
  'val-ratio': { type: 'string' },
  out: { type: 'string' },
  resume: { type: 'string' },
  space: { type: 'string' },
  preset: { type: 'string' },
  sampler: { type: 'string' },
  pruner: { type: 'string' },
  pbt: { type: 'boolean' },
  objective: { type: 'string' },
  trials: { type: 'string' },
  timeout: { type: 'string' },
  workers: { type: 'string' },
  'in-process': { type: 'boolean' },
  'base-model': { type: 'string' },
  recompute: { type: 'boolean' },
  'no-autotune': { type: 'boolean' },
} as const;

export interface TuneHooks {
  /** Called once the pool is up (tests kill a worker through it). */
  onPool?(pool: TrialSlots): void;
  onTrialStep?(pool: TrialSlots, trial: number, step: number, slot: number): void;
  signal?: AbortSignal;
}

export async function tuneCommand(argv: string[], hooks: TuneHooks = {}): Promise<number> {
  let flags = parseFlags(argv, TUNE_FLAGS);
  const resume = stringFlag(flags, 'resume');
  let saved: FlagValues | null = null;
  if (resume) {
    const text = await readFile(join(resume, 'tune.json'), 'utf8').catch(() => {
      throw new UsageError(`--resume: no tune.json in '${resume}' (is it the --out of a tunelab tune run?)`);
    });
    saved = (JSON.parse(text) as { flags: FlagValues }).flags;
    // What is given now wins (e.g. more --trials, other --workers).
    flags = { ...saved, ...Object.fromEntries(Object.entries(flags).filter(([k]) => k !== 'resume')) };
  }
  const out = resume ?? stringFlag(flags, 'out', true);
  const dir = stringFlag(flags, 'model', true);
  const dataFile = stringFlag(flags, 'data', true);
  const valFile = stringFlag(flags, 'val');
  const valRatio = numberFlag(flags, 'val-ratio', valFile ? undefined : 0.1, { above: 0, max: 0.9 });
  if (valFile && flags['val-ratio'] !== undefined)
    throw new UsageError('give --val or --val-ratio, not both');
  const trials = numberFlag(flags, 'trials', 10, { min: 1, integer: true })!;
  const timeout = numberFlag(flags, 'timeout', undefined, { above: 0 });
  const objective = (stringFlag(flags, 'objective') ?? 'val_loss') as Objective;
  if (!(objective in OBJECTIVES))
    throw new UsageError(
      `--objective: expected one of ${Object.keys(OBJECTIVES).join(', ')}, got '${objective}'`,
    );

  const opened = await openModelDir(dir);
  const family = opened.spec.family;
  trainerOptionsFromFlags(flags, opened.spec); // every flag checked, errors named by flag
  const presetName = presetFlag(flags);
  const fixed = fixedConfig(
    flags,
    presetName ? preset(presetName, family).fixed : {},
    opened.spec.maxPositions,
  );
  let base = trialTrainerOptions({}, fixed, family);
  if (base.seq > opened.spec.maxPositions)
    throw new UsageError(`--seq ${base.seq} exceeds the model's ${opened.spec.maxPositions} positions`);

  // Data: parsed once here, sent to every worker as token ids.
  const data = await readDataset(dataFile, opened, { seq: base.seq });
  let train: Example[] = data.examples;
  let validation: Example[] = [];
  if (valFile)
    validation = (await readDataset(valFile, opened, { seq: base.seq, classes: data.classes })).examples;
  else ({ train, validation } = splitExamples(data.examples, valRatio!, base.seed));
  if (fixed.evalEvery === undefined) {
    // Four evaluation points per trial: the pruning rungs (and PBT's interval).
    const steps = base.steps ?? Math.ceil(((base.epochs ?? 1) * train.length) / (base.batch * base.accum));
    fixed.evalEvery = Math.max(1, Math.floor(steps / 4));
  }
  base = trialTrainerOptions({}, fixed, family, data.classes);
  try {
    checkObjective(objective, { classes: data.classes, validation: validation.length });
  } catch (error) {
    throw new UsageError(`--objective: ${(error as Error).message}`);
  }

  // The study: new, or reloaded from its log.
  await mkdir(out, { recursive: true });
  const logPath = join(out, 'study.jsonl');
  let study: Study;
  const pending: StudyEvent[] = [];
  if (resume) {
    const text = await readFile(logPath, 'utf8').catch(() => {
      throw new UsageError(`--resume: no study.jsonl in '${resume}'`);
    });
    const loaded = loadStudy(text);
    for (const e of loaded.errors)
      process.stderr.write(`warning: study.jsonl line ${e.line} skipped: ${e.reason}\n`);
    study = loaded.study;
  } else {
    const space = await searchSpace(flags, presetName, family);
    study = createStudy({
      space,
      sampler: samplerFlag(flags),
      pruner: prunerFlag(flags, base.evalEvery),
      direction: OBJECTIVES[objective].direction,
      seed: base.seed,
      onEvent: (e) => pending.push(e),
    });
    const existing = await readFile(logPath, 'utf8').catch(() => '');
    if (existing.trim() !== '')
      throw new UsageError(
        `--out: '${out}' already holds a study; continue it with --resume ${out} or pick another --out`,
      );
    await writeFile(join(out, 'tune.json'), `${JSON.stringify({ flags }, null, 2)}\n`);
    await writeFile(logPath, '');
    await writeFile(join(out, 'trials.jsonl'), '');
  }
  if (flags.pbt === true) {
    const moving = pbtConflicts(study.space.spec);
    if (moving.length > 0)
      throw new UsageError(
        `--pbt: ${moving.join(', ')} change the adapter or the batches and cannot move mid-trial; fix them with flags`,
      );
  }
  // Every event reaches the disk before the next one happens (a crash loses at most the event in flight).
  const log = openSync(logPath, 'a');
  for (const e of pending) writeSync(log, `${JSON.stringify(e)}\n`);
  study.onEvent = (e) => writeSync(log, `${JSON.stringify(e)}\n`);
  const trialsLog = openSync(join(out, 'trials.jsonl'), 'a');

  const precision = precisionFlag(flags);
  const tuning = await tuningRecordForWorkers(precision, opened.spec, base, flags['no-autotune'] !== true);
  const init: WorkerInit = {
    model: { kind: 'dir', path: dir },
    precision,
    train,
    validation,
    padId: padIdOf(dataTokenizer(opened.tokenizer)),
    ...(tuning ? { tuning } : {}),
  };
  const options = (params: Record<string, string | number | boolean>) => ({
    ...trialTrainerOptions(params, fixed, family, data.classes),
    ...(flags.recompute === true ? { recompute: true } : {}),
  });

  const workersFlag = numberFlag(flags, 'workers', undefined, { min: 1, integer: true });
  let size = workersFlag;
  if (size === undefined) {
    // Probe the adapter once here (cheap) to size the pool.
    const gpu = await cliGpu(precision);
    const software = /llvmpipe|lavapipe|swiftshader/i.test(gpu.adapter.description) || gpu.adapter.isFallback;
    const pick = defaultPoolSize({
      spec: opened.spec,
      options: base,
      precision: gpu.precision,
      software,
      cores: availableParallelism(),
    });
    gpu.destroy();
    size = pick.size;
    process.stderr.write(`workers: ${size} (${pick.why})\n`);
  } else if (!process.env.VK_ICD_FILENAMES && !process.env.TUNELAB_NO_SETUP) {
    (await cliGpu(precision)).destroy(); // sets up the software driver's environment for the threads
  }

  const inProcess = flags['in-process'] === true;
  let slots: TrialSlots;
  let infos: WorkerInfo[];
  if (inProcess) {
    const s = new InProcessSlots({ gpu: nodeGpu, openDir: nodeDirectoryFiles }, size, init);
    infos = await s.start();
    slots = s;
  } else {
    const pool = new WorkerPool(spawnNodeWorker, size, init);
    infos = await pool.start();
    slots = pool;
  }
  process.stderr.write(
    `${size} ${inProcess ? 'in-process runner' : 'worker thread'}${size > 1 ? 's' : ''} on ${infos[0].adapter} ` +
      `(${infos[0].precision}), ${train.length} training / ${validation.length} validation examples, ` +
      `${study.trials.length > 0 ? `resuming at trial ${study.trials.length}, ` : ''}objective ${OBJECTIVES[objective].label}\n`,
  );
  hooks.onPool?.(slots);

  const abort = new AbortController();
  const onSignal = () => abort.abort();
  hooks.signal?.addEventListener('abort', onSignal);
  process.once('SIGINT', onSignal);
  const table = new LiveTable(study, objective);
  let writing = Promise.resolve();
  let result: OptimizeResult;
  try {
    result = await optimize(study, slots, {
      trials,
      objective,
      trainerOptions: options,
      baseModel: stringFlag(flags, 'base-model') ?? dir,
      pbt: flags.pbt === true ? { interval: base.evalEvery! } : undefined,
      timeoutMs: timeout === undefined ? undefined : timeout * 1000,
      signal: abort.signal,
      listener: {
        trialStarted: (t) => table.started(t.number, t.slot, t.params, t.totalSteps),
        step: (n, m) => {
          table.step(n, m.step, m.loss);
          const slot = table.slotOf(n);
          if (slot !== undefined) hooks.onTrialStep?.(slots, n, m.step, slot);
        },
        evaluated: (n, m, value) => table.evaluated(n, m.step, value),
        exploited: (n, donor, params, note) =>
          table.note(`trial ${n} exploits trial ${donor}: ${fmtParams(params)}${note ? ` (${note})` : ''}`),
        workerReplaced: (slot, reason) => table.note(`worker ${slot} replaced (${reason})`),
        trialFinished: (r) => {
          writeSync(trialsLog, `${JSON.stringify(r)}\n`);
          table.finished(r);
        },
        // The best trial's adapter goes to disk as soon as it is the best: a later crash does not lose it.
        newBest: (best) => {
          if (best.adapter) writing = writing.then(() => writeAdapter(out, best));
        },
      },
    });
    await writing;
  } finally {
    process.off('SIGINT', onSignal);
    hooks.signal?.removeEventListener('abort', onSignal);
    table.close();
    await slots.close();
    closeSync(log);
    closeSync(trialsLog);
  }
  let written: string[] = [];
  if (result.best) {
    const baseModel = stringFlag(flags, 'base-model') ?? dir;
    const timings = Object.fromEntries(result.results.map((r) => [r.number, { duration: r.seconds }]));
    const metrics = result.best.metrics;
    const files = exportBundle(
      {
        study,
        config: trialConfigFromParams(result.best.params, fixed, { family }),
        fixed,
        model: { id: baseModel, revision: null, family, spec: opened.spec },
        dataset: {
          fingerprint: datasetFingerprint([
            await readFile(dataFile),
            ...(valFile ? [await readFile(valFile)] : []),
          ]),
          name: basename(dataFile),
          format: data.format,
          ...(valFile ? {} : { valRatio }),
          examples: data.examples.length,
        },
        tunelabVersion: await version(),
        objective,
        ...(metrics
          ? {
              metrics: {
                valLoss: metrics.valLoss,
                perplexity: metrics.perplexity,
                accuracy: metrics.accuracy,
                macroF1: metrics.macroF1,
              },
            }
          : {}),
        timings,
      },
      result.best.adapter ?? undefined,
    );
    written = await writeFiles(out, files);
  }
  printSummary(study, result, out, written);
  return result.stopped ? 130 : 0;
}

/** The best trial's PEFT adapter, where the export bundle puts it. */
async function writeAdapter(out: string, best: BestTrial): Promise<void> {
  if (!best.adapter) return;
  await mkdir(join(out, 'adapter'), { recursive: true });
  await writeFile(join(out, EXPORT_PATHS.adapterConfig), best.adapter['adapter_config.json']);
  await writeFile(join(out, EXPORT_PATHS.adapterWeights), best.adapter['adapter_model.safetensors']);
}

/** The export bundle, less study.jsonl (the live log is already there, with every event). */
async function writeFiles(out: string, files: ExportFile[]): Promise<string[]> {
  const written: string[] = [];
  for (const f of files) {
    if (f.path === EXPORT_PATHS.studyLog) continue;
    const path = join(out, ...f.path.split('/'));
    await mkdir(join(path, '..'), { recursive: true });
    await writeFile(path, f.contents);
    written.push(f.path);
  }
  return written;
}

async function version(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function presetFlag(flags: FlagValues): PresetName | undefined {
  const name = stringFlag(flags, 'preset') ?? (flags.space === undefined ? 'lora-basic' : undefined);
  if (name !== undefined && !(PRESET_NAMES as readonly string[]).includes(name))
    throw new UsageError(`--preset: expected one of ${PRESET_NAMES.join(', ')}, got '${name}'`);
  return name as PresetName | undefined;
}

/**
 * The values every trial shares: the preset's, then each train flag given (a flag wins over the preset and
 * removes its parameter from the space), then tune's own defaults (20 steps, seq ≤ the model's positions).
 */
function fixedConfig(
  flags: FlagValues,
  presetFixed: Partial<TrialConfig>,
  maxPositions: number,
): Partial<TrialConfig> {
  const fixed: Record<string, unknown> = { ...presetFixed };
  for (const flag of Object.keys(TRAIN_FLAGS)) {
    const field = fieldOfParam(flag);
    if (flags[flag] !== undefined && field !== undefined) fixed[field] = flags[flag];
  }
  if (fixed.steps === undefined && fixed.epochs === undefined) fixed.steps = 20;
  fixed.seq ??= Math.min(256, maxPositions);
  return fixed as Partial<TrialConfig>;
}

/** The space from --space or --preset, less the parameters a train flag fixes. */
async function searchSpace(
  flags: FlagValues,
  presetName: PresetName | undefined,
  family: ModelFamily,
): Promise<SpaceSpec> {
  const file = stringFlag(flags, 'space');
  if (file && flags.preset !== undefined) throw new UsageError('give --space or --preset, not both');
  let space: SpaceSpec;
  if (file) {
    const text = await readFile(file, 'utf8').catch((e: Error) => {
      throw new UsageError(`--space: cannot read ${file}: ${e.message}`);
    });
    try {
      space = JSON.parse(text) as SpaceSpec;
    } catch (e) {
      throw new UsageError(`--space: ${file} is not JSON: ${(e as Error).message}`);
    }
  } else space = structuredClone(preset(presetName ?? 'lora-basic', family).space);
  const flagged = new Set(
    Object.keys(TRAIN_FLAGS)
      .filter((f) => flags[f] !== undefined)
      .map((f) => fieldOfParam(f)),
  );
  for (const name of Object.keys(space)) {
    if (!flagged.has(fieldOfParam(name))) continue;
    delete space[name];
    // A value derived from it (lora_alpha = 2·r) follows the flag through the config defaults.
    for (const [other, spec] of Object.entries(space))
      if (spec.type === 'derived' && spec.from === name) delete space[other];
  }
  try {
    checkSpaceNames(space);
  } catch (e) {
    throw new UsageError(`--space: ${(e as Error).message}`);
  }
  return space;
}

function samplerFlag(flags: FlagValues): SamplerName {
  const s = stringFlag(flags, 'sampler') ?? 'tpe';
  if (!(SAMPLER_NAMES as readonly string[]).includes(s))
    throw new UsageError(`--sampler: expected one of ${SAMPLER_NAMES.join(', ')}, got '${s}'`);
  return s as SamplerName;
}

function prunerFlag(flags: FlagValues, evalEvery: number | undefined): PrunerSpec {
  const p = stringFlag(flags, 'pruner') ?? 'none';
  const rung = evalEvery ?? 1;
  if (p === 'none') return 'none';
  if (p === 'median') return { type: 'median', nStartupTrials: 1, nWarmupSteps: rung };
  if (p === 'asha') return { type: 'asha', minResource: rung };
  throw new UsageError(`--pruner: expected none, median or asha, got '${p}'`);
}

const fmtParams = (p: Record<string, unknown>) =>
  Object.entries(p)
    .map(([k, v]) => `${k}=${typeof v === 'number' ? Number(v.toPrecision(3)) : String(v)}`)
    .join(' ');

/** One line per running trial plus the best so far, redrawn in place on a terminal; plain lines otherwise. */
class LiveTable {
  readonly #tty = process.stdout.isTTY === true;
  readonly #rows = new Map<
    number,
    { slot: number; params: string; step: number; total: number; loss: number; value?: number }
  >();
  #drawn = 0;
  #timer: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly study: Study,
    readonly objective: Objective,
  ) {
    if (this.#tty) this.#timer = setInterval(() => this.#draw(), 250);
  }

  slotOf(n: number): number | undefined {
    return this.#rows.get(n)?.slot;
  }

  started(n: number, slot: number, params: Record<string, unknown>, total: number) {
    this.#rows.set(n, { slot, params: fmtParams(params), step: 0, total, loss: NaN });
    this.#line(`trial ${n} started on worker ${slot}: ${fmtParams(params)}`);
  }

  step(n: number, step: number, loss: number) {
    const row = this.#rows.get(n);
    if (row) Object.assign(row, { step, loss });
  }

  evaluated(n: number, step: number, value: number) {
    const row = this.#rows.get(n);
    if (row) row.value = value;
    this.#line(`trial ${n} step ${step}: ${this.objective} ${value.toFixed(4)}`);
  }

  note(text: string) {
    this.#line(text);
  }

  finished(r: TrialResult) {
    this.#rows.delete(r.number);
    const what =
      r.state === 'complete'
        ? `complete, ${this.objective} ${r.value!.toFixed(4)}`
        : r.state === 'failed'
          ? `failed: ${r.reason}`
          : `pruned at step ${r.steps}`;
    const best = this.study.bestTrial;
    this.#line(
      `trial ${r.number} ${what} (${r.steps} steps, ${r.seconds.toFixed(1)} s)` +
        (best ? `  best: trial ${best.number} ${best.value!.toFixed(4)}` : ''),
    );
  }

  #line(text: string) {
    if (this.#tty) {
      this.#clear();
      process.stdout.write(`${text}\n`);
      this.#draw();
    } else process.stdout.write(`${text}\n`);
  }

  #clear() {
    if (this.#drawn > 0) process.stdout.write(`\x1b[${this.#drawn}A\x1b[J`);
    this.#drawn = 0;
  }

  #draw() {
    this.#clear();
    const lines = [...this.#rows.entries()].map(([n, r]) => {
      const width = 20;
      const filled = r.total > 0 ? Math.round((r.step / r.total) * width) : 0;
      return `  #${String(n).padEnd(3)} w${r.slot} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${r.step}/${r.total} loss ${Number.isNaN(r.loss) ? '-' : r.loss.toFixed(4)}${r.value === undefined ? '' : ` ${this.objective} ${r.value.toFixed(4)}`}  ${r.params}`;
    });
    const best = this.study.bestTrial;
    lines.push(
      `  best: ${best ? `trial ${best.number} ${this.objective} ${best.value!.toFixed(4)} ${fmtParams(best.params)}` : '-'}`,
    );
    process.stdout.write(`${lines.join('\n')}\n`);
    this.#drawn = lines.length;
  }

  close() {
    if (this.#timer) clearInterval(this.#timer);
    if (this.#tty) this.#clear();
  }
}

function printSummary(study: Study, result: OptimizeResult, out: string, written: string[]) {
  const count = (s: string) => study.trials.filter((t) => t.state === s).length;
  const lines = [
    `${study.trials.length} trials: ${count('complete')} complete, ${count('pruned')} pruned, ${count('failed')} failed` +
      (result.interrupted.length ? ` (${result.interrupted.length} interrupted by the last stop)` : '') +
      (result.stopped ? '; stopped' : ''),
  ];
  const best = study.bestTrial;
  if (best)
    lines.push(`best: trial ${best.number}, value ${best.value!.toFixed(4)}, ${fmtParams(best.params)}`);
  lines.push(
    `wrote study.jsonl, trials.jsonl, tune.json${written.length ? `, ${written.join(', ')}` : ''} to ${out}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}
