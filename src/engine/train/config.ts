// The training-config vocabulary: every hyperparameter one trial trains with, named as the `tunelab train`
// flags are (camelCase of --weight-decay etc.), in one table of defaults and bounds that the CLI's flags, the
// page's form and `trialConfigFromParams` all read. A study samples only some of them, under search-space names
// (lr, lora_alpha, warmup_ratio, batch_size, ...); `trialConfigFromParams` maps a trial's params onto the fixed
// values and validates the result, naming the parameter as the caller spelled it.
//
// Defaults are HF Trainer's / PEFT's except: lr 2e-4 (Trainer: 5e-5, too small for LoRA), alpha = 2·r (PEFT: 8),
// batch 4 (Trainer: 8), 100 steps (Trainer: 3 epochs), targets q_proj,v_proj / c_attn (PEFT has no default and
// raises).

import { ALL_LINEAR, parseTargets } from '../lora/config.ts';
import type { LoraConfig } from '../lora/config.ts';
import type { ModelFamily } from '../model/config.ts';
import type { Params } from '../search/space.ts';
import type { ScheduleKind } from './schedule.ts';
import type { TrainerOptions } from './trainer.ts';

export type Targets = readonly string[] | typeof ALL_LINEAR;
export type Precision = 'auto' | 'f16' | 'f32';

export interface TrialConfig {
  /** PEFT target_modules: leaf module names or 'all-linear'. */
  targets: Targets;
  r: number;
  alpha: number;
  dropout: number;
  rslora: boolean;
  optimizer: 'adamw' | 'sgd';
  lr: number;
  /** SGD only. */
  momentum: number;
  nesterov: boolean;
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  schedule: ScheduleKind;
  /** Warmup in optimizer steps; when > 0 it wins (and warmupRatio must be 0). */
  warmupSteps: number;
  /** Warmup as a share of the steps, in [0, 1]. */
  warmupRatio: number;
  /** Layer-wise LR decay in (0, 1]; 1 = off. */
  llrd: number;
  /** LoRA+ (Hayou et al. 2024): B's learning rate is this × A's; 1 = plain LoRA. */
  loraplusLrRatio: number;
  batch: number;
  accum: number;
  seq: number;
  /** Optimizer steps; exactly one of steps and epochs is non-null. */
  steps: number | null;
  epochs: number | null;
  /** 0 = no clipping. */
  maxGradNorm: number;
  precision: Precision;
  seed: number;
  /** Evaluate every N optimizer steps (and at the end); 0 = only at the end. */
  evalEvery: number;
}

export type TrialField = keyof TrialConfig;

/** How a field's value is checked: a number in bounds, a boolean, one of some words, or PEFT targets. */
export type FieldCheck =
  | { kind: 'number'; min?: number; above?: number; max?: number; below?: number; integer?: boolean }
  | { kind: 'boolean' }
  | { kind: 'choice'; choices: readonly string[] }
  | { kind: 'targets' };

export interface FieldSpec<T> {
  /** The `tunelab train` flag that sets it. */
  flag: string;
  default: T;
  check: FieldCheck;
  /** steps and epochs: null means "the other one is given". */
  nullable?: boolean;
}

const num = (bounds: Omit<Extract<FieldCheck, { kind: 'number' }>, 'kind'>): FieldCheck => ({
  kind: 'number',
  ...bounds,
});
const BOOLEAN: FieldCheck = { kind: 'boolean' };

