// `tunelab tune`: a hyperparameter search on a pool of worker threads, each with its own GPU device and copy
// of the model. Live table on a terminal, plain lines otherwise. Everything the study does is appended to
// <out>/study.jsonl as it happens (written per event), so `--resume <out>` continues a stopped study.
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import {
  datasetFingerprint,
  EXPORT_PATHS,
  exportBundle,
  planExportContext,
  type ExportFile,
} from '../engine/export/index.ts';
import { parseJson } from '../engine/json.ts';
import type { OpenedModel } from '../engine/model/open.ts';
import {
  createStudy,
  fallbackNote,
  SAMPLER_NAMES,
  type Study,
  type StudyEvent,
  type TrialRecord,
  type WarmStartSeed,
} from '../engine/search/index.ts';
import { dataTokenizer, padIdOf, splitExamples, type Dataset, type Example } from '../engine/train/data.ts';
import {
  checkConstraints,
  checkObjective,
  DEFAULT_MAX_EVAL_EXAMPLES,
  CONSTRAINT_METRICS,
  defaultPoolSize,
  formatConstraint,
  formatObjectives,
  MAX_OBJECTIVES,
  OBJECTIVE_METRICS,
  InProcessSlots,
  OBJECTIVES,
  optimize,
  PAUSE,
  PRESET_NAMES,
  StudyPlan,
  type BestTrial,
  type CheckpointStore,
  type Objective,
  type PlanConstraint,
  type OptimizeResult,
  type TrialResult,
  type TrialSlots,
  type TuneListener,
  type WorkerInfo,
  type WorkerInit,
} from '../engine/tune/index.ts';
import { nodeDirectoryFiles, writeFileAtomic, writeFilesAtomic } from '../node/files.ts';
import { nodeGpu } from '../node/dawn.ts';
import { WorkerPool } from '../workers/pool.ts';
import { spawnNodeWorker } from '../workers/spawn-node.ts';
import {
  numberFlag,
  parseFlags,
  stringFlag,
  TRAIN_FLAGS,
  trialConfigFromFlags,
  UsageError,
  type FlagValues,
} from './args.ts';
import {
  checkAdapterFits,
  checkOutDir,
  COLUMN_FLAGS,
  COLUMN_USAGE,
  columnsFromFlags,
  openModelDir,
  readDataset,
} from './common.ts';
import { trainerOptionsOf } from '../engine/train/config.ts';
import { trialCheckpointName } from '../engine/checkpoint/trial-checkpoint.ts';
import { PLAN_FLAGS, planFile, planOfStudy, TUNE_DEFAULTS, tunePlan } from './tune-plan.ts';
import { warmStartOf, warmStartSummary } from './warm-start.ts';
import { frontSummary, pickedTrial, storedFrontAdapter, syncFrontAdapters } from './tune-front.ts';
import { importanceLines } from './tune-importance.ts';
import {
  readJournal,
  repairJournal,
  repairJsonLines,
  tornTailWarning,
  type CheckedJournal,
} from './study-journal.ts';
import { version as tunelabVersion } from '../../package.json';
import { cliGpu, settleGpuEnv } from './gpu.ts';
import { AUTOTUNE_USAGE, tuningRecordForWorkers } from './tuning.ts';

