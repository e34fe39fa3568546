// Which search-space names a trial can set (the training-config vocabulary of src/engine/train/config.ts), and
// which of them population-based training cannot move mid-trial. StudyPlan checks a space with both.
import { SearchSpaceError, type SpaceSpec } from '../search/space.ts';
import { fieldOfParam, type TrialField } from '../train/config.ts';

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

/** Refuses a space naming something a trial cannot set, naming the parameter. */
export function checkSpaceNames(space: SpaceSpec): void {
  for (const name of Object.keys(space)) {
    if (space[name].type !== 'derived' && fieldOfParam(name) === undefined)
      throw new SearchSpaceError(name, 'is not a hyperparameter tunelab knows');
  }
}

/** Searched parameters that PBT would have to move mid-trial but cannot. */
export function pbtConflicts(space: SpaceSpec): string[] {
  return Object.keys(space).filter((name) => {
    const field = fieldOfParam(name);
    return field !== undefined && PBT_FIXED_FIELDS.includes(field);
  });
}