/** Every hyperparameter with its flag, its default and its bounds: the one table the CLI and the page read. */
export const TRIAL_FIELD_SPECS: { readonly [F in TrialField]: FieldSpec<TrialConfig[F]> } = {
  targets: { flag: 'targets', default: ['q_proj', 'v_proj'], check: { kind: 'targets' } },
  r: { flag: 'r', default: 8, check: num({ min: 1, integer: true }) },
  alpha: { flag: 'alpha', default: 16, check: num({ above: 0 }) }, // 2·r unless given
  dropout: { flag: 'dropout', default: 0, check: num({ min: 0, below: 1 }) },
  rslora: { flag: 'rslora', default: false, check: BOOLEAN },
  optimizer: { flag: 'optimizer', default: 'adamw', check: { kind: 'choice', choices: ['adamw', 'sgd'] } },
  lr: { flag: 'lr', default: 2e-4, check: num({ above: 0 }) },
  momentum: { flag: 'momentum', default: 0, check: num({ min: 0, below: 1 }) },
  nesterov: { flag: 'nesterov', default: false, check: BOOLEAN },
  beta1: { flag: 'beta1', default: 0.9, check: num({ min: 0, below: 1 }) },
  beta2: { flag: 'beta2', default: 0.999, check: num({ min: 0, below: 1 }) },
  eps: { flag: 'eps', default: 1e-8, check: num({ above: 0 }) },
  weightDecay: { flag: 'weight-decay', default: 0, check: num({ min: 0 }) },
  schedule: {
    flag: 'schedule',
    default: 'linear',
    check: { kind: 'choice', choices: ['constant', 'linear', 'cosine'] },
  },
  warmupSteps: { flag: 'warmup', default: 0, check: num({ min: 0, integer: true }) },
  warmupRatio: { flag: 'warmup-ratio', default: 0, check: num({ min: 0, max: 1 }) },
  llrd: { flag: 'llrd', default: 1, check: num({ above: 0, max: 1 }) },
  loraplusLrRatio: { flag: 'loraplus-lr-ratio', default: 1, check: num({ min: 1, max: 1024 }) },
  batch: { flag: 'batch', default: 4, check: num({ min: 1, integer: true }) },
  accum: { flag: 'accum', default: 1, check: num({ min: 1, integer: true }) },
  seq: { flag: 'seq', default: 256, check: num({ min: 2, integer: true }) },
  steps: { flag: 'steps', default: 100, check: num({ min: 0, integer: true }), nullable: true },
  epochs: { flag: 'epochs', default: null, check: num({ above: 0 }), nullable: true },
  maxGradNorm: { flag: 'max-grad-norm', default: 1, check: num({ min: 0 }) },
  precision: {
    flag: 'precision',
    default: 'auto',
    check: { kind: 'choice', choices: ['auto', 'f16', 'f32'] },
  },
  seed: { flag: 'seed', default: 42, check: num({ min: 0, integer: true }) },
  evalEvery: { flag: 'eval-every', default: 0, check: num({ min: 0, integer: true }) },
};

export const TRIAL_FIELDS = Object.keys(TRIAL_FIELD_SPECS) as readonly TrialField[];

export class TrialConfigError extends Error {
  constructor(
    /** The parameter as the caller named it (a search-space name or a TrialConfig field). */
    readonly param: string,
    readonly reason: string,
  ) {
    super(`trial config: '${param}': ${reason}`);
    this.name = 'TrialConfigError';
  }
}

/** PEFT's attention-only targets of a family: the query and value projections. */
export function attentionTargets(family: ModelFamily): string[] {
  return family === 'gpt2' ? ['c_attn'] : ['q_proj', 'v_proj'];
}

/** The defaults of the table, for a model family (only `targets` depends on it). */
export function defaultTrialConfig(family: ModelFamily = 'llama'): TrialConfig {
  const config = Object.fromEntries(TRIAL_FIELDS.map((f) => [f, TRIAL_FIELD_SPECS[f].default]));
  return { ...(config as unknown as TrialConfig), targets: attentionTargets(family) };
}

/**
 * Search-space names (and other common spellings: HF TrainingArguments, kebab-case CLI flags) → field.
 * Every TrialConfig field also maps to itself.
 */
