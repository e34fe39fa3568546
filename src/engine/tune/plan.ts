// One study's recipe, whoever writes it: the page's form and the CLI's flags both become a StudyPlan, and the
// run, the exports and the study log read the plan and nothing else. A plan holds the searched space, the value
// of every hyperparameter that is not searched (resolved: defaults filled in, targets spelled for the family),
// the sampler, the early-stopping rule, the objective and the budget; from it come the study's options, the
// pruner, the evaluation interval and each trial's trainer options. `toJSON()` is what the study log keeps.
//
// Decided here once (the CLI and the page disagreed):
//   evaluation interval  ceil(steps / 4) when not given: at most four evaluations per trial, the last at the
//                        end (floor gave up to seven on short trials, each a pass over the validation set);
//   median pruner        one startup trial, warm-up of one interval: a trial is compared from its first
//                        evaluation on (already ¼ of its steps); waiting for half the trial left one or two
//                        chances to stop it in a four-evaluation trial;
//   ASHA                 min resource = the interval, so every rung (interval·4^k) is an evaluation step;
//                        with 1, rungs fell between evaluations and were decided at whatever came next;
//   objectives           the engine's list (val_loss, perplexity, accuracy, macro_f1) for both.

import type { ModelFamily } from '../model/config.ts';
import { gridSize } from '../search/samplers/grid.ts';
import {
  createSpace,
  SAMPLER_NAMES,
  SearchSpaceError,
  type Params,
  type PbtOptions,
  type PrunerSpec,
  type SamplerName,
  type SearchSpace,
  type SpaceSpec,
  type StudyOptions,
} from '../search/index.ts';
import {
  fieldOfParam,
  trainerOptionsOf,
  TRIAL_FIELDS,
  TrialConfigError,
  trialConfigFromParams,
  type TrialConfig,
  type TrialField,
} from '../train/config.ts';
import type { TrainerOptions } from '../train/trainer.ts';
import { ColumnMappingError, resolveMapping, type ColumnMapping } from '../train/columns.ts';
import { constraintProblem, type PlanConstraint } from './constraints.ts';
import { OBJECTIVES, type Objective } from './objective.ts';
import { objectivesProblem, type PlanObjective } from './objectives.ts';
import { checkSpaceNames, pbtConflicts } from './params.ts';
import { modelBoundProblem, spaceRuleProblem, targetsProblem, type ModelBounds } from './space-rules.ts';

export const PLAN_FORMAT = 'tunelab.plan/1';

/**
 * Validation examples an evaluation uses by default: a few hundred give a val_loss steady enough to rank trials,
 * while a whole large split (18,667 examples of a 5 MB text) made every evaluation take minutes.
 */
export const DEFAULT_MAX_EVAL_EXAMPLES = 256;

/** The grid sampler's default maxSize: the largest grid a study can enumerate. */
const GRID_MAX_SIZE = 100_000;

/** Early stopping, or population-based training (which exploits and explores instead of stopping). */
export const PRUNER_CHOICES = ['none', 'median', 'asha', 'pbt'] as const;
export type PrunerChoice = (typeof PRUNER_CHOICES)[number];

/** A study's recipe as plain JSON: what the study log keeps and `StudyPlan.create` reads back. */
export interface StudyPlanSpec {
  format: typeof PLAN_FORMAT;
  /** The searched parameters (search-space names). */
  space: SpaceSpec;
  /** Every hyperparameter that is not searched, resolved (alpha is absent while it follows a searched r). */
  fixed: Partial<TrialConfig>;
  sampler: SamplerName;
  pruner: PrunerChoice;
  objective: Objective;
  /**
   * A multi-objective study's objectives, in order (the first is `objective`); absent with one objective
   * (and in plans written before multi-objective studies).
   */
  objectives?: PlanObjective[];
  /** Trials to bring to an end as complete or pruned. */
  trials: number;
  /** No new trial after this many seconds; null: no limit. */
  timeoutSeconds: number | null;
  /** Activation recomputation in every trial (how trials train, not what: memory for time). */
  recompute: boolean;
  /** Share of the data held out for validation; null when a validation file was given. */
  valRatio: number | null;
  /**
   * Evaluations use the first this many validation examples (the split is a seeded shuffle, so a random
   * sample of it); null: all. Absent from plans stored before it existed, which used all.
   */
  maxEvalExamples?: number | null;
  /** Bounds a trial must keep to count (absent: none; plans written before constraints have none). */
  constraints?: PlanConstraint[];
  /** The finished study this one was warm-started from (absent: a cold start). */
  warmStart?: PlanWarmStart;
  /** The data's columns, when a mapping named them (absent: the fixed names of each format). */
  columns?: ColumnMapping;
}

