// A trial's trainer options: its sampled params over the values every trial shares, through the training-config
// vocabulary of src/engine/train/config.ts (search-space names such as lr, lora_alpha, batch_size; defaults of
// `tunelab train`).
import type { ModelFamily } from '../model/config.ts';
import type { SpaceSpec } from '../search/index.ts';
import {
  fieldOfParam,
  trainerOptionsOf,
  trialConfigFromParams,
  type TrialConfig,
  type TrialField,
} from '../train/config.ts';
import type { Params } from '../search/index.ts';
import type { TrainerOptions } from '../train/trainer.ts';

/** Fields that shape the adapter or the batches: PBT cannot move a running trial across them. */
export const PBT_FIXED_FIELDS: readonly TrialField[] = [
  'r',
  'targets',
  'rslora',
  'batch',
  'accum',
  'seq',
  'optimizer',
];

export function trialTrainerOptions(
  params: Params,
  fixed: Partial<TrialConfig>,
  family: ModelFamily,
  classes?: readonly string[],
): TrainerOptions {
  return trainerOptionsOf(trialConfigFromParams(params, fixed, { family }), classes ? { classes } : {});
}

/** Refuses a space naming something a trial cannot set, naming the parameter. */
export function checkSpaceNames(space: SpaceSpec): void {
  for (const name of Object.keys(space)) {
    if (space[name].type !== 'derived' && fieldOfParam(name) === undefined)
      throw new RangeError(`search space: '${name}' is not a hyperparameter tunelab knows`);
  }
}

/** Searched parameters that PBT would have to move mid-trial but cannot. */
export function pbtConflicts(space: SpaceSpec): string[] {
  return Object.keys(space).filter((name) => {
    const field = fieldOfParam(name);
    return field !== undefined && PBT_FIXED_FIELDS.includes(field);
  });
}