export const PARAM_ALIASES: Readonly<Record<string, TrialField>> = {
  target_modules: 'targets',
  lora_r: 'r',
  rank: 'r',
  lora_alpha: 'alpha',
  lora_dropout: 'dropout',
  use_rslora: 'rslora',
  optim: 'optimizer',
  learning_rate: 'lr',
  adam_beta1: 'beta1',
  adam_beta2: 'beta2',
  adam_epsilon: 'eps',
  weight_decay: 'weightDecay',
  'weight-decay': 'weightDecay',
  scheduler: 'schedule',
  lr_scheduler: 'schedule',
  lr_scheduler_type: 'schedule',
  warmup: 'warmupSteps',
  warmup_steps: 'warmupSteps',
  'warmup-ratio': 'warmupRatio',
  warmup_ratio: 'warmupRatio',
  batch_size: 'batch',
  per_device_train_batch_size: 'batch',
  micro_batch_size: 'batch',
  grad_accum: 'accum',
  gradient_accumulation_steps: 'accum',
  seq_len: 'seq',
  sequence_len: 'seq',
  max_length: 'seq',
  max_steps: 'steps',
  num_train_epochs: 'epochs',
  num_epochs: 'epochs',
  max_grad_norm: 'maxGradNorm',
  'max-grad-norm': 'maxGradNorm',
  eval_every: 'evalEvery',
  'eval-every': 'evalEvery',
  loraplus_lr_ratio: 'loraplusLrRatio',
  'loraplus-lr-ratio': 'loraplusLrRatio',
};

/** The TrialConfig field a search-space parameter sets, or undefined for an unknown name. */
export function fieldOfParam(name: string): TrialField | undefined {
  if ((TRIAL_FIELDS as readonly string[]).includes(name)) return name as TrialField;
  return Object.hasOwn(PARAM_ALIASES, name) ? PARAM_ALIASES[name] : undefined;
}

// GPT-2 fuses q, k, v into c_attn and names its MLP c_fc / c_proj; Llama-style models split them.
const TO_GPT2: Record<string, string[]> = {
  q_proj: ['c_attn'],
  k_proj: ['c_attn'],
  v_proj: ['c_attn'],
  o_proj: ['attn.c_proj'],
  gate_proj: ['c_fc'],
  up_proj: ['c_fc'],
  down_proj: ['mlp.c_proj'],
};
const FROM_GPT2: Record<string, string[]> = {
  c_attn: ['q_proj', 'k_proj', 'v_proj'],
  'attn.c_proj': ['o_proj'],
  c_proj: ['o_proj', 'down_proj'],
  c_fc: ['gate_proj', 'up_proj'],
  'mlp.c_proj': ['down_proj'],
};

/**
 * Targets named for one family translated to another's module names (q_proj → c_attn for GPT-2, c_attn →
 * q_proj,k_proj,v_proj for Llama-style models); names that need no translation pass through.
 */
export function mapTargets(targets: Targets, family: ModelFamily): Targets {
  if (targets === ALL_LINEAR) return ALL_LINEAR;
  const table = family === 'gpt2' ? TO_GPT2 : FROM_GPT2;
  const out: string[] = [];
  for (const t of targets)
    for (const m of Object.hasOwn(table, t) ? table[t] : [t]) if (!out.includes(m)) out.push(m);
  return out;
}

/** 'all-linear', 'attention', 'q_proj,v_proj' (or a list) → targets for `family`. */
export function parseTargetsValue(param: string, value: unknown, family: ModelFamily): Targets {
  let targets: Targets;
  if (Array.isArray(value)) {
    if (!value.every((v) => typeof v === 'string'))
      throw new TrialConfigError(param, `expected module names, got ${JSON.stringify(value)}`);
    targets = value as string[];
  } else if (typeof value === 'string') {
    if (value.trim() === 'attention') return attentionTargets(family);
    targets = parseTargets(value.replace(/[\s+|]+/g, ','));
  } else {
    throw new TrialConfigError(
      param,
      `expected 'all-linear', 'attention' or module names like 'q_proj,v_proj', got ${JSON.stringify(value)}`,
    );
  }
  if (targets !== ALL_LINEAR) {
    if (targets.length === 0) throw new TrialConfigError(param, 'expected at least one module name');
    const bad = targets.find((t) => !/^[A-Za-z_][\w.]*$/.test(t) || t.endsWith('.'));
    if (bad !== undefined) throw new TrialConfigError(param, `'${bad}' is not a module name`);
  }
  return mapTargets(targets, family);
}

