// `tunelab tune`'s recipe: its flags (or a stored plan) → the engine's StudyPlan, the same recipe the page's
// Search step makes from its form. Flags that fix a training hyperparameter take it out of the searched space.
import { readTextFile } from './common.ts';
import type { ModelFamily } from '../engine/model/config.ts';
import {
  loadStudy,
  SAMPLER_NAMES,
  type SamplerName,
  type SpaceSpec,
  type Study,
} from '../engine/search/index.ts';
import { parseJson } from '../engine/json.ts';
import { fieldOfParam, TRIAL_FIELD_SPECS } from '../engine/train/config.ts';
import type { ColumnMapping } from '../engine/train/columns.ts';
import {
  parseConstraint,
  parseObjectives,
  PLAN_FORMAT,
  PlanError,
  preset,
  PRESET_NAMES,
  PRUNER_CHOICES,
  StudyPlan,
  type ModelBounds,
  type Objective,
  type PlanConstraint,
  type PlanObjective,
  type PresetName,
  type PrunerChoice,
  type StudyPlanSpec,
} from '../engine/tune/index.ts';
import { flaggedFields, numberFlag, stringFlag, TRAIN_FLAGS, UsageError, type FlagValues } from './args.ts';

/** The flags of the recipe besides the hyperparameters'. */
export const PLAN_FLAGS = {
  plan: { type: 'string' },
  space: { type: 'string' },
  preset: { type: 'string' },
  sampler: { type: 'string' },
  pruner: { type: 'string' },
  pbt: { type: 'boolean' },
  objective: { type: 'string' },
  objectives: { type: 'string' },
  constraints: { type: 'string' },
  trials: { type: 'string' },
  timeout: { type: 'string' },
  recompute: { type: 'boolean' },
  'max-eval-examples': { type: 'string' },
} as const;

/** Flags that give the recipe; --plan gives all of it (only --trials and --timeout may change it). */
const RECIPE_FLAGS = [
  ...Object.keys(TRAIN_FLAGS),
  'space',
  'preset',
  'sampler',
  'pruner',
  'pbt',
  'objective',
  'objectives',
  'constraints',
  'recompute',
  'max-eval-examples',
];

/** tune's own defaults: short trials. */
export const TUNE_DEFAULTS = { steps: 20 };

/**
 * The study plan: a stored one (a resumed study, or --plan) with --trials and --timeout applied, else the one
 * the flags give. Errors name the flag.
 */
export async function tunePlan(
  flags: FlagValues,
  family: ModelFamily,
  /** columns: the data's column mapping (flags, else the stored plan's), kept in the plan. */
  data: { trainExamples: number; valRatio: number | null; columns?: ColumnMapping },
  stored: StudyPlanSpec | null,
  model?: ModelBounds,
): Promise<StudyPlan> {
  const context = { family, trainExamples: data.trainExamples, model };
  try {
    const columns = data.columns ? { columns: data.columns } : {};
    return stored
      ? StudyPlan.create({ ...stored, ...budgetFlags(flags, stored), ...columns }, context)
      : StudyPlan.create({ ...(await planInput(flags, family, data.valRatio)), ...columns }, context);
  } catch (error) {
    if (!(error instanceof PlanError)) throw error;
    const flag = planFlag(error.field);
    // A space from a file: name the file too.
    const file = flag === 'space' && typeof flags.space === 'string' ? ` ${flags.space}:` : '';
    throw new UsageError(`--${flag}:${file} ${error.reason}`);
  }
}

/** The flag a plan error is about: a hyperparameter's own, or the plan's setting's. */
function planFlag(field: string): string {
  const spec = (TRIAL_FIELD_SPECS as Record<string, { flag: string } | undefined>)[field];
  const flags: Record<string, string> = {
    timeoutSeconds: 'timeout',
    valRatio: 'val-ratio',
    maxEvalExamples: 'max-eval-examples',
  };
  return spec?.flag ?? flags[field] ?? field;
}

/** --trials and --timeout change a stored plan's budget (more trials for a resumed study). */
function budgetFlags(flags: FlagValues, stored: StudyPlanSpec): Partial<StudyPlanSpec> {
  const trials = numberFlag(flags, 'trials', stored.trials, { min: 1, integer: true })!;
  const timeout = numberFlag(flags, 'timeout', undefined, { above: 0 });
  return { trials, timeoutSeconds: timeout ?? stored.timeoutSeconds };
}

/** The plan in the first line of a study log; null for a log written before plans were logged. */
export function planOfLog(text: string): StudyPlanSpec | null {
  return planOfStudy(loadStudy(text).study);
}

/** The plan a study keeps; null for one logged before plans were (its tune.json flags rebuild it). */
export function planOfStudy(study: Study): StudyPlanSpec | null {
  const plan = study.plan as unknown as StudyPlanSpec | null;
  return plan?.format === PLAN_FORMAT ? plan : null;
}

/** --plan FILE: a study log or a plan JSON; it is the whole recipe, so recipe flags are refused with it. */
export async function planFile(flags: FlagValues): Promise<StudyPlanSpec | null> {
  const file = stringFlag(flags, 'plan');
  if (!file) return null;
  const clash = RECIPE_FLAGS.filter((f) => flags[f] !== undefined);
  if (clash.length > 0)
    throw new UsageError(`--plan gives the whole recipe: drop ${clash.map((f) => `--${f}`).join(', ')}`);
  const text = await readTextFile('plan', file);
  let parsed: unknown = null;
  try {
    parsed = parseJson(text, file);
  } catch {
    // JSON lines: a study log.
  }
  if ((parsed as Partial<StudyPlanSpec> | null)?.format === PLAN_FORMAT) return parsed as StudyPlanSpec;
  let plan: StudyPlanSpec | null;
  try {
    plan = planOfLog(text);
  } catch (e) {
    throw new UsageError(`--plan: ${file} is neither a plan nor a study log (${(e as Error).message})`);
  }
  if (!plan)
    throw new UsageError(`--plan: the study log ${file} holds no plan (written by an older tunelab)`);
  return plan;
}