/** Where a warm start came from; the seed itself (replays, prior observations) is in the study log. */
export interface PlanWarmStart {
  /** The source study as given (the --out of its tunelab tune run). */
  study: string;
  /** SHA-256 of the source study's log when the seed was taken. */
  source: string;
}

/**
 * What the page's form or the CLI's flags give. Fixed values may be raw (text from a form or a flag) and named
 * by field or search-space name; `evalEvery` absent from them means "about four per trial".
 */
export interface PlanInput {
  space: SpaceSpec;
  fixed?: Readonly<Record<string, unknown>>;
  /** Default 'tpe'. */
  sampler?: SamplerName;
  /** Default 'none'. */
  pruner?: PrunerChoice;
  /** Default 'val_loss'. */
  objective?: Objective;
  /** Two or more objectives (the first an evaluated one); `objective`, when given, must be the first. */
  objectives?: readonly PlanObjective[];
  trials: number;
  timeoutSeconds?: number | null;
  recompute?: boolean;
  valRatio: number | null;
  /** Default DEFAULT_MAX_EVAL_EXAMPLES; null: the whole validation set. */
  maxEvalExamples?: number | null;
  /** Default none. */
  constraints?: readonly PlanConstraint[];
  /** Default none (a cold start). */
  warmStart?: PlanWarmStart;
  /** Default none: the data's fixed column names. */
  columns?: ColumnMapping | null;
}

export interface PlanContext {
  /** The model's family: default targets, and target names translated for it. */
  family: ModelFamily;
  /** Training examples, for the steps of a trial given in epochs (its evaluation interval). */
  trainExamples?: number;
  /** The model's bounds, when known: seq ≤ its positions and r ≤ its hidden size, searched or fixed. */
  model?: ModelBounds;
}

export class PlanError extends Error {
  constructor(
    /** What is wrong, as the plan names it: 'trials', 'space', 'pbt', a hyperparameter's field ... */
    readonly field: string,
    readonly reason: string,
    /** For field 'space': the parameter of the space that is wrong, when one is. */
    readonly param?: string,
  ) {
    super(`study plan: ${field}: ${reason}`);
    this.name = 'PlanError';
  }
}

/** A problem with one parameter of the space, as a PlanError naming it. */
function spaceError(param: string, reason: string): PlanError {
  const where = param === '' ? '' : `parameter '${param}': `;
  return new PlanError('space', `${where}${reason}`, param === '' ? undefined : param);
}

/** Every column of the mapping's task, named (a left-out role's standard name written out). */
function mappedColumns(mapping: ColumnMapping): ColumnMapping {
  try {
    return resolveMapping(mapping).columns;
  } catch (e) {
    if (e instanceof ColumnMappingError) throw new PlanError('columns', e.message);
    throw e;
  }
}

function check(ok: boolean, field: string, message: string): void {
  if (!ok) throw new PlanError(field, message);
}

export class StudyPlan {
  private constructor(
    readonly spec: StudyPlanSpec,
    readonly family: ModelFamily,
    readonly space: SearchSpace,
  ) {}