/** A value as an error message shows it: text in quotes, anything else as JSON. */
const shown = (value: unknown): string => (typeof value === 'string' ? `'${value}'` : JSON.stringify(value));

/** A number written in decimal ('2e-4', '.5', ' -1 '); NaN for anything else ('0x10', '0b1', '', 'Infinity'). */
export function decimalNumber(text: string): number {
  const t = text.trim();
  return /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) ? Number(t) : NaN;
}

function numberOf(param: string, value: unknown, check: Extract<FieldCheck, { kind: 'number' }>): number {
  const { min, above, max, below, integer } = check;
  const v = typeof value === 'string' ? decimalNumber(value) : value;
  const ok =
    typeof v === 'number' &&
    Number.isFinite(v) &&
    (!integer || Number.isInteger(v)) &&
    (min === undefined || v >= min) &&
    (above === undefined || v > above) &&
    (max === undefined || v <= max) &&
    (below === undefined || v < below);
  if (!ok) {
    const range = [
      min !== undefined ? `≥ ${min}` : '',
      above !== undefined ? `> ${above}` : '',
      max !== undefined ? `≤ ${max}` : '',
      below !== undefined ? `< ${below}` : '',
    ]
      .filter((s) => s !== '')
      .join(' and ');
    throw new TrialConfigError(
      param,
      `expected ${integer ? 'a whole number' : 'a number'}${range ? ` ${range}` : ''}, got ${shown(value)}`,
    );
  }
  return v as number;
}

/** Validates and normalises one field's value by its row of the table; errors name `param`. */
function fieldValue(field: TrialField, param: string, value: unknown, family: ModelFamily): unknown {
  const spec: FieldSpec<unknown> = TRIAL_FIELD_SPECS[field];
  if (spec.nullable && value === null) return null;
  const check = spec.check;
  switch (check.kind) {
    case 'targets':
      return parseTargetsValue(param, value, family);
    case 'number':
      return numberOf(param, value, check);
    case 'boolean':
      if (typeof value === 'boolean') return value;
      if (value === 'true' || value === 'false') return value === 'true';
      throw new TrialConfigError(param, `expected true or false, got ${shown(value)}`);
    case 'choice':
      if (typeof value === 'string' && check.choices.includes(value)) return value;
      throw new TrialConfigError(param, `expected one of ${check.choices.join(', ')}, got ${shown(value)}`);
  }
}

export interface TrialConfigOptions {
  /** Family of the model the trial trains: picks default targets and translates target names. */
  family?: ModelFamily;
  /** How errors name a fixed value (the CLI: its flag, '--lr'); default the field's name. */
  fixedName?: (field: TrialField) => string;
}

/**
 * A trial's full configuration: the defaults, then `fixed` (CLI flags / form values that are not searched),
 * then the trial's `params` (search-space names or field names). A param overrides a fixed value, and takes its
 * pair with it: a sampled warmup_ratio clears a fixed warmupSteps, sampled epochs clear fixed steps. alpha, when
 * neither gives it, is 2·r. Unknown names and bad values throw a TrialConfigError naming the parameter.
 */
