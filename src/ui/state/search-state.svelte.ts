// The Search step: the settings being edited, and their validation (searchProblems: the engine's check of the
// recipe, with the loaded model's bounds) shown next to the row at fault.
import {
  defaultSettings,
  gridSummary,
  hasProblems,
  PRESETS,
  searchProblems,
  type FormModel,
  type PresetName,
  type SearchSettings,
} from '../lib/search-config.ts';

export class SearchState {
  settings = $state<SearchSettings>(defaultSettings());
  /** The loaded model's family and bounds (seq ≤ its positions, r ≤ its hidden size); null before one loads. */
  model = $state.raw<FormModel | null>(null);

  /** Messages by row and by setting, plus one for the whole form. */
  problems = $derived(searchProblems(this.settings, this.model));

  valid = $derived(!hasProblems(this.problems));

  /** The grid sampler's points, shown while it is chosen (a continuous range becomes a few values). */
  grid = $derived(
    this.settings.sampler === 'grid' && this.valid ? gridSummary(this.settings, this.model) : null,
  );

  get settingsByName(): Record<string, true> {
    return Object.fromEntries(this.settings.rows.map((r) => [r.name, true]));
  }

  applyPreset(name: PresetName): void {
    this.settings.rows = PRESETS[name].rows();
  }
}
