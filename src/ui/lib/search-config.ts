// The Search step's settings as plain data (persisted with a study), and how they become the engine's
// StudyPlan (src/engine/tune/plan.ts) — the same recipe `tunelab tune` makes from its flags: form rows → the
// search space and the fixed values, the budget → fixed steps, seq, seed, precision and evaluation interval.
// A stored plan (an imported study log) maps back onto the form with `settingsFromPlan`.

import type { ModelSpec } from '../../engine/model/config.ts';
import type { PrecisionChoice } from '../../engine/gpu/precision.ts';
import type { Choice, ParamSpec, Params, SamplerName, SpaceSpec } from '../../engine/search/index.ts';
import { defaultTrialConfig, fieldOfParam, type TrialField } from '../../engine/train/config.ts';
import type { ColumnMapping } from '../../engine/train/columns.ts';
import { formatConstraint, parseConstraint, type PlanConstraint } from '../../engine/tune/constraints.ts';
import type { Objective } from '../../engine/tune/objective.ts';
import { OBJECTIVE_METRICS, type ObjectiveMetric } from '../../engine/tune/objectives.ts';
import {
  DEFAULT_MAX_EVAL_EXAMPLES,
  PlanError,
  StudyPlan,
  type PlanInput,
  type PrunerChoice,
  type StudyPlanSpec,
} from '../../engine/tune/plan.ts';
import type { ModelBounds } from '../../engine/tune/space-rules.ts';
import { preset as enginePreset, type PresetName as EnginePresetName } from '../../engine/tune/presets.ts';
import { pbtConflicts } from '../../engine/tune/params.ts';
import { enumerateGrid, gridSize } from '../../engine/search/samplers/grid.ts';
import { memoryProblem, type FormMemory } from './memory-check.ts';

export type ParamMode = 'fixed' | 'range' | 'choices' | 'derived';

export interface ParamRow {
  name: HyperName;
  mode: ParamMode;
  /** Text inputs as typed, so an invalid entry can be shown and explained rather than lost. */
  fixed: string;
  low: string;
  high: string;
  log: boolean;
  choices: string;
  /** 'derived' (lora_alpha only): value = scale · r. */
  scale: string;
}

export type HyperName =
  | 'lr'
  | 'r'
  | 'lora_alpha'
  | 'lora_dropout'
  | 'weight_decay'
  | 'warmup_ratio'
  | 'schedule'
  | 'batch'
  | 'accum'
  | 'llrd'
  | 'loraplus_lr_ratio'
  | 'targets';

export interface HyperInfo {
  label: string;
  kind: 'float' | 'int' | 'categorical';
  help: string;
  modes: ParamMode[];
}

export const HYPERPARAMETERS: Record<HyperName, HyperInfo> = {
  lr: {
    label: 'Learning rate',
    kind: 'float',
    help: 'AdamW peak learning rate',
    modes: ['fixed', 'range', 'choices'],
  },
  r: { label: 'LoRA rank r', kind: 'int', help: 'rank of A and B', modes: ['fixed', 'range', 'choices'] },
  lora_alpha: {
    label: 'LoRA alpha',
    kind: 'float',
    help: 'scaling = alpha / r; "× r" ties it to the rank',
    modes: ['fixed', 'range', 'choices', 'derived'],
  },
  lora_dropout: {
    label: 'LoRA dropout',
    kind: 'float',
    help: 'in [0, 1)',
    modes: ['fixed', 'range', 'choices'],
  },
  weight_decay: {
    label: 'Weight decay',
    kind: 'float',
    help: 'decoupled (AdamW)',
    modes: ['fixed', 'range', 'choices'],
  },
  warmup_ratio: {
    label: 'Warmup ratio',
    kind: 'float',
    help: 'share of steps warming up',
    modes: ['fixed', 'range', 'choices'],
  },
  schedule: {
    label: 'LR schedule',
    kind: 'categorical',
    help: 'constant, linear or cosine',
    modes: ['fixed', 'choices'],
  },
  batch: {
    label: 'Batch size',
    kind: 'int',
    help: 'examples per step',
    modes: ['fixed', 'range', 'choices'],
  },
  accum: {
    label: 'Gradient accumulation',
    kind: 'int',
    help: 'micro-batches per optimizer step',
    modes: ['fixed', 'range', 'choices'],
  },
  llrd: {
    label: 'Layer-wise LR decay',
    kind: 'float',
    help: 'layer l of L gets lr·decay^(L−1−l); 1 = off',
    modes: ['fixed', 'range', 'choices'],
  },
  loraplus_lr_ratio: {
    label: 'LoRA+ ratio',
    kind: 'float',
    help: "B's learning rate ÷ A's (LoRA+, ~16 often helps); 1 = off",
    modes: ['fixed', 'range', 'choices'],
  },
  targets: {
    label: 'LoRA targets',
    kind: 'categorical',
    help: 'all-linear, or attention (q/v, c_attn)',
    modes: ['fixed', 'choices'],
  },
};