export function trialConfigFromParams(
  params: Params,
  fixed: Partial<Record<TrialField, unknown>> = {},
  options: TrialConfigOptions = {},
): TrialConfig {
  const family = options.family ?? 'llama';
  const fixedName = options.fixedName ?? ((field: TrialField) => field);
  const config = defaultTrialConfig(family) as unknown as Record<TrialField, unknown>;
  const given = new Map<TrialField, string>();
  const apply = (name: string, value: unknown, source: 'fixed' | 'param'): void => {
    const field = source === 'fixed' ? (name as TrialField) : fieldOfParam(name);
    if (field === undefined || !(TRIAL_FIELDS as readonly string[]).includes(field)) {
      throw new TrialConfigError(
        name,
        `unknown hyperparameter (known: ${TRIAL_FIELDS.join(', ')} and ${Object.keys(PARAM_ALIASES).join(', ')})`,
      );
    }
    const previous = given.get(field);
    if (source === 'param' && previous !== undefined && previous !== 'fixed')
      throw new TrialConfigError(name, `sets '${field}', which '${previous}' already sets`);
    config[field] = fieldValue(field, source === 'fixed' ? fixedName(field) : name, value, family);
    given.set(field, source === 'fixed' ? 'fixed' : name);
    // A sampled member of an either-or pair replaces the fixed other member.
    const other: Partial<Record<TrialField, TrialField>> = {
      warmupSteps: 'warmupRatio',
      warmupRatio: 'warmupSteps',
      steps: 'epochs',
      epochs: 'steps',
    };
    const pair = other[field];
    if (pair !== undefined && config[field] !== null && config[field] !== 0) {
      if (source === 'param' || given.get(pair) === undefined)
        config[pair] = pair === 'steps' || pair === 'epochs' ? null : 0;
    }
  };
  for (const [name, value] of Object.entries(fixed)) if (value !== undefined) apply(name, value, 'fixed');
  for (const [name, value] of Object.entries(params)) apply(name, value, 'param');
  if (!given.has('alpha')) config.alpha = 2 * (config.r as number);
  const c = config as unknown as TrialConfig;
  const nameOf = (field: TrialField): string => {
    const g = given.get(field);
    return g === undefined || g === 'fixed' ? fixedName(field) : g;
  };
  if (c.warmupSteps > 0 && c.warmupRatio > 0) {
    const [steps, ratio] = [nameOf('warmupSteps'), nameOf('warmupRatio')];
    throw new TrialConfigError(ratio, `give ${steps} or ${ratio}, not both`);
  }
  if ((c.steps === null) === (c.epochs === null)) {
    const [steps, epochs] = [nameOf('steps'), nameOf('epochs')];
    throw new TrialConfigError(steps, `give exactly one of ${steps} and ${epochs}`);
  }
  return c;
}

/** Validates a complete TrialConfig (e.g. read back from best-config.json); returns a normalised copy. */
export function validateTrialConfig(config: TrialConfig, family: ModelFamily = 'llama'): TrialConfig {
  const fixed: Partial<TrialConfig> = { ...config };
  for (const f of TRIAL_FIELDS) if (!(f in config)) throw new TrialConfigError(f, 'is missing');
  return trialConfigFromParams({}, fixed, { family });
}

export function loraConfigOf(config: TrialConfig): LoraConfig {
  return {
    r: config.r,
    alpha: config.alpha,
    dropout: config.dropout,
    targets: config.targets,
    rslora: config.rslora,
  };
}

/**
 * What the Trainer takes (precision is the GPU's business and stays with the caller, and so is activation
 * recomputation: it trades speed for memory without changing what is trained, so it is no hyperparameter).
 */
export function trainerOptionsOf(
  config: TrialConfig,
  extra: Pick<TrainerOptions, 'lossScale' | 'classes' | 'recompute'> = {},
): TrainerOptions {
  return {
    lora: loraConfigOf(config),
    optimizer: config.optimizer,
    lr: config.lr,
    beta1: config.beta1,
    beta2: config.beta2,
    eps: config.eps,
    weightDecay: config.weightDecay,
    momentum: config.momentum,
    nesterov: config.nesterov,
    schedule: config.schedule,
    warmupSteps: config.warmupSteps > 0 ? config.warmupSteps : undefined,
    warmupRatio: config.warmupSteps > 0 ? undefined : config.warmupRatio,
    llrd: config.llrd,
    loraplusLrRatio: config.loraplusLrRatio,
    batch: config.batch,
    accum: config.accum,
    seq: config.seq,
    steps: config.steps ?? undefined,
    epochs: config.epochs ?? undefined,
    maxGradNorm: config.maxGradNorm,
    seed: config.seed,
    evalEvery: config.evalEvery,
    ...extra,
  };
}
