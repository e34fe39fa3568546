// The Search step: the settings being edited, and their validation — createSpace's errors (which name the
// parameter) shown next to that parameter's row.
import { PlanError } from '../../engine/tune/plan.ts';
import {
  defaultSettings,
  fixedProblems,
  PRESETS,
  rowName,
  spaceSpec,
  studyPlan,
  type HyperName,
  type PresetName,
  type SearchSettings,
} from '../lib/search-config.ts';

export class SearchState {
  settings = $state<SearchSettings>(defaultSettings());

  /** Per-parameter messages, plus one for the whole form. */
  problems = $derived.by(() => {
    const byParam: Partial<Record<HyperName, string>> = fixedProblems(this.settings.rows);
    let general = '';
    const s = this.settings;
    if (Object.keys(spaceSpec(s.rows)).length === 0) {
      general = 'Search at least one parameter: set one to a range or a list of choices.';
    } else if (Object.keys(byParam).length === 0) {
      // The engine's own check of the recipe (the same the CLI's flags go through).
      try {
        studyPlan(s, 'llama');
      } catch (e) {
        const message = (e as Error).message;
        // createSpace names a bad parameter in its message; the plan names a bad fixed value by its field.
        const named = /parameter '([\w]+)'/.exec(message)?.[1] ?? (e instanceof PlanError ? e.field : '');
        const row = rowName(named);
        if (row) byParam[row] = e instanceof PlanError && e.field !== 'space' ? e.reason : message;
        else if (e instanceof PlanError && e.field === 'pbt')
          general = `Population-based training: ${e.reason}, or pick another early-stopping rule.`;
        else general = e instanceof PlanError ? e.reason : message;
      }
    }
    const budget: [string, number, number, number][] = [
      ['Trials', s.trials, 1, 500],
      ['Steps per trial', s.stepsPerTrial, 1, 100000],
      ['Evaluate every', s.evalEvery, 0, 100000],
      ['Workers', s.workers, 1, 8],
      ['Sequence length', s.seq, 4, 8192],
    ];
    for (const [label, v, lo, hi] of budget)
      if (!Number.isInteger(v) || v < lo || v > hi)
        general ||= `${label}: a whole number from ${lo} to ${hi}.`;
    if (!(s.valRatio > 0 && s.valRatio < 1)) general ||= 'Validation share: a number between 0 and 1.';
    return { byParam, general };
  });

  valid = $derived(this.problems.general === '' && Object.keys(this.problems.byParam).length === 0);

  get settingsByName(): Record<string, true> {
    return Object.fromEntries(this.settings.rows.map((r) => [r.name, true]));
  }

  applyPreset(name: PresetName): void {
    this.settings.rows = PRESETS[name].rows();
  }
}