  /** Validates and resolves a recipe (a stored spec reads back to the same plan). Throws a PlanError. */
  static create(input: PlanInput | StudyPlanSpec, context: PlanContext): StudyPlan {
    const sampler = input.sampler ?? 'tpe';
    const pruner = input.pruner ?? 'none';
    const objectives = input.objectives;
    if (objectives !== undefined) checkObjectives(objectives, input.objective, pruner);
    const objective = (objectives?.[0].metric as Objective | undefined) ?? input.objective ?? 'val_loss';
    check(SAMPLER_NAMES.includes(sampler), 'sampler', `expected one of ${SAMPLER_NAMES.join(', ')}`);
    check(PRUNER_CHOICES.includes(pruner), 'pruner', `expected one of ${PRUNER_CHOICES.join(', ')}`);
    check(objective in OBJECTIVES, 'objective', `expected one of ${Object.keys(OBJECTIVES).join(', ')}`);
    check(Number.isInteger(input.trials) && input.trials >= 1, 'trials', 'expected a whole number ≥ 1');
    const timeout = input.timeoutSeconds ?? null;
    check(timeout === null || timeout > 0, 'timeoutSeconds', 'expected a number of seconds > 0');
    const valRatio = input.valRatio;
    check(valRatio === null || (valRatio > 0 && valRatio < 1), 'valRatio', 'expected a share in (0, 1)');
    // A stored plan without the field was run on the whole validation set: it keeps doing so.
    const stored = (input as Partial<StudyPlanSpec>).format === PLAN_FORMAT;
    const maxEval =
      input.maxEvalExamples === undefined && !stored
        ? DEFAULT_MAX_EVAL_EXAMPLES
        : (input.maxEvalExamples ?? null);
    check(
      maxEval === null || (Number.isInteger(maxEval) && maxEval >= 1),
      'maxEvalExamples',
      'expected a whole number of validation examples ≥ 1, or null for all of them',
    );
    const space = parseSpace(input.space, context.family);
    if (pruner === 'pbt') {
      const moving = pbtConflicts(input.space);
      const why = 'change the adapter or the batches and cannot move mid-trial; fix them';
      check(moving.length === 0, 'pbt', `${moving.join(', ')} ${why}`);
    }
    const fixed = resolveFixed(input.space, input.fixed ?? {}, context);
    const problem = spaceRuleProblem(space, fixed, { family: context.family }, context.model);
    if (problem) throw spaceError(problem.param, problem.reason);
    if (sampler === 'grid') checkGridSize(space);
    const constraints = input.constraints ?? [];
    check(Array.isArray(constraints), 'constraints', 'expected a list of { metric, op, bound }');
    for (const c of constraints) {
      const problem = constraintProblem(c);
      check(problem === undefined, 'constraints', problem!);
    }
    const warm = input.warmStart;
    check(
      warm === undefined ||
        (typeof warm === 'object' &&
          warm !== null &&
          typeof warm.study === 'string' &&
          /^[0-9a-f]{64}$/.test(String(warm.source))),
      'warmStart',
      'expected { study: the source folder, source: the SHA-256 of its log in hex }',
    );
    const columns = input.columns ? mappedColumns(input.columns) : null;
    const spec: StudyPlanSpec = {
      format: PLAN_FORMAT,
      space: space.spec,
      fixed,
      sampler,
      pruner,
      objective,
      ...(objectives
        ? { objectives: objectives.map(({ metric, direction }) => ({ metric, direction })) }
        : {}),
      trials: input.trials,
      timeoutSeconds: timeout,
      recompute: input.recompute ?? false,
      valRatio,
      maxEvalExamples: maxEval,
      ...(constraints.length > 0
        ? { constraints: constraints.map(({ metric, op, bound }) => ({ metric, op, bound })) }
        : {}),
      ...(warm ? { warmStart: { study: warm.study, source: warm.source } } : {}),
      ...(columns !== null ? { columns } : {}),
    };
    return new StudyPlan(spec, context.family, space);
  }

  /** The same plan, recording a warm start from `warmStart` (or none, for null). */
  withWarmStart(warmStart: PlanWarmStart | null): StudyPlan {
    const spec = this.toJSON();
    delete spec.warmStart;
    if (warmStart) spec.warmStart = { study: warmStart.study, source: warmStart.source };
    return new StudyPlan(spec, this.family, this.space);
  }

  /** Steps between evaluations: the pruning rung and PBT's interval. */
  get evalEvery(): number {
    return this.spec.fixed.evalEvery!;
  }

  /** The validation examples every evaluation of the study uses: the first maxEvalExamples of them. */
  evalExamples<T>(validation: readonly T[]): readonly T[] {
    const cap = this.spec.maxEvalExamples ?? null;
    return cap === null ? validation : validation.slice(0, cap);
  }

  /** The study's seed, which every trial shares (so trials differ only by their hyperparameters). */
  get seed(): number {
    return this.spec.fixed.seed!;
  }

  get direction(): 'minimize' | 'maximize' {
    return this.spec.objectives?.[0].direction ?? OBJECTIVES[this.spec.objective].direction;
  }

