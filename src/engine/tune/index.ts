// Hyperparameter search over trial workers: the coordinator loop, the worker-side runner, their protocol.
export { optimize, PAUSE } from './coordinator.ts';
export type {
  BestTrial,
  CheckpointStore,
  OptimizeOptions,
  OptimizeResult,
  TrialResult,
  TuneListener,
} from './coordinator.ts';
export { InProcessSlots } from './in-process.ts';
export {
  checkConstraints,
  CONSTRAINT_METRICS,
  constraintValues,
  formatConstraint,
  parseConstraint,
} from './constraints.ts';
export type { ConstraintMetric, PlanConstraint, TrialMeasures } from './constraints.ts';
export { checkObjective, metricsOfValue, objectiveValue, OBJECTIVES } from './objective.ts';
export type { Objective } from './objective.ts';
export {
  formatObjectives,
  MAX_OBJECTIVES,
  OBJECTIVE_METRICS,
  objectivesProblem,
  objectiveValues,
  parseObjectives,
} from './objectives.ts';
export type { ObjectiveMetric, PlanObjective } from './objectives.ts';
export { checkSpaceNames, PBT_FIXED_FIELDS, pbtConflicts } from './params.ts';
export type * from './protocol.ts';
export { createTrialRunner } from './runner.ts';
export type { RunnerHost, TrialRunner } from './runner.ts';
export { defaultPoolSize } from './pool-size.ts';
export { DEFAULT_MAX_EVAL_EXAMPLES, PLAN_FORMAT, PlanError, PRUNER_CHOICES, StudyPlan } from './plan.ts';
export type { PlanContext, PlanInput, PlanWarmStart, PrunerChoice, StudyPlanSpec } from './plan.ts';
export type { ModelBounds } from './space-rules.ts';
export { preset, PRESET_NAMES } from './presets.ts';
export type { Preset, PresetName } from './presets.ts';
