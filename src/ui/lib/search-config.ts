// The Search step's settings as plain data (persisted with a study), and the two translations the run needs:
// form rows → the engine's SpaceSpec (validated by createSpace, whose errors name the parameter), and one
// trial's params → the engine's TrialConfig → TrainerOptions (the mapping the CLI and the exports use too).
// Hyperparameters the form does not search stay at their fixed value.

import type { ModelSpec } from '../../engine/model/config.ts';
import type { PrecisionChoice } from '../../engine/gpu/precision.ts';
import type { Choice, Params, PrunerSpec, SamplerName, SpaceSpec } from '../../engine/search/index.ts';
import { ALL_LINEAR } from '../../engine/lora/config.ts';
import { preset as enginePreset, type PresetName as EnginePresetName } from '../../engine/export/presets.ts';
import {
  attentionTargets as engineAttentionTargets,
  fieldOfParam,
  trainerOptionsOf,
  trialConfigFromParams,
  type TrialConfig,
} from '../../engine/train/config.ts';
import type { TrainerOptions } from '../../engine/train/trainer.ts';

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
  targets: {
    label: 'LoRA targets',
    kind: 'categorical',
    help: 'all-linear, or attention (q/v, c_attn)',
    modes: ['fixed', 'choices'],
  },
};

export const HYPER_NAMES = Object.keys(HYPERPARAMETERS) as HyperName[];

export type Objective = 'val_loss' | 'accuracy' | 'macro_f1';

export const OBJECTIVES: Record<Objective, { label: string; direction: 'minimize' | 'maximize' }> = {
  val_loss: { label: 'validation loss (lower is better)', direction: 'minimize' },
  accuracy: { label: 'accuracy (classification data)', direction: 'maximize' },
  macro_f1: { label: 'macro-F1 (classification data)', direction: 'maximize' },
};

export interface SearchSettings {
  rows: ParamRow[];
  sampler: SamplerName;
  /** Early stopping, or population-based training (which exploits and explores instead of stopping). */
  pruner: 'none' | 'median' | 'asha' | 'pbt';
  trials: number;
  stepsPerTrial: number;
  /** Evaluate on the validation split every N steps (pruners and PBT act there); 0 = about four per trial. */
  evalEvery: number;
  /** Recompute each block's activations in the backward: much less memory for about a third more time. */
  recompute: boolean;
  /** Minutes; 0 = no limit. */
  timeLimit: number;
  workers: number;
  precision: PrecisionChoice;
  objective: Objective;
  seq: number;
  valRatio: number;
  seed: number;
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

/** Values of the rows a preset does not search. */
const FIXED_DEFAULTS: Record<HyperName, string> = {
  lr: '2e-4',
  r: '16',
  lora_alpha: '32',
  lora_dropout: '0.05',
  weight_decay: '0',
  warmup_ratio: '0.03',
  schedule: 'linear',
  batch: '4',
  accum: '1',
  llrd: '1',
  targets: 'all-linear',
};

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
function rowName(param: string): HyperName | undefined {
  const field = fieldOfParam(param);
  return HYPER_NAMES.find((n) => fieldOfParam(n) === field);
}

/** A TrialConfig value as the form writes it: the attention target list becomes 'attention'. */
function formValue(name: HyperName, value: unknown): string {
  if (name === 'targets') {
    const list = Array.isArray(value) ? value.join(',') : String(value);
    return list === 'all-linear' ? list : list === attentionTargets('llama').join(',') ? 'attention' : list;
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
    recompute: false,
    timeLimit: 0,
    workers: 2,
    precision: 'auto',
    objective: 'val_loss',
    seq: 24,
    valRatio: 0.1,
    seed: 42,
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

/** Attention-only targets of a family, as PEFT names them (the engine's list). */
export function attentionTargets(family: ModelSpec['family']): string[] {
  return engineAttentionTargets(family);
}

export interface TrialBudget {
  steps: number;
  seq: number;
  seed: number;
  classes?: readonly string[];
  /** Evaluate every N steps (and at the end); default 0, only at the end. */
  evalEvery?: number;
  /** The GPU precision the study asked for; only the exported configuration records it. */
  precision?: PrecisionChoice;
  /** Activation recomputation: how a trial trains, not what (no TrialConfig field). */
  recompute?: boolean;
}

/**
 * One trial's full training configuration, in the engine's vocabulary (src/engine/train/config.ts): the form's
 * names (lr, r, lora_alpha, lora_dropout, weight_decay, warmup_ratio, schedule, batch, accum, llrd, targets) are search-space
 * names the engine maps itself, 'attention' targets included; the budget fixes steps, seq, seed (and evalEvery
 * and precision when given). The one default the form differs on: targets are 'all-linear' when no row gives
 * them (the engine's are q/v only). Bad values throw a TrialConfigError naming the parameter and the value.
 */
export function trialConfig(params: Params, family: ModelSpec['family'], budget: TrialBudget): TrialConfig {
  const fixed: Partial<TrialConfig> = {
    targets: ALL_LINEAR,
    steps: budget.steps,
    seq: budget.seq,
    seed: budget.seed,
    ...(budget.evalEvery !== undefined ? { evalEvery: budget.evalEvery } : {}),
    ...(budget.precision ? { precision: budget.precision } : {}),
  };
  return trialConfigFromParams(params, fixed, { family });
}

/** One trial's full hyperparameters (fixed and sampled) → what the Trainer takes. Throws naming the value. */
export function trainerOptions(
  params: Params,
  family: ModelSpec['family'],
  budget: TrialBudget,
): TrainerOptions {
  return trainerOptionsOf(trialConfig(params, family, budget), {
    ...(budget.classes ? { classes: budget.classes } : {}),
    ...(budget.recompute ? { recompute: true } : {}),
  });
}

/** Steps between evaluations: the setting, or about four per trial (older studies have no setting). */
export function evalInterval(settings: Pick<SearchSettings, 'evalEvery' | 'stepsPerTrial'>): number {
  if (settings.evalEvery > 0) return settings.evalEvery;
  return Math.max(1, Math.ceil(settings.stepsPerTrial / 4));
}

/**
 * What every trial of a study trains with besides its params: the same steps, sequence length, seed (so trials
 * differ only by their hyperparameters), evaluation interval and precision. The Run step trains with it and
 * the Export step rebuilds the best trial's configuration from it.
 */
export function trialBudget(settings: SearchSettings, classes?: readonly string[] | null): TrialBudget {
  return {
    steps: settings.stepsPerTrial,
    seq: settings.seq,
    seed: settings.seed,
    evalEvery: evalInterval(settings),
    precision: settings.precision,
    ...(settings.recompute ? { recompute: true } : {}),
    ...(classes ? { classes } : {}),
  };
}

/** PBT is not a pruner: the study runs without one and the coordinator adds PBT on top. */
export function prunerSpec(name: SearchSettings['pruner'], steps: number): PrunerSpec {
  if (name === 'pbt') return 'none';
  if (name === 'median')
    return { type: 'median', nStartupTrials: 1, nWarmupSteps: Math.max(1, Math.floor(steps / 2)) };
  return name;
}
