// Flag parsing shared by the commands: every training hyperparameter is a flag named as in the README, and
// every bad value is refused with the flag's name and what was expected.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ALL_LINEAR, parseTargets } from '../engine/lora/config.ts';
import type { TrainerOptions } from '../engine/train/trainer.ts';

export class UsageError extends Error {}

/** The `train` hyperparameter flags (also accepted by `tune`, where they fix a value for every trial). */
export const TRAIN_FLAGS = {
  targets: { type: 'string' },
  r: { type: 'string' },
  alpha: { type: 'string' },
  dropout: { type: 'string' },
  rslora: { type: 'boolean' },
  optimizer: { type: 'string' },
  lr: { type: 'string' },
  momentum: { type: 'string' },
  nesterov: { type: 'boolean' },
  beta1: { type: 'string' },
  beta2: { type: 'string' },
  eps: { type: 'string' },
  'weight-decay': { type: 'string' },
  schedule: { type: 'string' },
  warmup: { type: 'string' },
  'warmup-ratio': { type: 'string' },
  llrd: { type: 'string' },
  batch: { type: 'string' },
  accum: { type: 'string' },
  seq: { type: 'string' },
  steps: { type: 'string' },
  epochs: { type: 'string' },
  'max-grad-norm': { type: 'string' },
  precision: { type: 'string' },
  seed: { type: 'string' },
  'eval-every': { type: 'string' },
} as const;

export type FlagValues = Record<string, string | boolean | undefined>;

export function parseFlags(argv: string[], options: NonNullable<ParseArgsConfig['options']>): FlagValues {
  try {
    return parseArgs({ args: argv, options, allowPositionals: false, strict: true }).values as FlagValues;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

export function numberFlag(
  values: FlagValues,
  name: string,
  fallback: number | undefined,
  check: { min?: number; max?: number; integer?: boolean; above?: number } = {},
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  const { min, max, integer, above } = check;
  const what = `${integer ? 'a whole number' : 'a number'}${min !== undefined ? ` ≥ ${min}` : ''}${above !== undefined ? ` > ${above}` : ''}${max !== undefined ? ` ≤ ${max}` : ''}`;
  if (
    typeof raw !== 'string' ||
    raw.trim() === '' ||
    !Number.isFinite(value) ||
    (integer && !Number.isInteger(value)) ||
    (min !== undefined && value < min) ||
    (above !== undefined && value <= above) ||
    (max !== undefined && value > max)
  ) {
    throw new UsageError(`--${name}: expected ${what}, got '${String(raw)}'`);
  }
  return value;
}

function choice<T extends string>(values: FlagValues, name: string, choices: readonly T[], fallback: T): T {
  const raw = values[name];
  if (raw === undefined) return fallback;
  if (!choices.includes(raw as T))
    throw new UsageError(`--${name}: expected one of ${choices.join(', ')}, got '${String(raw)}'`);
  return raw as T;
}

export function precisionFlag(values: FlagValues): 'auto' | 'f16' | 'f32' {
  return choice(values, 'precision', ['auto', 'f16', 'f32'] as const, 'auto');
}

/** Trainer options from the train flags, with HF/PEFT defaults for what they leave out. */
export function trainerOptionsFromFlags(
  values: FlagValues,
  model: { family: string; maxPositions: number },
): TrainerOptions {
  const family = model.family;
  const req = <T>(v: T | undefined): T => v as T;
  const targetsRaw = values.targets;
  const targets =
    typeof targetsRaw === 'string'
      ? parseTargets(targetsRaw)
      : family === 'gpt2'
        ? ['c_attn']
        : ['q_proj', 'v_proj'];
  const r = req(numberFlag(values, 'r', 8, { min: 1, integer: true }));
  const warmup = numberFlag(values, 'warmup', undefined, { min: 0, integer: true });
  const warmupRatio = numberFlag(values, 'warmup-ratio', undefined, { min: 0, max: 1 });
  if (warmup !== undefined && warmupRatio !== undefined)
    throw new UsageError('give --warmup or --warmup-ratio, not both');
  const steps = numberFlag(values, 'steps', undefined, { min: 0, integer: true });
  const epochs = numberFlag(values, 'epochs', undefined, { above: 0 });
  if (steps !== undefined && epochs !== undefined) throw new UsageError('give --steps or --epochs, not both');
  const optimizer = choice(values, 'optimizer', ['adamw', 'sgd'] as const, 'adamw');
  return {
    lora: {
      r,
      alpha: req(numberFlag(values, 'alpha', 2 * r, { above: 0 })),
      dropout: req(numberFlag(values, 'dropout', 0, { min: 0, max: 0.99 })),
      targets: targets === ALL_LINEAR ? ALL_LINEAR : targets,
      rslora: values.rslora === true,
    },
    optimizer,
    lr: req(numberFlag(values, 'lr', 2e-4, { above: 0 })),
    momentum: numberFlag(values, 'momentum', 0, { min: 0, max: 0.999999 }),
    nesterov: values.nesterov === true,
    beta1: numberFlag(values, 'beta1', 0.9, { min: 0, max: 0.999999 }),
    beta2: numberFlag(values, 'beta2', 0.999, { min: 0, max: 0.999999 }),
    eps: numberFlag(values, 'eps', 1e-8, { above: 0 }),
    weightDecay: numberFlag(values, 'weight-decay', 0, { min: 0 }),
    schedule: choice(values, 'schedule', ['constant', 'linear', 'cosine'] as const, 'linear'),
    warmupSteps: warmup,
    warmupRatio,
    llrd: numberFlag(values, 'llrd', 1, { above: 0, max: 1 }),
    batch: req(numberFlag(values, 'batch', 4, { min: 1, integer: true })),
    accum: req(numberFlag(values, 'accum', 1, { min: 1, integer: true })),
    seq: req(numberFlag(values, 'seq', Math.min(256, model.maxPositions), { min: 2, integer: true })),
    steps: steps ?? (epochs === undefined ? 100 : undefined),
    epochs,
    maxGradNorm: numberFlag(values, 'max-grad-norm', 1, { min: 0 }),
    seed: req(numberFlag(values, 'seed', 42, { min: 0, integer: true })),
    evalEvery: numberFlag(values, 'eval-every', 0, { min: 0, integer: true }),
  };
}

export function stringFlag(values: FlagValues, name: string, required: true): string;
export function stringFlag(values: FlagValues, name: string, required?: false): string | undefined;
export function stringFlag(values: FlagValues, name: string, required = false): string | undefined {
  const raw = values[name];
  if (raw === undefined) {
    if (required) throw new UsageError(`--${name} is required`);
    return undefined;
  }
  if (typeof raw !== 'string' || raw.length === 0) throw new UsageError(`--${name}: expected a value`);
  return raw;
}
