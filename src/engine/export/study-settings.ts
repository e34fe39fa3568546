// How the study searched, as every export states it: read from the study's plan (sampler, early stopping or
// PBT, objective and its direction), with the study's own specs for the details (the median pruner's warm-up,
// ASHA's rungs). A study without a plan (an old log) falls back to what the study itself records.
import { OBJECTIVES, type Objective } from '../tune/objective.ts';
import type { PrunerChoice, StudyPlanSpec } from '../tune/plan.ts';
import type { PrunerSpec } from '../search/pruners/index.ts';
import type { SamplerName } from '../search/samplers/index.ts';
import type { Study } from '../search/study.ts';
import type { Direction } from '../search/types.ts';

export interface StudySettings {
  sampler: SamplerName;
  /** Early stopping ('none', 'median', 'asha') or 'pbt'. */
  pruner: PrunerChoice;
  /** The pruner the study ran, with its options, as an object ({ type: 'none' } under PBT). */
  prunerSpec: Exclude<PrunerSpec, string>;
  /** PBT's exploit/explore interval in steps; null without PBT. */
  pbtInterval: number | null;
  objective: Objective;
  direction: Direction;
}

export class ExportSettingsError extends Error {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {
    super(`export: ${field}: ${reason}`);
    this.name = 'ExportSettingsError';
  }
}

const asObject = (spec: PrunerSpec): Exclude<PrunerSpec, string> =>
  typeof spec === 'string' ? ({ type: spec } as Exclude<PrunerSpec, string>) : spec;

/** The study's search settings: the plan's when it has one, else the study's (and `objective`, if given). */
export function studySettings(
  study: Study,
  plan: StudyPlanSpec | undefined,
  objective?: string,
): StudySettings {
  const samplerSpec = study.samplerSpec;
  const studySampler = typeof samplerSpec === 'string' ? samplerSpec : samplerSpec.type;
  const prunerSpec = asObject(study.prunerSpec);
  if (plan === undefined) {
    const name = (objective ?? 'val_loss') as Objective;
    if (!(name in OBJECTIVES))
      throw new ExportSettingsError(
        'objective',
        `expected one of ${Object.keys(OBJECTIVES).join(', ')}, got '${name}'`,
      );
    return {
      sampler: studySampler,
      pruner: prunerSpec.type,
      prunerSpec,
      pbtInterval: null,
      objective: name,
      direction: study.direction,
    };
  }
  const direction = OBJECTIVES[plan.objective].direction;
  // The study was created from this plan: a disagreement means the two were mixed up, and an export would lie.
  if (direction !== study.direction)
    throw new ExportSettingsError(
      'direction',
      `the plan ${direction}s ${plan.objective}, the study ${study.direction}s`,
    );
  if (plan.sampler !== studySampler)
    throw new ExportSettingsError('sampler', `the plan says ${plan.sampler}, the study ran ${studySampler}`);
  const expectedPruner = plan.pruner === 'pbt' ? 'none' : plan.pruner;
  if (prunerSpec.type !== expectedPruner)
    throw new ExportSettingsError('pruner', `the plan says ${plan.pruner}, the study ran ${prunerSpec.type}`);
  return {
    sampler: plan.sampler,
    pruner: plan.pruner,
    prunerSpec,
    pbtInterval: plan.pruner === 'pbt' ? (plan.fixed.evalEvery ?? null) : null,
    objective: plan.objective,
    direction,
  };
}