export const TUNE_USAGE = `tunelab tune --model DIR --data FILE [--val FILE | --val-ratio 0.1] --out DIR [options]
tunelab tune --resume DIR [--trials N] [--workers K]
tunelab tune --model DIR --data FILE --plan study.jsonl --out DIR   (the recipe of a study the page exported)

  search:      --space FILE (JSON search space) | --preset ${PRESET_NAMES.join('|')} (lora-basic)
               --sampler ${SAMPLER_NAMES.join('|')} (tpe)  --pruner none|median|asha (none)  --pbt
               --objective ${Object.keys(OBJECTIVES).join('|')} (val_loss)  --seed 42
               --objectives METRIC[:min|:max],METRIC... (2 to ${MAX_OBJECTIVES}; METRIC one of ${Object.keys(OBJECTIVE_METRICS).join('|')},
                 the first one measured at every evaluation): a multi-objective study, e.g. val_loss,step_time;
                 tpe becomes MOTPE, gp ParEGO; no pruner or PBT; its result is a Pareto front (front/trial-N/
                 keeps each front trial's adapter) and the export is of its best trial on the first objective
               --pick N (with --resume, multi-objective): export front trial N instead
               --warm-start DIR (a finished study's --out, e.g. on a smaller model of the family: its best 5
                 configurations are the first trials, its trials prior observations for the tpe/gp/auto sampler)
               --constraints METRIC<=BOUND,METRIC>=BOUND (none; METRIC one of ${Object.keys(CONSTRAINT_METRICS).join('|')}):
                 a trial that breaks one is kept as infeasible, never the best; a byte bound may end in KiB,
                 MiB or GiB (peak_memory<=2GiB)
  budget:      --trials N (10, complete + pruned)  --timeout SECONDS (no new trial after it)
               --steps N (20) | --epochs E per trial  --eval-every N (ceil(steps/4): the pruning rung, PBT interval)
  evaluation:  --max-eval-examples N (${DEFAULT_MAX_EVAL_EXAMPLES}; 0 = all): each evaluation uses the first N of the
               (seeded, shuffled) validation split, so a big dataset does not make every evaluation a long pass
  workers:     --workers K (from the memory estimate and the adapter)  --in-process (no worker threads)
  pause:       --checkpoint-every N (the eval interval; 0 = only at Ctrl-C): each running trial's checkpoint
               goes to <out>/checkpoints/ every N steps, so a crash loses at most N steps of it
               --recompute (activation recomputation per block in every trial: less memory, more time)
  fixed:       any \`tunelab train\` flag (--seq, --batch, --lr, --r, ...) fixes that value for every trial
${COLUMN_USAGE}
               (kept in the plan, so --plan and --resume read the same columns; flags given with --plan win)
${AUTOTUNE_USAGE}
               (tuned once here at the fixed shapes; every worker loads the same choices)

  Writes to --out: study.jsonl (the study's event log, appended per event; its first line holds the plan: space,
  fixed values, budget, objective), trials.jsonl (how each trial ended, with the reason of a failure), tune.json
  (the model, data and flags, for --resume), adapter/ (the best trial's PEFT adapter, rewritten whenever a trial
  beats it) and at the end the export bundle of the best trial (best-config.json, hf/, axolotl.yaml,
  optuna_search.py, ray_tune_search.py, colab.ipynb, trials.csv). Every flag, the space, the plan and (with --resume)
  tune.json and study.jsonl are checked before anything is written; files rewritten whole (tune.json, the
  adapter, the exports) are replaced by a rename, so a failure leaves the previous ones as they were.
  Ctrl-C (SIGINT) pauses: every running trial is checkpointed to <out>/checkpoints/trial-N.checkpoint.safetensors
  (LoRA weights, optimizer state, data position, loss scaler, step) and stays running in study.jsonl; --resume
  continues each from its checkpoint on the same trajectory (a trial whose checkpoint is missing or refused
  restarts from step 0, saying why), then asks new trials; finished trials are never run again. A last line of study.jsonl or trials.jsonl cut short by a crash is
  removed first (the original file kept as study.jsonl.bak); any other bad line of study.jsonl stops the
  resume, naming the line.
  The summary ranks the parameters twice: over the whole space (fANOVA: which moves the objective anywhere) and
  among the top 10 % of the complete trials (PED-ANOVA: which the good trials agree on).
  Exit status: 0 when at least one trial completed, 1 when none did (the reason on stderr), 130 when stopped.`;

const TUNE_FLAGS = {
  ...TRAIN_FLAGS,
  ...PLAN_FLAGS,
  model: { type: 'string' },
  data: { type: 'string' },
  val: { type: 'string' },
  'val-ratio': { type: 'string' },
  out: { type: 'string' },
  resume: { type: 'string' },
  workers: { type: 'string' },
  'in-process': { type: 'boolean' },
  'base-model': { type: 'string' },
  'no-autotune': { type: 'boolean' },
  'checkpoint-every': { type: 'string' },
  'warm-start': { type: 'string' },
  pick: { type: 'string' },
  ...COLUMN_FLAGS,
} as const;

export interface TuneHooks {
  /** Called once the pool is up (tests kill a worker through it). */
  onPool?(pool: TrialSlots): void;
  onTrialStep?(pool: TrialSlots, trial: number, step: number, slot: number): void;
  signal?: AbortSignal;
}

