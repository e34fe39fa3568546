// A search space checked against the trial-config rules (src/engine/train/config.ts's table) when a study is
// defined: every choice, both ends of every range and every value a derived parameter takes must be one a trial
// can train with, and within the model's bounds when the model is known. Otherwise the study would start and
// fail trial after trial. StudyPlan.create runs this; the first problem found is returned, naming the parameter.
import { ALL_LINEAR, FAMILY_LINEARS } from '../lora/config.ts';
import type { ModelFamily, ModelSpec } from '../model/config.ts';
import {
  snapNumeric,
  type Choice,
  type DerivedDef,
  type ParamDef,
  type SampledDef,
  type SearchSpace,
} from '../search/space.ts';
import {
  fieldOfParam,
  TRIAL_FIELD_SPECS,
  TrialConfigError,
  trialConfigFromParams,
  type TrialConfig,
  type TrialConfigOptions,
  type TrialField,
  type Targets,
} from '../train/config.ts';

/** What the plan may know of the model: the bounds of seq and r. */
export type ModelBounds = Pick<ModelSpec, 'maxPositions' | 'hidden'>;

export interface SpaceProblem {
  param: string;
  reason: string;
}

/** Pairs a trial takes one member of: a space searching both would give trials both or neither. */
const EITHER_OR: readonly [TrialField, TrialField][] = [
  ['warmupSteps', 'warmupRatio'],
  ['steps', 'epochs'],
];

const isNumber = (v: Choice): v is number => typeof v === 'number';

/** The values that decide whether a parameter is safe: every choice; a range's ends (and its top grid point). */
function edgeValues(def: SampledDef): Choice[] {
  if (def.kind === 'categorical') return def.choices;
  return def.step > 0 ? [def.low, def.high, snapNumeric(def, def.high)] : [def.low, def.high];
}

function derivedValue(def: DerivedDef, from: number): number {
  const v = def.scale * from + def.offset;
  return def.round ? Math.round(v) : v;
}

/** The type a field's rule needs: numbers for numbers (whole numbers: int), choices for the rest. */
function typeProblem(def: SampledDef, field: TrialField): string | undefined {
  const check = TRIAL_FIELD_SPECS[field].check;
  if (def.kind === 'categorical') return undefined;
  if (check.kind !== 'number')
    return `takes ${check.kind === 'boolean' ? 'true or false' : 'names'}: use type 'categorical'`;
  if (check.integer && def.kind === 'float') return "takes whole numbers: use type 'int' (or choices)";
  return undefined;
}

/** A value past the model's bounds (seq: its positions; r: its hidden size), in words. */
export function modelBoundProblem(
  field: TrialField,
  value: unknown,
  model: ModelBounds | undefined,
): string | undefined {
  if (model === undefined || typeof value !== 'number') return undefined;
  if (field === 'seq' && value > model.maxPositions)
    return `${value} is longer than the model's ${model.maxPositions} positions`;
  if (field === 'r' && value > model.hidden)
    return `${value} is larger than the model's hidden size ${model.hidden}`;
  return undefined;
}

/**
 * Targets no linear layer of the family could match (a target matches a layer path ending in `.target`, so
 * its last name must be one of the family's layers); the trial's adapter would refuse them.
 */
export function targetsProblem(targets: Targets, family: ModelFamily): string | undefined {
  if (targets === ALL_LINEAR) return undefined;
  const layers = FAMILY_LINEARS[family];
  const bad = targets.find((t) => !layers.includes(t.slice(t.lastIndexOf('.') + 1)));
  return bad === undefined
    ? undefined
    : `'${bad}' matches no linear layer of a ${family} model (${layers.join(', ')})`;
}

