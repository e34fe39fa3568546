// Public surface of the hyperparameter search engine.
export { createStudy, loadStudy, Study, studyOfHead, Trial } from './study.ts';
export type { LineageEntry, LoadError, LoadedStudy, StudyOptions, TellResult } from './study.ts';
export type {
  AskEvent,
  PbtEvent,
  ReportEvent,
  StudyEvent,
  StudyStartEvent,
  TellEvent,
  TransferEvent,
} from './events.ts';
export { LOG_VERSION } from './events.ts';
export { containsParams, createSpace, isActive, SearchSpaceError } from './space.ts';
export type { Choice, Condition, ParamSpec, Params, SearchSpace, SpaceSpec } from './space.ts';
export type {
  Direction,
  PruneContext,
  Pruner,
  SampleContext,
  Sampler,
  Suggestion,
  TrialRecord,
  TrialState,
} from './types.ts';
export {
  SAMPLER_NAMES,
  createAutoSampler,
  createGpSampler,
  createGridSampler,
  createRandomSampler,
  createSampler,
  createSobolSampler,
  createTpeSampler,
  fallbackNote,
} from './samplers/index.ts';
export type {
  GpOptions,
  GridOptions,
  SamplerName,
  SamplerSpec,
  SobolOptions,
  TpeOptions,
} from './samplers/index.ts';
export { createAshaPruner, createMedianPruner, createNopPruner, createPruner } from './pruners/index.ts';
export type { AshaOptions, MedianOptions, PrunerSpec } from './pruners/index.ts';
export { PbtScheduler, createPbt } from './pbt.ts';
export type { PbtDecision, PbtOptions } from './pbt.ts';
export { parameterImportance } from './importance.ts';
export type { ImportanceOptions } from './importance.ts';
export { ImportanceError, pedAnovaImportance, TOP_QUANTILE, topQuantileTrials } from './ped-anova.ts';
export type { PedAnovaOptions } from './ped-anova.ts';
export { constraintViolation, isFeasible, lossVector, trialValues } from './types.ts';
export {
  crowdingDistance,
  dominates,
  hypervolume,
  hypervolumeContributions,
  nonDominatedRanks,
  paretoFront,
  referencePoint,
} from './pareto.ts';
export { createMotpeSampler } from './samplers/motpe.ts';
export { createParegoSampler } from './samplers/parego.ts';
export { Rng } from '../rng.ts';
export { DEFAULT_REPLAY, WarmStartError, warmStartFrom } from './warm-start.ts';
export type { PriorObservation, WarmStartSeed } from './warm-start.ts';
