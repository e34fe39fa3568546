// Flag parsing shared by the commands: every training hyperparameter is a flag named as in the README, and
// every bad value is refused with the flag's name and what was expected.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { ModelFamily } from '../engine/model/config.ts';
import {
  decimalNumber,
  TRIAL_FIELD_SPECS,
  TRIAL_FIELDS,
  TrialConfigError,
  trialConfigFromParams,
  type TrialConfig,
  type TrialField,
} from '../engine/train/config.ts';

export class UsageError extends Error {}

/** The hyperparameter flags, one per row of the config table (`tune` takes them to fix a value for every trial). */
export const TRAIN_FLAGS: Record<string, { type: 'string' | 'boolean' }> = Object.fromEntries(
  TRIAL_FIELDS.map((f) => {
    const spec = TRIAL_FIELD_SPECS[f];
    return [spec.flag, { type: spec.check.kind === 'boolean' ? 'boolean' : 'string' }];
  }),
);

/** The flag that sets `field`, as errors name it: '--weight-decay'. */
export const flagOf = (field: TrialField): string => `--${TRIAL_FIELD_SPECS[field].flag}`;

export type FlagValues = Record<string, string | boolean | undefined>;

export function parseFlags(argv: string[], options: NonNullable<ParseArgsConfig['options']>): FlagValues {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: false, strict: true, tokens: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  // parseArgs keeps the last of a repeated flag; `--steps 10 ... --steps 100` is more likely a mistake.
  const seen = new Set<string>();
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue;
    if (seen.has(token.name)) throw new UsageError(`${token.rawName} given more than once`);
    seen.add(token.name);
  }
  return parsed.values as FlagValues;
}

export function numberFlag(
  values: FlagValues,
  name: string,
  fallback: number | undefined,
  check: { min?: number; max?: number; integer?: boolean; above?: number } = {},
): number | undefined {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' ? decimalNumber(raw) : NaN;
  const { min, max, integer, above } = check;
  const what = `${integer ? 'a whole number' : 'a number'}${min !== undefined ? ` ≥ ${min}` : ''}${above !== undefined ? ` > ${above}` : ''}${max !== undefined ? ` ≤ ${max}` : ''}`;
  if (
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

/** --precision, checked by the config table (eval and generate take it without the other flags). */
export function precisionFlag(values: FlagValues): TrialConfig['precision'] {
  const given = values.precision === undefined ? {} : { precision: values.precision };
  return trialConfigFromFlags(given, { family: 'llama', maxPositions: 2 }).precision;
}

/** The hyperparameters the flags give, by field (raw: the config table checks them). */
export function flaggedFields(values: FlagValues): Partial<Record<TrialField, unknown>> {
  const out: Partial<Record<TrialField, unknown>> = {};
  for (const f of TRIAL_FIELDS) {
    const value = values[TRIAL_FIELD_SPECS[f].flag];
    if (value !== undefined) out[f] = value;
  }
  return out;
}

/**
 * The training configuration the flags give: the config table's defaults (seq no longer than the model's
 * positions), then `defaults` (a command's own), then every flag given. Errors name the flag.
 */
export function trialConfigFromFlags(
  values: FlagValues,
  model: { family: ModelFamily; maxPositions: number },
  defaults: Partial<Record<TrialField, unknown>> = {},
): TrialConfig {
  const seq = Math.min(TRIAL_FIELD_SPECS.seq.default, model.maxPositions);
  try {
    return trialConfigFromParams(
      {},
      { seq, ...defaults, ...flaggedFields(values) },
      { family: model.family, fixedName: flagOf },
    );
  } catch (error) {
    if (error instanceof TrialConfigError) throw new UsageError(`${error.param}: ${error.reason}`);
    throw error;
  }
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