/** The model, the data split, the plan and the study, as a run (new or resumed) needs them. */
interface TuneSetup {
  flags: FlagValues;
  out: string;
  dir: string;
  dataFile: string;
  valFile: string | undefined;
  opened: OpenedModel;
  data: Dataset;
  train: Example[];
  validation: Example[];
  plan: StudyPlan;
  /** --workers, checked; undefined: sized from the memory estimate. */
  workers: number | undefined;
  /** --checkpoint-every, checked (default: the evaluation interval). */
  checkpointEvery: number;
  study: Study;
  /** --pick: the front trial to export (a resumed multi-objective study). */
  pick: number | undefined;
  /** A new study's first events, written when --out is created. */
  pending: StudyEvent[];
  /** The log of the study being resumed, checked (null for a new study). */
  journal: (CheckedJournal & { original: string }) | null;
}

export async function tuneCommand(argv: string[], hooks: TuneHooks = {}): Promise<number> {
  // Everything is read and checked first; nothing is created or written before openStudy.
  const { flags, saved } = await tuneFlags(argv);
  const setup = await prepare(flags, saved);
  const { study, log } = await openStudy(setup);
  const trialsLog = openSync(join(setup.out, 'trials.jsonl'), 'a');
  let result: RunResult;
  try {
    result = await runStudy(setup, study, trialsLog, hooks);
  } finally {
    closeSync(log);
    closeSync(trialsLog);
  }
  const exported = setup.plan.isMultiObjective ? pickedTrial(study, setup.pick) : study.bestTrial;
  const written =
    exported && (result.best || study.isMultiObjective)
      ? await writeExports(setup, study, result, exported)
      : [];
  printSummary(study, result, setup.out, written);
  if (setup.plan.isMultiObjective)
    process.stdout.write(
      frontSummary(
        study,
        setup.plan.objectives,
        written.length > 0 ? exported?.number : undefined,
        setup.out,
        fmtParams,
      )
        .map((l) => `${l}\n`)
        .join(''),
    );
  if (result.stopped) return 130;
  const none = noTrialCompleted(study, result);
  if (none) process.stderr.write(`tunelab tune: ${none}\n`);
  return none ? 1 : 0;
}

/** Why the study has no result (no trial completed, or none feasibly), or null when it has one. */
function noTrialCompleted(study: Study, result: OptimizeResult): string | null {
  const complete = study.trials.filter((t) => t.state === 'complete');
  if (complete.length > 0 && study.bestTrials.length === 0) {
    const bounds = (study.plan as { constraints?: PlanConstraint[] } | null)?.constraints ?? [];
    return (
      `no feasible trial: all ${complete.length} complete trials break --constraints ` +
      bounds.map(formatConstraint).join(',')
    );
  }
  if (complete.length > 0) return null;
  const count = (s: string) => study.trials.filter((t) => t.state === s).length;
  const failure = result.results.find((r) => r.state === 'failed' && r.reason);
  return (
    `no trial completed (${count('failed')} failed, ${count('pruned')} pruned)` +
    (failure ? `; trial ${failure.number} failed: ${failure.reason}` : '')
  );
}

/** The flags, with those saved by the run being resumed underneath (what is given now wins). */
async function tuneFlags(argv: string[]): Promise<{ flags: FlagValues; saved: FlagValues | null }> {
  const flags = parseFlags(argv, TUNE_FLAGS);
  const resume = stringFlag(flags, 'resume');
  if (!resume) return { flags, saved: null };
  if (flags['warm-start'] !== undefined)
    throw new UsageError('--warm-start: a resumed study keeps the warm start it began with; drop the flag');
  const path = join(resume, 'tune.json');
  const text = await readFile(path, 'utf8').catch(() => {
    throw new UsageError(`--resume: no tune.json in '${resume}' (is it the --out of a tunelab tune run?)`);
  });
  const saved = savedFlags(text, path);
  const given = Object.fromEntries(Object.entries(flags).filter(([k]) => k !== 'resume'));
  return { flags: { ...saved, ...given, out: resume }, saved };
}