export const HYPER_NAMES = Object.keys(HYPERPARAMETERS) as HyperName[];

export interface SearchSettings {
  rows: ParamRow[];
  sampler: SamplerName;
  /** Early stopping, or population-based training (which exploits and explores instead of stopping). */
  pruner: PrunerChoice;
  trials: number;
  stepsPerTrial: number;
  /** Evaluate on the validation split every N steps (pruners and PBT act there); 0 = about four per trial. */
  evalEvery: number;
  /** Validation examples each evaluation uses (the first of the shuffled split); 0 = all. */
  maxEvalExamples: number;
  /** Recompute each block's activations in the backward: much less memory for about a third more time. */
  recompute: boolean;
  /** Minutes; 0 = no limit. */
  timeLimit: number;
  workers: number;
  precision: PrecisionChoice;
  objective: Objective;
  /**
   * A second objective ('' or absent: none): the study is then multi-objective, its result a Pareto front,
   * each objective in the direction its name has.
   */
  objective2?: ObjectiveMetric | '';
  /** Bounds a trial must keep, as `tune --constraints` spells them ('tokens_per_second>=500, ...'); '' none. */
  constraints: string;
  seq: number;
  valRatio: number;
  seed: number;
  /** The data's columns (the Data step's mapping); null: as the column names suggest, else the fixed names. */
  columns: ColumnMapping | null;
}

const row = (name: HyperName, mode: ParamMode, values: Partial<ParamRow>): ParamRow => ({
  name,
  mode,
  fixed: '',
  low: '',
  high: '',
  log: false,
  choices: '',
  scale: '2',
  ...values,
});

/** The form's text for a row the preset does not search: the engine's default (alpha 2·r, q/v targets). */
const FIXED_DEFAULTS: Record<HyperName, string> = Object.fromEntries(
  HYPER_NAMES.map((name) => {
    const field = fieldOfParam(name)!;
    return [name, formValue(name, defaultTrialConfig('llama')[field])];
  }),
) as Record<HyperName, string>;

const CHOICES: Partial<Record<HyperName, string>> = {
  schedule: 'constant, linear, cosine',
  targets: 'all-linear, attention',
};

/** Every row fixed at its default, then `values` per row. */
function rowsWith(values: Partial<Record<HyperName, Partial<ParamRow> & { mode: ParamMode }>>): ParamRow[] {
  return HYPER_NAMES.map((name) => {
    const { mode = 'fixed', ...rest } = values[name] ?? {};
    return row(name, mode, { fixed: FIXED_DEFAULTS[name], choices: CHOICES[name] ?? '', ...rest });
  });
}

/** The form's name for an engine search-space name or TrialConfig field ('scheduler' → 'schedule'). */
export function rowName(param: string): HyperName | undefined {
  const field = fieldOfParam(param);
  return HYPER_NAMES.find((n) => fieldOfParam(n) === field);
}

/** A TrialConfig value as the form writes it: the attention target list becomes 'attention'. */
function formValue(name: HyperName, value: unknown): string {
  if (name === 'targets') {
    const list = Array.isArray(value) ? value.join(',') : String(value);
    const attention = defaultTrialConfig('llama').targets as string[];
    return list === 'all-linear' ? list : list === attention.join(',') ? 'attention' : list;
  }
  return String(value);
}

