// One trial's sampled params laid over the options every trial shares (`tunelab tune`'s train flags).
// Interim: src/engine/train/config.ts (TrialConfig ↔ study params, presets) replaces this when it lands.
// Names follow PEFT / HF Trainer: lr, r, lora_alpha, lora_dropout, weight_decay, warmup_ratio, schedule,
// batch, targets ('all-linear' | 'attention' | comma list), optimizer, max_grad_norm, llrd.
import { ALL_LINEAR, parseTargets } from '../lora/config.ts';
import type { Params, SpaceSpec } from '../search/index.ts';
import type { ScheduleKind } from '../train/schedule.ts';
import type { TrainerOptions } from '../train/trainer.ts';

export const TUNABLE = [
  'lr',
  'r',
  'lora_alpha',
  'lora_dropout',
  'weight_decay',
  'warmup_ratio',
  'schedule',
  'batch',
  'targets',
  'optimizer',
  'max_grad_norm',
  'llrd',
] as const;

/** Params that change the adapter's shape or the batches: PBT cannot move a running trial across them. */
export const STRUCTURAL = ['r', 'targets', 'batch', 'optimizer'] as const;

export const PRESET_SPACES: Record<string, SpaceSpec> = {
  'lora-basic': {
    lr: { type: 'float', low: 1e-5, high: 1e-3, log: true },
    r: { type: 'categorical', choices: [8, 16, 32] },
    lora_alpha: { type: 'derived', from: 'r', scale: 2 },
    lora_dropout: { type: 'float', low: 0, high: 0.1 },
  },
  'lora-full': {
    lr: { type: 'float', low: 1e-5, high: 1e-3, log: true },
    r: { type: 'categorical', choices: [4, 8, 16, 32, 64] },
    lora_alpha: { type: 'categorical', choices: [8, 16, 32, 64] },
    lora_dropout: { type: 'float', low: 0, high: 0.2 },
    weight_decay: { type: 'float', low: 0, high: 0.1 },
    warmup_ratio: { type: 'float', low: 0, high: 0.1 },
    schedule: { type: 'categorical', choices: ['constant', 'linear', 'cosine'] },
    batch: { type: 'categorical', choices: [2, 4, 8] },
    targets: { type: 'categorical', choices: ['all-linear', 'attention'] },
  },
};

/** Refuses a space naming something a trial cannot set, naming the parameter. */
export function checkTunable(space: SpaceSpec): void {
  for (const name of Object.keys(space)) {
    if (!(TUNABLE as readonly string[]).includes(name))
      throw new RangeError(`search space: '${name}' is not a tunable hyperparameter (${TUNABLE.join(', ')})`);
  }
}

export function trialOptions(params: Params, base: TrainerOptions, family: string): TrainerOptions {
  const num = (name: string): number | undefined => {
    const v = params[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new RangeError(`${name}: '${String(v)}' is not a number`);
    return v;
  };
  const r = num('r') === undefined ? base.lora.r : Math.round(num('r')!);
  let targets = base.lora.targets;
  if (params.targets !== undefined) {
    const t = String(params.targets);
    targets =
      t === 'attention'
        ? family === 'gpt2'
          ? ['c_attn']
          : ['q_proj', 'v_proj']
        : t === 'all-linear'
          ? ALL_LINEAR
          : parseTargets(t);
  }
  const schedule = params.schedule === undefined ? base.schedule : String(params.schedule);
  if (!['constant', 'linear', 'cosine'].includes(schedule))
    throw new RangeError(`schedule: unknown '${schedule}'`);
  const optimizer = params.optimizer === undefined ? base.optimizer : String(params.optimizer);
  if (optimizer !== 'adamw' && optimizer !== 'sgd') throw new RangeError(`optimizer: unknown '${optimizer}'`);
  const warmupRatio = num('warmup_ratio');
  const options: TrainerOptions = {
    ...base,
    lora: {
      ...base.lora,
      r,
      // alpha follows r (2r) unless searched or fixed: the PEFT habit the train flags default to.
      alpha: num('lora_alpha') ?? (params.r !== undefined ? 2 * r : base.lora.alpha),
      dropout: num('lora_dropout') ?? base.lora.dropout,
      targets,
    },
    optimizer,
    lr: num('lr') ?? base.lr,
    schedule: schedule as ScheduleKind,
    batch: num('batch') === undefined ? base.batch : Math.round(num('batch')!),
  };
  // Optional options only when set: an explicit undefined would override the trainer's defaults.
  const optional = { weightDecay: num('weight_decay'), maxGradNorm: num('max_grad_norm'), llrd: num('llrd') };
  for (const [key, value] of Object.entries(optional))
    if (value !== undefined) Object.assign(options, { [key]: value });
  if (warmupRatio !== undefined) {
    options.warmupRatio = warmupRatio;
    delete options.warmupSteps;
  }
  return options;
}