/** The flags tune.json keeps, checked: {"flags": {name: string or boolean}}, each a flag of `tune`. */
export function savedFlags(text: string, path: string): FlagValues {
  const expected = 'expected {"flags": {...}} as tunelab tune writes it';
  let parsed: unknown;
  try {
    parsed = parseJson(text, path);
  } catch (error) {
    throw new UsageError(`--resume: ${path} is not JSON (${(error as Error).message}); ${expected}`);
  }
  const flags = isRecord(parsed) ? parsed.flags : undefined;
  if (!isRecord(flags))
    throw new UsageError(`--resume: ${path}: ${expected}, got ${JSON.stringify(parsed).slice(0, 60)}`);
  for (const [name, value] of Object.entries(flags)) {
    if (!Object.hasOwn(TUNE_FLAGS, name))
      throw new UsageError(`--resume: ${path}: field "flags.${name}": not a flag of tunelab tune`);
    const type = TUNE_FLAGS[name as keyof typeof TUNE_FLAGS].type;
    if (typeof value !== type)
      throw new UsageError(
        `--resume: ${path}: field "flags.${name}": expected a ${type}, got ${JSON.stringify(value)}`,
      );
  }
  return flags as FlagValues;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

async function prepare(flags: FlagValues, saved: FlagValues | null): Promise<TuneSetup> {
  const out = stringFlag(flags, 'out', true);
  const dir = stringFlag(flags, 'model', true);
  const dataFile = stringFlag(flags, 'data', true);
  const valFile = stringFlag(flags, 'val');
  if (valFile && flags['val-ratio'] !== undefined)
    throw new UsageError('give --val or --val-ratio, not both');
  const workers = numberFlag(flags, 'workers', undefined, { min: 1, integer: true });
  const flaggedColumns = columnsFromFlags(flags);
  await checkOutDir(out);
  const opened = await openModelDir(dir);
  const journal = saved ? await resumedJournal(out) : null;
  const stored = journal ? planOfStudy(journal.study) : await planFile(flags);
  // Data: parsed once here, sent to every worker as token ids, split with the plan's seed and ratio.
  const flagged = stored?.fixed ? null : trialConfigFromFlags(flags, opened.spec, TUNE_DEFAULTS);
  // Targets and rank fixed by flags must fit the model (the space's are checked with the plan).
  if (flagged) checkAdapterFits(trainerOptionsOf(flagged).lora, opened.spec);
  const { seq, seed } = stored?.fixed ?? flagged!;
  const valRatio = valFile
    ? null
    : (stored?.valRatio ?? numberFlag(flags, 'val-ratio', 0.1, { above: 0, max: 0.9 })!);
  if (seq! > opened.spec.maxPositions)
    throw new UsageError(`--seq ${seq} exceeds the model's ${opened.spec.maxPositions} positions`);
  const columns = flaggedColumns ?? stored?.columns;
  const data = await readDataset(dataFile, opened, { seq: seq!, columns });
  let train: Example[] = data.examples;
  let validation: Example[] = [];
  if (valFile)
    validation = (await readDataset(valFile, opened, { seq: seq!, classes: data.classes, columns })).examples;
  else ({ train, validation } = splitExamples(data.examples, valRatio!, seed!, basename(dataFile)));
  const { family, maxPositions, hidden } = opened.spec;
  const planned = await tunePlan(flags, family, { trainExamples: train.length, valRatio, columns }, stored, {
    maxPositions,
    hidden,
  });
  // A new study records its own warm start (a --plan taken from a warm-started study's log does not carry it).
  const warmDir = journal ? undefined : stringFlag(flags, 'warm-start');
  // A warm start's prior observations are one loss per trial: nothing to seed several objectives with.
  if (warmDir !== undefined && planned.isMultiObjective)
    throw new UsageError('--warm-start: a multi-objective study (--objectives) cannot be warm-started');
  const warmStart = warmDir === undefined ? undefined : await warmStartOf(warmDir, planned.space);
  const plan = journal
    ? planned
    : planned.withWarmStart(warmStart ? { study: warmDir!, source: warmStart.source } : null);
  if (warmStart) process.stderr.write(warmStartSummary(warmDir!, warmStart));
  for (const { metric } of plan.objectives) {
    if (!OBJECTIVE_METRICS[metric].evaluated) continue;
    try {
      checkObjective(metric as Objective, { classes: data.classes, validation: validation.length });
    } catch (error) {
      throw new UsageError(
        `--${plan.isMultiObjective ? 'objectives' : 'objective'}: ${(error as Error).message}`,
      );
    }
  }
  const pick = pickFlag(flags, saved !== null, journal?.study ?? null);
  const checkpointEvery = numberFlag(flags, 'checkpoint-every', plan.evalEvery, { min: 0, integer: true })!;
  try {
    checkConstraints(plan.spec.constraints ?? [], { classes: data.classes });
  } catch (error) {
    throw new UsageError(`--constraints: ${(error as Error).message}`);
  }
  const pending: StudyEvent[] = [];
  const study = journal?.study ?? (await newStudy(out, plan, pending, warmStart));
  return {
    flags,
    out,
    dir,
    dataFile,
    valFile,
    opened,
    data,
    train,
    validation,
    plan,
    workers,
    checkpointEvery,
    study,
    pick,
    pending,
    journal,
  };
}

/** --pick N: only to re-export a resumed multi-objective study, and N on its front (checked again at the end). */
function pickFlag(flags: FlagValues, resumed: boolean, study: Study | null): number | undefined {
  const pick = numberFlag(flags, 'pick', undefined, { min: 0, integer: true });
  if (pick === undefined) return undefined;
  if (!resumed || !study)
    throw new UsageError(
      '--pick: choose from the Pareto front of a study that ran: tunelab tune --resume DIR --pick N',
    );
  if (!study.isMultiObjective)
    throw new UsageError(
      '--pick: only for a multi-objective study (--objectives); this one exports its best trial',
    );
  pickedTrial(study, pick);
  return pick;
}

/** Paused trials' checkpoints as files in <out>/checkpoints/, each replaced whole by a rename. */
function checkpointFiles(out: string): CheckpointStore {
  const dir = join(out, 'checkpoints');
  const path = (trial: number) => join(dir, trialCheckpointName(trial));
  return {
    async write(trial, bytes) {
      await mkdir(dir, { recursive: true });
      await writeFileAtomic(path(trial), bytes);
    },
    async read(trial) {
      return readFile(path(trial)).then(
        (b) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength),
        (e: NodeJS.ErrnoException) => {
          if (e.code === 'ENOENT') return null;
          throw e;
        },
      );
    },
    remove: (trial) => rm(path(trial), { force: true }),
    describe: path,
  };
}