/** Why a trial would refuse these params over the fixed values, or undefined. */
function trialProblem(
  params: Record<string, Choice>,
  fixed: Partial<TrialConfig>,
  options: TrialConfigOptions,
): string | undefined {
  try {
    const config = trialConfigFromParams(params, fixed, options);
    return 'targets' in fixed ? undefined : targetsProblem(config.targets, options.family ?? 'llama');
  } catch (e) {
    if (e instanceof TrialConfigError) return e.reason;
    throw e;
  }
}

function sampledProblem(
  def: SampledDef,
  field: TrialField,
  fixed: Partial<TrialConfig>,
  options: TrialConfigOptions,
  model: ModelBounds | undefined,
): string | undefined {
  const typeWrong = typeProblem(def, field);
  if (typeWrong) return typeWrong;
  const where = def.kind === 'categorical' ? 'choices' : `range ${def.low} .. ${def.high}`;
  for (const value of edgeValues(def)) {
    const why = trialProblem({ [def.name]: value }, fixed, options) ?? modelBoundProblem(field, value, model);
    if (why) return `${where}: ${why}`;
  }
  return undefined;
}

function derivedProblem(
  def: DerivedDef,
  field: TrialField,
  from: SampledDef,
  fixed: Partial<TrialConfig>,
  options: TrialConfigOptions,
  model: ModelBounds | undefined,
): string | undefined {
  const parents = edgeValues(from).filter(isNumber);
  const rule = TRIAL_FIELD_SPECS[field].check;
  const wholeParent = from.kind === 'int' || parents.every(Number.isInteger);
  if (
    rule.kind === 'number' &&
    rule.integer &&
    !def.round &&
    !(wholeParent && Number.isInteger(def.scale) && Number.isInteger(def.offset))
  )
    return `takes whole numbers: set round, or a whole scale and offset over a whole-numbered '${from.name}'`;
  for (const p of parents) {
    const value = derivedValue(def, p);
    const at = `${def.scale}·${from.name}${def.offset ? ` + ${def.offset}` : ''} at ${from.name} = ${p} is ${value}`;
    if (!Number.isFinite(value)) return `${at}: expected a finite number`;
    const why =
      trialProblem({ [from.name]: p, [def.name]: value }, fixed, options) ??
      modelBoundProblem(field, value, model);
    if (why) return `${at}: ${why}`;
  }
  return undefined;
}

/** Each parameter's field; a name that is no hyperparameter, or a second name for a field, is a problem. */
function fieldsOf(params: readonly ParamDef[]): Map<string, TrialField> | SpaceProblem {
  const fields = new Map<string, TrialField>();
  const named = new Map<TrialField, string>();
  for (const def of params) {
    const field = fieldOfParam(def.name);
    if (field === undefined) return { param: def.name, reason: 'is not a hyperparameter tunelab knows' };
    const other = named.get(field);
    if (other !== undefined)
      return { param: def.name, reason: `sets '${field}', which '${other}' already sets` };
    fields.set(def.name, field);
    named.set(field, def.name);
  }
  for (const [a, b] of EITHER_OR)
    if (named.has(a) && named.has(b))
      return { param: named.get(b)!, reason: `search '${named.get(a)}' or '${named.get(b)}', not both` };
  return fields;
}

/**
 * The first parameter of the space no trial could train with, at the plan's fixed values (a TrialConfig
 * without the searched fields), or undefined when every value the space can take is one a trial accepts.
 */
export function spaceRuleProblem(
  space: SearchSpace,
  fixed: Partial<TrialConfig>,
  options: TrialConfigOptions,
  model?: ModelBounds,
): SpaceProblem | undefined {
  const fields = fieldsOf(space.params);
  if (!(fields instanceof Map)) return fields;
  const sampled = new Map(space.sampled.map((d) => [d.name, d]));
  for (const def of space.params) {
    const field = fields.get(def.name)!;
    const reason =
      def.kind === 'derived'
        ? derivedProblem(def, field, sampled.get(def.from)!, fixed, options, model)
        : sampledProblem(def, field, fixed, options, model);
    if (reason) return { param: def.name, reason };
  }
  return undefined;
}