/** The engine's preset (the one `tunelab tune --preset` runs) as form rows. */
function engineRows(name: EnginePresetName): ParamRow[] {
  const p = enginePreset(name, 'llama');
  const values: Partial<Record<HyperName, Partial<ParamRow> & { mode: ParamMode }>> = {};
  for (const [field, value] of Object.entries(p.fixed)) {
    const n = rowName(field);
    if (n) values[n] = { mode: 'fixed', fixed: formValue(n, value) };
  }
  for (const [param, dist] of Object.entries(p.space)) {
    const n = rowName(param);
    if (!n) throw new Error(`preset ${name}: '${param}' has no row in the Search step`);
    if (dist.type === 'categorical')
      values[n] = { mode: 'choices', choices: dist.choices.map((c) => formValue(n, c)).join(', ') };
    else if (dist.type === 'derived') values[n] = { mode: 'derived', scale: String(dist.scale) };
    else
      values[n] = { mode: 'range', low: String(dist.low), high: String(dist.high), log: dist.log === true };
  }
  return rowsWith(values);
}

export type PresetName = 'quick' | EnginePresetName;

export const PRESETS: Record<PresetName, { label: string; rows: () => ParamRow[] }> = {
  quick: {
    label: 'Quick: learning rate and rank (for the demo model)',
    rows: () =>
      rowsWith({
        lr: { mode: 'range', low: '1e-3', high: '3e-2', log: true, fixed: '1e-2' },
        r: { mode: 'choices', choices: '4, 8', fixed: '8' },
        lora_alpha: { mode: 'derived', scale: '2', fixed: '16' },
        lora_dropout: { mode: 'fixed', fixed: '0' },
        warmup_ratio: { mode: 'fixed', fixed: '0' },
        schedule: { mode: 'fixed', fixed: 'constant' },
        targets: { mode: 'fixed', fixed: 'all-linear' },
      }),
  },
  'lora-basic': {
    label: `LoRA basic: ${enginePreset('lora-basic').description}`,
    rows: () => engineRows('lora-basic'),
  },
  'lora-full': {
    label: `LoRA full: ${enginePreset('lora-full').description}`,
    rows: () => engineRows('lora-full'),
  },
};

export function defaultSettings(): SearchSettings {
  return {
    rows: PRESETS.quick.rows(),
    sampler: 'tpe',
    pruner: 'median',
    trials: 3,
    stepsPerTrial: 5,
    evalEvery: 0,
    maxEvalExamples: DEFAULT_MAX_EVAL_EXAMPLES,
    recompute: false,
    timeLimit: 0,
    workers: 2,
    precision: 'auto',
    objective: 'val_loss',
    objective2: '',
    constraints: '',
    seq: 24,
    valRatio: 0.1,
    seed: 42,
    columns: null,
  };
}

/** '1e-3' → 0.001, 'cosine' → 'cosine', 'true' → true; '' → NaN (createSpace then says what is expected). */
export function parseChoice(text: string): Choice {
  const t = text.trim();
  if (t === 'true' || t === 'false') return t === 'true';
  if (t !== '' && Number.isFinite(Number(t))) return Number(t);
  return t === '' ? NaN : t;
}

