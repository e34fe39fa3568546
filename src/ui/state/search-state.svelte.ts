// The Search step: the settings being edited, and their validation — createSpace's errors (which name the
// parameter) shown next to that parameter's row.
import { createSpace, createStudy } from '../../engine/search/index.ts';
import { pbtConflicts } from '../../engine/tune/params.ts';
import {
  defaultSettings,
  fixedProblems,
  OBJECTIVES,
  PRESETS,
  prunerSpec,
  spaceSpec,
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
    const spec = spaceSpec(this.settings.rows);
    if (Object.keys(spec).length === 0) {
      general = 'Search at least one parameter: set one to a range or a list of choices.';
    } else {
      try {
        createSpace(spec);
        createStudy({
          space: spec,
          sampler: this.settings.sampler,
          pruner: prunerSpec(this.settings.pruner, this.settings.stepsPerTrial),
          direction: OBJECTIVES[this.settings.objective].direction,
        });
      } catch (e) {
        const message = (e as Error).message;
        const named = /parameter '([\w]+)'/.exec(message);
        if (named && named[1] in this.settingsByName) {
          byParam[named[1] as HyperName] = message.replace(/^search space: parameter '[\w]+': /, '');
        } else general = message;
      }
    }
    const s = this.settings;
    if (s.pruner === 'pbt') {
      const fixedOnly = pbtConflicts(spec);
      if (fixedOnly.length > 0)
        general ||=
          `Population-based training changes parameters mid-trial, which ${fixedOnly.join(', ')} cannot do ` +
          '(they shape the adapter or the batches): fix them, or pick another early-stopping rule.';
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