  /** The study's objectives: the plan's list, or its one objective in its own direction. */
  get objectives(): PlanObjective[] {
    return (
      structuredClone(this.spec.objectives) ?? [{ metric: this.spec.objective, direction: this.direction }]
    );
  }

  get isMultiObjective(): boolean {
    return this.spec.objectives !== undefined;
  }

  /** What the study prunes with; PBT is no pruner (the coordinator adds it on top). */
  prunerSpec(): PrunerSpec {
    const rung = this.evalEvery;
    switch (this.spec.pruner) {
      case 'median':
        return { type: 'median', nStartupTrials: 1, nWarmupSteps: rung };
      case 'asha':
        return { type: 'asha', minResource: rung };
      default:
        return 'none';
    }
  }

  /** Population-based training every evaluation, when the plan asks for it. */
  pbt(): PbtOptions | undefined {
    return this.spec.pruner === 'pbt' ? { interval: this.evalEvery } : undefined;
  }

  /** createStudy's options; the plan itself goes into the log's first event. */
  studyOptions(): StudyOptions {
    return {
      space: this.spec.space,
      sampler: this.spec.sampler,
      pruner: this.prunerSpec(),
      direction: this.direction,
      ...(this.spec.objectives ? { directions: this.spec.objectives.map((o) => o.direction) } : {}),
      seed: this.seed,
      plan: this.toJSON() as unknown as NonNullable<StudyOptions['plan']>,
    };
  }

  /** One trial's full configuration: its params over the fixed values. Throws naming a bad parameter. */
  trialConfig(params: Params): TrialConfig {
    return trialConfigFromParams(params, this.spec.fixed, { family: this.family });
  }

  /** What the Trainer of one trial takes. */
  trainerOptions(params: Params, classes?: readonly string[] | null): TrainerOptions {
    return trainerOptionsOf(this.trialConfig(params), {
      ...(classes ? { classes } : {}),
      ...(this.spec.recompute ? { recompute: true } : {}),
    });
  }

  toJSON(): StudyPlanSpec {
    return structuredClone(this.spec);
  }
}

/** A multi-objective plan: a valid list, `objective` its first if given, and no pruner or PBT. */
function checkObjectives(
  objectives: readonly PlanObjective[],
  objective: Objective | undefined,
  pruner: PrunerChoice,
): void {
  const problem = objectivesProblem(objectives);
  check(problem === undefined, 'objectives', problem!);
  check(
    objective === undefined || objective === objectives[0].metric,
    'objectives',
    `the first objective (${objectives[0].metric}) is the study's objective, not ${objective}`,
  );
  // Pruning and PBT rank trials by one value; a trial poor on the first objective may be on the front.
  check(
    pruner === 'none',
    'pruner',
    `a multi-objective study neither prunes nor runs PBT (they rank trials by one value, and a trial ` +
      `poor on the first objective may be on the Pareto front); use none`,
  );
}

/**
 * The space spec validated as a space (types, bounds, steps, conditions, names a trial can set). Throws a
 * PlanError naming the parameter (field 'space', `param` set).
 */
function parseSpace(spec: SpaceSpec, family: ModelFamily): SearchSpace {
  try {
    checkSpaceNames(spec);
    return createSpace(canonicalSpace(spec, family));
  } catch (e) {
    if (e instanceof PlanError) throw e;
    if (e instanceof SearchSpaceError) throw spaceError(e.param, e.reason);
    throw new PlanError('space', (e as Error).message);
  }
}

/** The grid sampler enumerates its grid at the first trial: too large a grid is refused here instead. */
function checkGridSize(space: SearchSpace): void {
  const size = gridSize(space, {}, GRID_MAX_SIZE);
  const why = `grid: the grid has more than ${GRID_MAX_SIZE} points; search fewer parameters or choices, or pick another sampler`;
  check(size <= GRID_MAX_SIZE, 'sampler', why);
}

/**
 * Checks a search space before anything is written (what `tune --space` reads, or a form's rows): as a space,
 * and every value it can take against the trial-config rules at the default fixed values (or `fixed`, raw, as
 * PlanInput takes them) and the model's bounds when `context.model` is given. Throws a PlanError naming the
 * parameter; StudyPlan.create does the same checks.
 */