/** The recipe the flags give: space (file or preset, less what a flag fixes), fixed values, search, budget. */
async function planInput(flags: FlagValues, family: ModelFamily, valRatio: number | null) {
  const presetName = presetFlag(flags);
  const fixed: Record<string, unknown> = {
    ...(presetName ? preset(presetName, family).fixed : {}),
    ...TUNE_DEFAULTS,
    ...flaggedFields(flags),
  };
  if (flags.epochs !== undefined) delete fixed.steps; // the flag replaces tune's default steps
  return {
    space: await searchSpace(flags, presetName, family),
    fixed,
    sampler: samplerFlag(flags),
    pruner: prunerFlag(flags),
    ...objectiveFlags(flags),
    constraints: constraintsFlag(flags),
    trials: numberFlag(flags, 'trials', 10, { min: 1, integer: true })!,
    timeoutSeconds: numberFlag(flags, 'timeout', undefined, { above: 0 }) ?? null,
    recompute: flags.recompute === true,
    valRatio,
    ...maxEvalFlag(flags),
  };
}

/** --max-eval-examples N (0: the whole validation set); absent: the plan's default. */
function maxEvalFlag(flags: FlagValues): { maxEvalExamples?: number | null } {
  const n = numberFlag(flags, 'max-eval-examples', undefined, { min: 0, integer: true });
  return n === undefined ? {} : { maxEvalExamples: n === 0 ? null : n };
}

/** --objective NAME, or --objectives val_loss,step_time (each direction by name unless :min / :max says). */
function objectiveFlags(flags: FlagValues): { objective: Objective; objectives?: PlanObjective[] } {
  const text = stringFlag(flags, 'objectives');
  if (text === undefined) return { objective: (stringFlag(flags, 'objective') ?? 'val_loss') as Objective };
  if (flags.objective !== undefined)
    throw new UsageError('give --objective (one) or --objectives (several), not both');
  try {
    const objectives = parseObjectives(text);
    return { objective: objectives[0].metric as Objective, objectives };
  } catch (error) {
    throw new UsageError(`--objectives: ${(error as Error).message}`);
  }
}

/** --constraints "accuracy>=0.8,tokens_per_second>=2000": bounds a trial must keep to count. */
function constraintsFlag(flags: FlagValues): PlanConstraint[] {
  const text = stringFlag(flags, 'constraints');
  if (text === undefined) return [];
  try {
    return text.split(',').map((part) => parseConstraint(part));
  } catch (error) {
    throw new UsageError(`--constraints: ${(error as Error).message}`);
  }
}

function presetFlag(flags: FlagValues): PresetName | undefined {
  const name = stringFlag(flags, 'preset') ?? (flags.space === undefined ? 'lora-basic' : undefined);
  if (name !== undefined && !(PRESET_NAMES as readonly string[]).includes(name))
    throw new UsageError(`--preset: expected one of ${PRESET_NAMES.join(', ')}, got '${name}'`);
  return name as PresetName | undefined;
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
    space = spaceOfJson(await readTextFile('space', file), file);
  } else space = structuredClone(preset(presetName ?? 'lora-basic', family).space);
  // A flag wins over the space: its parameter (and a value derived from it, lora_alpha = 2·r) leaves the space.
  const flagged = new Set(Object.keys(flaggedFields(flags)));
  for (const name of Object.keys(space)) {
    if (!flagged.has(fieldOfParam(name) ?? name)) continue;
    delete space[name];
    for (const [other, spec] of Object.entries(space))
      if (spec.type === 'derived' && spec.from === name) delete space[other];
  }
  return space;
}

/** A --space file's JSON, checked as far as the loops here need it: an object of parameter objects. */
function spaceOfJson(text: string, file: string): SpaceSpec {
  let parsed: unknown;
  try {
    parsed = parseJson(text, file);
  } catch (e) {
    throw new UsageError(`--space: ${file} is not JSON: ${(e as Error).message}`);
  }
  const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const expected =
    'expected an object of parameters, e.g. {"lr": {"type": "float", "low": 1e-5, "high": 1e-3}}';
  if (!isObject(parsed))
    throw new UsageError(`--space: ${file}: ${expected}, got ${JSON.stringify(parsed).slice(0, 60)}`);
  for (const [name, spec] of Object.entries(parsed as object))
    if (!isObject(spec))
      throw new UsageError(
        `--space: ${file}: parameter "${name}": expected an object with a "type", got ${JSON.stringify(spec)}`,
      );
  return parsed as SpaceSpec;
}

function samplerFlag(flags: FlagValues): SamplerName {
  const s = stringFlag(flags, 'sampler') ?? 'tpe';
  if (!(SAMPLER_NAMES as readonly string[]).includes(s))
    throw new UsageError(`--sampler: expected one of ${SAMPLER_NAMES.join(', ')}, got '${s}'`);
  return s as SamplerName;
}

function prunerFlag(flags: FlagValues): PrunerChoice {
  const p = stringFlag(flags, 'pruner') ?? 'none';
  if (!(PRUNER_CHOICES as readonly string[]).includes(p) || p === 'pbt')
    throw new UsageError(`--pruner: expected none, median or asha, got '${p}'`);
  if (flags.pbt !== true) return p as PrunerChoice;
  if (p !== 'none') throw new UsageError('--pbt replaces early stopping: give --pbt or --pruner, not both');
  return 'pbt';
}