const parseList = (text: string): Choice[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(parseChoice);

/** The rows that are searched, as the engine's space spec (not yet validated). */
export function spaceSpec(rows: readonly ParamRow[]): SpaceSpec {
  const spec: SpaceSpec = {};
  for (const r of rows) {
    const info = HYPERPARAMETERS[r.name];
    if (r.mode === 'range') {
      spec[r.name] = {
        type: info.kind === 'int' ? 'int' : 'float',
        low: Number(r.low.trim() === '' ? NaN : r.low),
        high: Number(r.high.trim() === '' ? NaN : r.high),
        log: r.log,
      };
    } else if (r.mode === 'choices') {
      spec[r.name] = { type: 'categorical', choices: parseList(r.choices) };
    } else if (r.mode === 'derived') {
      spec[r.name] = { type: 'derived', from: 'r', scale: Number(r.scale) };
    }
  }
  return spec;
}

/** Values of the rows that are not searched. */
export function fixedParams(rows: readonly ParamRow[]): Params {
  const out: Params = {};
  for (const r of rows) if (r.mode === 'fixed') out[r.name] = parseChoice(r.fixed);
  return out;
}

/** Problems with fixed values (createSpace checks the searched ones), by parameter. */
export function fixedProblems(rows: readonly ParamRow[]): Partial<Record<HyperName, string>> {
  const out: Partial<Record<HyperName, string>> = {};
  for (const r of rows) {
    if (r.mode !== 'fixed') continue;
    const v = parseChoice(r.fixed);
    const info = HYPERPARAMETERS[r.name];
    if (info.kind !== 'categorical' && (typeof v !== 'number' || !Number.isFinite(v)))
      out[r.name] = `needs a number (got '${r.fixed}')`;
    else if (info.kind === 'int' && !Number.isInteger(v)) out[r.name] = `needs a whole number (got ${v})`;
    else if (r.name === 'schedule' && !['constant', 'linear', 'cosine'].includes(String(v)))
      out[r.name] = "must be 'constant', 'linear' or 'cosine'";
    else if (r.name === 'targets' && !['all-linear', 'attention'].includes(String(v)))
      out[r.name] = "must be 'all-linear' or 'attention'";
  }
  return out;
}

/**
 * Alpha set as "× r" over a fixed r is a fixed alpha (scale · r): the engine derives only from a searched
 * parameter, and someone who fixes r (as PBT asks) means alpha to follow it.
 */
export function resolveDerived(rows: readonly ParamRow[]): ParamRow[] {
  const r = rows.find((row) => row.name === 'r');
  const rValue = r?.mode === 'fixed' ? parseChoice(r.fixed) : NaN;
  return rows.map((row) =>
    row.mode === 'derived' && typeof rValue === 'number' && Number.isFinite(rValue)
      ? { ...row, mode: 'fixed', fixed: String(Number(row.scale) * rValue) }
      : row,
  );
}

/** The recipe the form describes, in the engine's terms (validated by `StudyPlan.create`). */
export function planInput(settings: SearchSettings): PlanInput {
  const rows = resolveDerived(settings.rows);
  return {
    space: spaceSpec(rows),
    fixed: {
      ...fixedParams(rows),
      steps: settings.stepsPerTrial,
      seq: settings.seq,
      seed: settings.seed,
      precision: settings.precision,
      // 0 in the form: about four evaluations per trial, which the plan decides.
      ...(settings.evalEvery > 0 ? { evalEvery: settings.evalEvery } : {}),
    },
    sampler: settings.sampler,
    pruner: settings.pruner,
    objective: settings.objective,
    ...(settings.objective2
      ? {
          objectives: [settings.objective, settings.objective2].map((metric) => ({
            metric,
            direction: OBJECTIVE_METRICS[metric].direction,
          })),
        }
      : {}),
    constraints: constraintsOf(settings.constraints ?? ''),
    trials: settings.trials,
    timeoutSeconds: settings.timeLimit > 0 ? settings.timeLimit * 60 : null,
    recompute: settings.recompute,
    valRatio: settings.valRatio,
    maxEvalExamples: settings.maxEvalExamples === 0 ? null : settings.maxEvalExamples,
    columns: settings.columns ?? null,
  };
}

/** The form's constraints text as the plan's bounds; a PlanError (field 'constraints') saying what is wrong. */
function constraintsOf(text: string): PlanConstraint[] {
  const parts = text
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
  try {
    return parts.map((p) => parseConstraint(p));
  } catch (e) {
    throw new PlanError('constraints', (e as Error).message);
  }
}

/**
 * The study plan of the form's settings for a model family (and its bounds: seq, r, when given). Throws a
 * PlanError naming what is wrong.
 */
export function studyPlan(
  settings: SearchSettings,
  family: ModelSpec['family'],
  model?: ModelBounds,
): StudyPlan {
  return StudyPlan.create(planInput(settings), { family, ...(model ? { model } : {}) });
}

/**
 * What the form knows of the loaded model: its family and the bounds of seq and r; with `memory` (the model on
 * this GPU), whether the largest batch and sequence fit the GPU's buffers.
 */
export type FormModel = Pick<ModelSpec, 'family' | 'maxPositions' | 'hidden'> & { memory?: FormMemory };

/** The settings outside the table that the form shows a message beside. */
export type SettingName =
  | 'trials'
  | 'stepsPerTrial'
  | 'evalEvery'
  | 'timeLimit'
  | 'workers'
  | 'seq'
  | 'valRatio'
  | 'seed'
  | 'sampler'
  | 'pruner'
  | 'maxEvalExamples'
  | 'constraints'
  | 'objective2';

export interface SearchProblems {
  /** A message next to the row it is about. */
  byParam: Partial<Record<HyperName, string>>;
  /** A message next to the setting it is about (budget, strategy; seq and the validation share on Data). */
  bySetting: Partial<Record<SettingName, string>>;
  /** One message for the whole form, when no row or setting is at fault. */
  general: string;
}

export const hasProblems = (p: SearchProblems): boolean =>
  p.general !== '' || Object.keys(p.byParam).length > 0 || Object.keys(p.bySetting).length > 0;

/** The plan's names for the settings the form has a field for. */
const PLAN_SETTINGS: Readonly<Record<string, SettingName>> = {
  trials: 'trials',
  steps: 'stepsPerTrial',
  evalEvery: 'evalEvery',
  timeoutSeconds: 'timeLimit',
  seq: 'seq',
  valRatio: 'valRatio',
  seed: 'seed',
  sampler: 'sampler',
  pbt: 'pruner',
  maxEvalExamples: 'maxEvalExamples',
  constraints: 'constraints',
  objectives: 'objective2',
};

/** How the form labels the plan's settings that have no field. */
const SETTING_LABELS: Readonly<Record<string, string>> = {
  space: 'Search space',
  precision: 'Precision',
  objective: 'Objective',
};

/** The form's own limits on the budget (the plan has no upper bounds for these). */
function budgetProblems(s: SearchSettings, model: FormModel | null): SearchProblems['bySetting'] {
  const out: SearchProblems['bySetting'] = {};
  const limits: [SettingName, number, number, number][] = [
    ['trials', s.trials, 1, 500],
    ['stepsPerTrial', s.stepsPerTrial, 1, 100000],
    ['evalEvery', s.evalEvery, 0, 100000],
    ['maxEvalExamples', s.maxEvalExamples, 0, 10_000_000],
    ['workers', s.workers, 1, 8],
    ['seq', s.seq, 4, Math.min(8192, model?.maxPositions ?? 8192)],
  ];
  for (const [name, v, lo, hi] of limits)
    if (!Number.isInteger(v) || v < lo || v > hi) out[name] = `a whole number from ${lo} to ${hi}`;
  if (!(s.timeLimit >= 0)) out.timeLimit = 'a number of minutes ≥ 0 (0 = no limit)';
  if (!(s.valRatio > 0 && s.valRatio < 1)) out.valRatio = 'a number between 0 and 1';
  return out;
}

/** A row checked no further: its engine default, still searched (as one choice) when it was searched. */
function standIn(row: ParamRow): ParamRow {
  const value = FIXED_DEFAULTS[row.name];
  return row.mode === 'range' || row.mode === 'choices'
    ? { ...row, mode: 'choices', choices: value }
    : { ...row, mode: 'fixed', fixed: value };
}

const withStandIns = (s: SearchSettings, rows: Iterable<HyperName>): SearchSettings => {
  const names = new Set(rows);
  return { ...s, rows: s.rows.map((row) => (names.has(row.name) ? standIn(row) : row)) };
};

/** The label of a row, for messages that name it. */
const labelOf = (name: string) => {
  const row = rowName(name);
  return row ? HYPERPARAMETERS[row].label : name;
};

/** PBT's message for the pruner and for each searched row it cannot move mid-trial. */
function pbtProblems(s: SearchSettings, problems: SearchProblems): void {
  const moving = pbtConflicts(spaceSpec(resolveDerived(s.rows)))
    .map(rowName)
    .filter((n): n is HyperName => n !== undefined);
  const alphaFollows = moving.includes('r') && s.rows.some((row) => row.mode === 'derived');
  const names = moving.map(labelOf).join(', ');
  problems.bySetting.pruner =
    `population-based training moves only optimiser settings mid-trial, not ${names}: set ` +
    `${moving.length > 1 ? 'them' : 'it'} to fixed${alphaFollows ? ' (LoRA alpha “× r” then follows the fixed r)' : ''}, ` +
    'or pick another early-stopping rule';
  for (const name of moving)
    problems.byParam[name] ??=
      `population-based training cannot change it mid-trial: set it to fixed${name === 'r' && alphaFollows ? ' (alpha “× r” follows it)' : ''}, or pick another early-stopping rule`;
}

/**
 * Everything wrong with the form, each next to the row or setting at fault: the fixed values' types, then the
 * engine's own check of the recipe (the one the CLI's flags go through, with the model's bounds when a model is
 * loaded), then the form's limits on the budget. The engine stops at the first problem, so each row or setting
 * it names is set aside (its default stands in) and the recipe checked again, until it passes. The page
 * starts a search only when there is none (`hasProblems`).
 */
export function searchProblems(settings: SearchSettings, model: FormModel | null = null): SearchProblems {
  const problems: SearchProblems = { byParam: fixedProblems(settings.rows), bySetting: {}, general: '' };
  if (Object.keys(spaceSpec(settings.rows)).length === 0) {
    problems.general = 'Search at least one parameter: set one to a range or a list of choices.';
    return problems;
  }
  let trying = withStandIns(settings, Object.keys(problems.byParam) as HyperName[]);
  const defaults = defaultSettings();
  for (let attempt = 0; attempt <= HYPER_NAMES.length + Object.keys(PLAN_SETTINGS).length; attempt++) {
    try {
      studyPlan(trying, model?.family ?? 'llama', model ?? undefined);
      break;
    } catch (e) {
      if (!(e instanceof PlanError)) throw e;
      const row = rowName(e.param ?? e.field);
      const setting = PLAN_SETTINGS[e.field];
      if (row && problems.byParam[row] === undefined) {
        problems.byParam[row] = e.field === 'space' ? e.reason.replace(/^parameter '[^']*': /, '') : e.reason;
        trying = withStandIns(trying, [row]);
      } else if (e.field === 'pbt' && problems.bySetting.pruner === undefined) {
        pbtProblems(trying, problems);
        trying = { ...trying, pruner: 'median' };
      } else if (e.field === 'pruner' && problems.bySetting.pruner === undefined) {
        // A multi-objective study neither prunes nor runs PBT: said beside Early stopping, checked on without.
        problems.bySetting.pruner = e.reason;
        trying = { ...trying, pruner: 'none' };
      } else if (setting && problems.bySetting[setting] === undefined) {
        problems.bySetting[setting] = e.reason;
        trying = { ...trying, [setting]: defaults[setting] };
      } else {
        problems.general = `${SETTING_LABELS[e.field] ?? e.field}: ${e.reason}`;
        break;
      }
    }
  }
  for (const [name, message] of Object.entries(budgetProblems(settings, model)))
    problems.bySetting[name as SettingName] ??= message;
  if (model?.memory) memoryProblemOf(settings, model.memory, problems);
  return problems;
}

/** The largest number a row can take (its fixed value, a range's high end, its largest choice). */
export function largestValue(rows: readonly ParamRow[], name: HyperName): number | undefined {
  const row = rows.find((r) => r.name === name);
  if (!row) return undefined;
  const texts =
    row.mode === 'fixed' ? [row.fixed] : row.mode === 'range' ? [row.high] : row.choices.split(',');
  const values = texts.map(parseChoice).filter((v): v is number => typeof v === 'number');
  return values.length ? Math.max(...values) : undefined;
}

/** The memory rule, once batch, r and seq are otherwise valid: on the batch row, or on the sequence length. */
function memoryProblemOf(settings: SearchSettings, memory: FormMemory, problems: SearchProblems): void {
  if (problems.byParam.batch || problems.byParam.r || problems.bySetting.seq) return;
  const problem = memoryProblem(
    {
      batch: largestValue(settings.rows, 'batch') ?? 1,
      rank: largestValue(settings.rows, 'r') ?? 1,
      seq: settings.seq,
      precision: settings.precision,
      recompute: settings.recompute,
    },
    memory,
  );
  if (problem?.setting === 'batch') problems.byParam.batch = problem.message;
  else if (problem) problems.bySetting.seq = problem.message;
}

/** The form row of a plan's searched parameter, as the form writes it. */
function rowOf(name: HyperName, dist: ParamSpec): Partial<ParamRow> & { mode: ParamMode } {
  if (dist.type === 'categorical')
    return { mode: 'choices', choices: dist.choices.map((c) => formValue(name, c)).join(', ') };
  if (dist.type === 'derived') return { mode: 'derived', scale: String(dist.scale) };
  return { mode: 'range', low: String(dist.low), high: String(dist.high), log: dist.log === true };
}

/**
 * The form for a stored plan (an imported or reopened study): searched rows as ranges or choices, the rest at
 * the plan's fixed values, the budget from its fixed steps, seq, seed and precision. Throws naming a parameter
 * the form has no row for.
 */
export function settingsFromPlan(
  plan: StudyPlanSpec,
  base: SearchSettings = defaultSettings(),
): SearchSettings {
  const values: Partial<Record<HyperName, Partial<ParamRow> & { mode: ParamMode }>> = {};
  for (const name of HYPER_NAMES) {
    const field = fieldOfParam(name)!;
    const value = plan.fixed[field];
    if (value !== undefined) values[name] = { mode: 'fixed', fixed: formValue(name, value) };
  }
  for (const [param, dist] of Object.entries(plan.space)) {
    const name = rowName(param);
    if (!name) throw new Error(`the plan searches '${param}', which the Search step has no row for`);
    values[name] = rowOf(name, dist);
  }
  const f = plan.fixed;
  const budget = (field: TrialField, fallback: number) =>
    typeof f[field] === 'number' ? f[field] : fallback;
  return {
    ...base,
    rows: rowsWith(values),
    sampler: plan.sampler,
    pruner: plan.pruner,
    objective: plan.objective,
    objective2: plan.objectives?.[1]?.metric ?? '',
    constraints: (plan.constraints ?? []).map(formatConstraint).join(', '),
    trials: plan.trials,
    stepsPerTrial: budget('steps', base.stepsPerTrial),
    seq: budget('seq', base.seq),
    seed: budget('seed', base.seed),
    evalEvery: budget('evalEvery', 0),
    precision: f.precision ?? base.precision,
    recompute: plan.recompute,
    timeLimit: plan.timeoutSeconds === null ? 0 : plan.timeoutSeconds / 60,
    valRatio: plan.valRatio ?? base.valRatio,
    // A plan stored before the cap existed evaluated on everything: 0 (all), as null.
    maxEvalExamples: plan.maxEvalExamples ?? 0,
    columns: plan.columns ?? null,
  };
}

export interface GridSummary {
  /** Points of the grid (distinct configurations). */
  size: number;
  /** Each searched parameter's values on the grid, as the grid sampler spaces them; empty for a huge grid. */
  axes: [string, Choice[]][];
}

/** Beyond this many points the form shows the grid's size only. */
const GRID_LISTED = 5000;

/**
 * The points the grid sampler visits for a valid form (a continuous range becomes evenly spaced values, in
 * log space for a log range), or null when the form is invalid.
 */
export function gridSummary(settings: SearchSettings, model: FormModel | null = null): GridSummary | null {
  let space;
  try {
    space = studyPlan(settings, model?.family ?? 'llama', model ?? undefined).space;
  } catch (e) {
    if (e instanceof PlanError) return null;
    throw e;
  }
  const size = gridSize(space);
  if (size > GRID_LISTED) return { size, axes: [] };
  const points = enumerateGrid(space);
  const axes = space.sampled.map((d): [string, Choice[]] => {
    const values: Choice[] = [];
    for (const p of points)
      if (p[d.name] !== undefined && !values.includes(p[d.name])) values.push(p[d.name]);
    return [d.name, values];
  });
  return { size, axes };
}