export function checkSpace(
  spec: SpaceSpec,
  context: PlanContext,
  fixed: Readonly<Record<string, unknown>> = {},
): SearchSpace {
  const space = parseSpace(spec, context.family);
  // The training set size only sets the evaluation interval of epoch-long trials, which this does not check.
  const resolved = resolveFixed(spec, fixed, { ...context, trainExamples: context.trainExamples ?? 1 });
  const problem = spaceRuleProblem(space, resolved, { family: context.family }, context.model);
  if (problem) throw spaceError(problem.param, problem.reason);
  return space;
}

/**
 * The space as one spelling: `log: false` left out, target choices spelled for the family ('attention' →
 * 'q_proj,v_proj'), so a form and a file describing the same search give the same space. The order of the
 * parameters is kept: the samplers draw in it, so it is part of the description.
 */
function canonicalSpace(space: SpaceSpec, family: ModelFamily): SpaceSpec {
  const out: SpaceSpec = {};
  for (const [name, spec] of Object.entries(space)) {
    const dist = { ...spec };
    if ((dist.type === 'float' || dist.type === 'int') && dist.log === false) delete dist.log;
    if (dist.type === 'categorical' && fieldOfParam(name) === 'targets') {
      dist.choices = dist.choices.map((choice) => {
        try {
          const targets = trialConfigFromParams({ [name]: choice }, {}, { family }).targets;
          return targets === 'all-linear' ? targets : targets.join(',');
        } catch (e) {
          if (e instanceof TrialConfigError) throw new PlanError(name, e.reason);
          throw e;
        }
      });
    }
    out[name] = dist;
  }
  return out;
}

/** The fields the space sets (a derived lora_alpha sets alpha). */
function searchedFields(space: SpaceSpec): Set<TrialField> {
  const out = new Set<TrialField>();
  for (const name of Object.keys(space)) {
    const field = fieldOfParam(name);
    if (field !== undefined) out.add(field);
  }
  return out;
}

/**
 * Every field the space does not set, at its resolved value; evalEvery ceil(steps / 4) when not given. alpha
 * stays out while r is searched and nothing sets alpha: it follows each trial's r (2·r).
 */
function resolveFixed(
  space: SpaceSpec,
  raw: Readonly<Record<string, unknown>>,
  context: PlanContext,
): Partial<TrialConfig> {
  const searched = searchedFields(space);
  const given: Partial<Record<TrialField, unknown>> = {};
  for (const [name, value] of Object.entries(raw)) {
    if (value === undefined) continue;
    const field = fieldOfParam(name);
    check(field !== undefined, name, 'not a hyperparameter tunelab knows');
    check(!searched.has(field!), name, 'is both fixed and searched');
    given[field!] = value;
  }
  check(!searched.has('evalEvery'), 'evalEvery', 'the evaluation interval cannot be searched');
  let config: TrialConfig;
  try {
    config = trialConfigFromParams({}, given, { family: context.family });
  } catch (e) {
    if (e instanceof TrialConfigError) throw new PlanError(e.param, e.reason);
    throw e;
  }
  const badTargets = searched.has('targets') ? undefined : targetsProblem(config.targets, context.family);
  check(badTargets === undefined, 'targets', badTargets!);
  for (const field of ['seq', 'r'] as const) {
    const beyond = searched.has(field) ? undefined : modelBoundProblem(field, config[field], context.model);
    check(beyond === undefined, field, beyond!);
  }
  if (given.evalEvery === undefined)
    config.evalEvery = Math.max(1, Math.ceil(trialSteps(config, context) / 4));
  const fixed: Record<string, unknown> = {};
  for (const field of TRIAL_FIELDS) {
    if (searched.has(field)) continue;
    if (field === 'alpha' && given.alpha === undefined && searched.has('r')) continue;
    fixed[field] = config[field];
  }
  return fixed as Partial<TrialConfig>;
}

/** Optimizer steps of a trial at the fixed values (epochs over the training set when given in epochs). */
function trialSteps(config: TrialConfig, context: PlanContext): number {
  if (config.steps !== null) return config.steps;
  check(
    context.trainExamples !== undefined,
    'epochs',
    'a trial given in epochs needs the training set size for its evaluation interval',
  );
  return Math.ceil((config.epochs! * context.trainExamples!) / (config.batch * config.accum));
}