/** The checked log of the study being resumed; nothing on disk changes yet. */
async function resumedJournal(out: string): Promise<CheckedJournal & { original: string }> {
  const path = join(out, 'study.jsonl');
  try {
    return await readJournal(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UsageError(`--resume: no study.jsonl in '${out}'`);
    throw error;
  }
}

/** A new study from the plan, its first events kept in `pending`; refused when --out already holds one. */
async function newStudy(
  out: string,
  plan: StudyPlan,
  pending: StudyEvent[],
  warmStart: WarmStartSeed | undefined,
): Promise<Study> {
  const existing = await readFile(join(out, 'study.jsonl'), 'utf8').catch(() => '');
  if (existing.trim() !== '')
    throw new UsageError(
      `--out: '${out}' already holds a study; continue it with --resume ${out} or pick another --out`,
    );
  return createStudy({
    ...plan.studyOptions(),
    ...(warmStart ? { warmStart } : {}),
    onEvent: (e) => pending.push(e),
  });
}

/**
 * Creates --out for a new study (tune.json, the log with its first events, an empty trials.jsonl), or makes
 * the resumed study's log ready to append to (a torn last line cut off, the original kept as a backup).
 */
async function openStudy(setup: TuneSetup): Promise<{ study: Study; log: number }> {
  const { out, flags, study, pending, journal } = setup;
  const logPath = join(out, 'study.jsonl');
  if (journal) {
    const backup = await repairJournal(logPath, journal);
    if (journal.torn) process.stderr.write(tornTailWarning(logPath, journal.torn, backup));
    const trialsPath = join(out, 'trials.jsonl');
    const trials = await repairJsonLines(trialsPath);
    if (trials) process.stderr.write(tornTailWarning(trialsPath, trials.torn, trials.backup));
  } else {
    await mkdir(out, { recursive: true });
    await writeFileAtomic(join(out, 'tune.json'), `${JSON.stringify({ flags }, null, 2)}\n`);
    await writeFileAtomic(logPath, pending.map((e) => `${JSON.stringify(e)}\n`).join(''));
    await writeFileAtomic(join(out, 'trials.jsonl'), '');
  }
  // Every event reaches the disk in one write before the next one happens (a crash tears at most the last line).
  const log = openSync(logPath, 'a');
  study.onEvent = (e) => writeSync(log, `${JSON.stringify(e)}\n`);
  return { study, log };
}

/** The trial workers: worker threads, or runners in this process (--in-process). */
async function startSlots(
  setup: TuneSetup,
): Promise<{ slots: TrialSlots; size: number; infos: WorkerInfo[] }> {
  const { flags, plan, opened } = setup;
  const precision = plan.spec.fixed.precision ?? 'auto';
  const autotune = flags['no-autotune'] !== true;
  const tuning = await tuningRecordForWorkers(precision, opened.spec, plan.trainerOptions({}), autotune);
  const init: WorkerInit = {
    model: { kind: 'dir', path: setup.dir },
    precision,
    train: setup.train,
    validation: plan.evalExamples(setup.validation),
    padId: padIdOf(dataTokenizer(opened.tokenizer)),
    ...(tuning ? { tuning } : {}),
  };
  let size = setup.workers;
  if (size === undefined) {
    // Probe the adapter once here (cheap) to size the pool.
    const gpu = await cliGpu(precision);
    const software = /llvmpipe|lavapipe|swiftshader/i.test(gpu.adapter.description) || gpu.adapter.isFallback;
    const pick = defaultPoolSize({
      spec: opened.spec,
      options: plan.trainerOptions({}),
      precision: gpu.precision,
      software,
      cores: availableParallelism(),
    });
    gpu.destroy();
    size = pick.size;
    process.stderr.write(`workers: ${size} (${pick.why})\n`);
  } else settleGpuEnv(); // before the threads start: they create their own Dawn instances
  if (flags['in-process'] === true) {
    const s = new InProcessSlots({ gpu: nodeGpu, openDir: nodeDirectoryFiles }, size, init);
    return { slots: s, size, infos: await s.start() };
  }
  const pool = new WorkerPool(spawnNodeWorker, size, init);
  return { slots: pool, size, infos: await pool.start() };
}

/** ask → run → tell over the workers until the plan's budget is spent or the run is stopped. */
/** The search's result and the precision its workers trained in (what the exports call fp16 or no). */
type RunResult = OptimizeResult & { ranPrecision: 'f16' | 'f32' };

async function runStudy(
  setup: TuneSetup,
  study: Study,
  trialsLog: number,
  hooks: TuneHooks,
): Promise<RunResult> {
  const { plan, flags, out } = setup;
  const { slots, size, infos } = await startSlots(setup);
  const objective = plan.spec.objective;
  const objectiveNames = plan.isMultiObjective
    ? `objectives ${formatObjectives(plan.objectives)}`
    : `objective ${OBJECTIVES[objective].label}`;
  process.stderr.write(
    `${size} ${flags['in-process'] === true ? 'in-process runner' : 'worker thread'}${size > 1 ? 's' : ''} on ` +
      `${infos[0].adapter} (${infos[0].precision}), ${setup.train.length} training / ` +
      `${setup.validation.length} validation examples (${evaluatedOn(plan, setup.validation.length)}), ` +
      `${study.trials.length > 0 ? `resuming at trial ${study.trials.length}, ` : ''}${objectiveNames}\n`,
  );
  hooks.onPool?.(slots);
  const abort = new AbortController();
  // Ctrl-C pauses: the running trials are checkpointed, for --resume to continue.
  const onSignal = () => abort.abort(PAUSE);
  hooks.signal?.addEventListener('abort', onSignal);
  process.once('SIGINT', onSignal);
  const table = new LiveTable(study, objective);
  let writing = Promise.resolve();
  const classes = setup.data.classes;
  const timeout = plan.spec.timeoutSeconds;
  try {
    const result = await optimize(study, slots, {
      trials: plan.spec.trials,
      objective,
      ...(plan.isMultiObjective ? { objectives: plan.objectives } : {}),
      constraints: plan.spec.constraints,
      trainerOptions: (params) => plan.trainerOptions(params, classes),
      baseModel: baseModel(setup),
      pbt: plan.pbt(),
      timeoutMs: timeout === null ? undefined : timeout * 1000,
      signal: abort.signal,
      checkpoints: checkpointFiles(out),
      checkpointEvery: setup.checkpointEvery,
      listener: {
        trialStarted: (t) => table.started(t),
        step: (n, m) => {
          table.step(n, m.step, m.loss);
          const slot = table.slotOf(n);
          if (slot !== undefined) hooks.onTrialStep?.(slots, n, m.step, slot);
        },
        evaluating: (n, done, total) => table.evaluating(n, done, total),
        evaluated: (n, m, value) => table.evaluated(n, m.step, value),
        exploited: (n, donor, params, note) =>
          table.note(`trial ${n} exploits trial ${donor}: ${fmtParams(params)}${note ? ` (${note})` : ''}`),
        workerReplaced: (slot, reason) => table.note(`worker ${slot} replaced (${reason})`),
        warning: (text) => table.note(`warning: ${text}`),
        trialFinished: (r) => {
          writeSync(trialsLog, `${JSON.stringify(r)}\n`);
          table.finished(r);
        },
        // The best trial's adapter goes to disk as soon as it is the best: a later crash does not lose it.
        newBest: (best) => {
          if (best.adapter) writing = writing.then(() => writeAdapter(out, best));
        },
        // Multi-objective: every front trial's adapter is kept, for the export to be of any of them.
        frontChanged: (front) => {
          writing = writing.then(() => syncFrontAdapters(out, front));
        },
      },
    });
    await writing;
    return { ...result, ranPrecision: infos[0].precision };
  } finally {
    process.off('SIGINT', onSignal);
    hooks.signal?.removeEventListener('abort', onSignal);
    table.close();
    await slots.close();
  }
}

/** How many validation examples each evaluation uses, and what sets it. */
function evaluatedOn(plan: StudyPlan, validation: number): string {
  const cap = plan.spec.maxEvalExamples ?? null;
  return cap !== null && cap < validation
    ? `each evaluation uses the first ${cap}: --max-eval-examples`
    : `each evaluation uses all ${validation}`;
}

const baseModel = (setup: TuneSetup) => stringFlag(setup.flags, 'base-model') ?? setup.dir;

/**
 * The export bundle of the best trial (multi-objective: of `trial`, from the front, with its adapter from this
 * run or from front/trial-N/), read from the plan, written to --out.
 */
async function writeExports(
  setup: TuneSetup,
  study: Study,
  result: RunResult,
  trial: TrialRecord,
): Promise<string[]> {
  const { plan, opened, dataFile, valFile, data } = setup;
  const best = study.isMultiObjective ? result.front.find((f) => f.number === trial.number) : result.best!;
  const adapter =
    best?.adapter ?? (study.isMultiObjective ? await storedFrontAdapter(setup.out, trial.number) : null);
  // The bundle rewrites adapter/: without the picked trial's own adapter it would be left another trial's.
  if (study.isMultiObjective && !adapter)
    throw new UsageError(
      `--pick ${trial.number}: its adapter is missing from ${join(setup.out, 'front', `trial-${trial.number}`)}`,
    );
  const timings = Object.fromEntries(result.results.map((r) => [r.number, { duration: r.seconds }]));
  const metrics = best?.metrics ?? null;
  const context = planExportContext(plan, {
    study,
    ...(study.isMultiObjective ? { best: trial } : {}),
    model: { id: baseModel(setup), revision: null, family: opened.spec.family, spec: opened.spec },
    dataset: {
      fingerprint: datasetFingerprint([
        await readFile(dataFile),
        ...(valFile ? [await readFile(valFile)] : []),
      ]),
      name: basename(dataFile),
      format: data.format,
      examples: data.examples.length,
    },
    tunelabVersion,
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
    ranPrecision: result.ranPrecision,
  });
  return writeFiles(setup.out, exportBundle(context, adapter ?? undefined));
}

/** The best trial's PEFT adapter, where the export bundle puts it (both files replaced together). */
async function writeAdapter(out: string, best: BestTrial): Promise<void> {
  if (!best.adapter) return;
  await mkdir(join(out, 'adapter'), { recursive: true });
  await writeFilesAtomic([
    { path: join(out, EXPORT_PATHS.adapterConfig), contents: best.adapter['adapter_config.json'] },
    { path: join(out, EXPORT_PATHS.adapterWeights), contents: best.adapter['adapter_model.safetensors'] },
  ]);
}

/** The export bundle, less study.jsonl (the live log is already there, with every event); all or none. */
async function writeFiles(out: string, files: ExportFile[]): Promise<string[]> {
  const bundle = files.filter((f) => f.path !== EXPORT_PATHS.studyLog);
  const outputs = bundle.map((f) => ({ path: join(out, ...f.path.split('/')), contents: f.contents }));
  for (const { path } of outputs) await mkdir(join(path, '..'), { recursive: true });
  await writeFilesAtomic(outputs);
  return bundle.map((f) => f.path);
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
    {
      slot: number;
      params: string;
      step: number;
      total: number;
      loss: number;
      value?: number;
      /** "eval i/m" while the trial evaluates. */
      evaluating?: string;
    }
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

  started(t: Parameters<NonNullable<TuneListener['trialStarted']>>[0]) {
    const { number: n, slot, params, totalSteps: total, resumedFrom } = t;
    this.#rows.set(n, { slot, params: fmtParams(params), step: resumedFrom ?? 0, total, loss: NaN });
    const how = resumedFrom === undefined ? 'started' : `resumed from step ${resumedFrom}`;
    const notes = [t.note, fallbackNote(this.study.trial(n).system)].filter(Boolean).join('; ');
    this.#line(`trial ${n} ${how} on worker ${slot}: ${fmtParams(params)}${notes ? ` (${notes})` : ''}`);
  }

  step(n: number, step: number, loss: number) {
    const row = this.#rows.get(n);
    if (row) Object.assign(row, { step, loss, evaluating: undefined });
  }

  evaluating(n: number, done: number, total: number) {
    const row = this.#rows.get(n);
    if (row) row.evaluating = done < total ? `evaluating ${done}/${total}` : undefined;
  }

  evaluated(n: number, step: number, value: number) {
    const row = this.#rows.get(n);
    if (row) Object.assign(row, { value, evaluating: undefined });
    this.#line(`trial ${n} step ${step}: ${this.objective} ${value.toFixed(4)}`);
  }

  note(text: string) {
    this.#line(text);
  }

  finished(r: TrialResult) {
    this.#rows.delete(r.number);
    const what =
      r.state === 'complete'
        ? `complete, ${r.values ? this.#values(r.values) : `${this.objective} ${r.value!.toFixed(4)}`}${r.feasible === false ? ' (infeasible: breaks a constraint)' : ''}`
        : r.state === 'failed'
          ? `failed: ${r.reason}`
          : r.state === 'paused'
            ? `paused at step ${r.steps}, checkpointed`
            : `pruned at step ${r.steps}`;
    const best = this.study.bestTrial;
    const front = this.study.isMultiObjective ? this.study.bestTrials.map((t) => t.number) : [];
    this.#line(
      `trial ${r.number} ${what} (${r.steps} steps, ${r.seconds.toFixed(1)} s)` +
        (best ? `  best: trial ${best.number} ${best.value!.toFixed(4)}` : '') +
        (front.length > 0 ? `  Pareto front: trials ${front.join(', ')}` : ''),
    );
  }

  /** A multi-objective trial's values under their objectives' names. */
  #values(values: readonly number[]): string {
    const names = (this.study.plan as { objectives?: { metric: string }[] } | null)?.objectives ?? [];
    return values
      .map(
        (v, i) =>
          `${names[i]?.metric ?? `objective ${i}`} ${Number.isInteger(v) ? v : Number(v.toPrecision(4))}`,
      )
      .join(', ');
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
      return `  #${String(n).padEnd(3)} w${r.slot} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${r.step}/${r.total} loss ${Number.isNaN(r.loss) ? '-' : r.loss.toFixed(4)}${r.value === undefined ? '' : ` ${this.objective} ${r.value.toFixed(4)}`}${r.evaluating ? ` (${r.evaluating})` : ''}  ${r.params}`;
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
  const paused = result.results.filter((r) => r.state === 'paused').length;
  const lines = [
    `${study.trials.length} trials: ${count('complete')} complete, ${count('pruned')} pruned, ${count('failed')} failed` +
      (paused ? `, ${paused} paused` : '') +
      (result.resumed.length ? ` (${result.resumed.length} continued from the last pause)` : '') +
      (result.interrupted.length ? ` (${result.interrupted.length} interrupted by the last stop)` : '') +
      (result.stopped ? '; stopped' : ''),
  ];
  if (paused) lines.push(`continue the paused trials with: tunelab tune --resume ${out}`);
  const best = study.bestTrial;
  if (best)
    lines.push(`best: trial ${best.number}, value ${best.value!.toFixed(4)}, ${fmtParams(best.params)}`);
  lines.push(...importanceLines(study));
  lines.push(
    `wrote study.jsonl, trials.jsonl, tune.json${written.length ? `, ${written.join(', ')}` : ''} to ${out}`,
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}
