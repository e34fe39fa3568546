// The page's multi-objective pieces without a browser: the Search form's second objective as the plan's
// objectives (and back), the form's messages about it, the Pareto chart's option, and the exports of a front
// trial (best-config.json's objectives, trials.csv's values columns).
import { describe, expect, it } from 'vitest';
import { createStudy } from '../../src/engine/search/index.ts';
import { exportBundle } from '../../src/engine/export/bundle.ts';
import { trialsCsv } from '../../src/engine/export/trials-csv.ts';
import { planExportContext } from '../../src/engine/export/context.ts';
import { StudyPlan } from '../../src/engine/tune/plan.ts';
import {
  defaultSettings,
  planInput,
  searchProblems,
  settingsFromPlan,
} from '../../src/ui/lib/search-config.ts';
import { clickedFrontTrial, paretoChart } from '../../src/ui/lib/pareto-chart.ts';

const palette = { text: 't', muted: 'm', accent: 'a', grid: 'g', pruned: 'p', best: 'b' };

describe('the Search form with a second objective', () => {
  const settings = { ...defaultSettings(), pruner: 'none' as const, objective2: 'peak_memory' as const };

  it('becomes the plan objectives (each in its name’s direction) and reads back from a plan', () => {
    const input = planInput(settings);
    expect(input.objectives).toEqual([
      { metric: 'val_loss', direction: 'minimize' },
      { metric: 'peak_memory', direction: 'minimize' },
    ]);
    const plan = StudyPlan.create(input, { family: 'llama', trainExamples: 40 });
    expect(settingsFromPlan(plan.toJSON()).objective2).toBe('peak_memory');
    expect(planInput(defaultSettings()).objectives).toBeUndefined();
    expect(
      settingsFromPlan(StudyPlan.create(planInput(defaultSettings()), { family: 'llama' }).toJSON())
        .objective2,
    ).toBe('');
  });

  it('says why early stopping must be none, beside it, and a repeated objective beside the second', () => {
    const withPruner = searchProblems({ ...settings, pruner: 'median' });
    expect(withPruner.bySetting.pruner).toMatch(/a multi-objective study neither prunes nor runs PBT/);
    expect(withPruner.general).toBe('');
    const twice = searchProblems({ ...settings, objective2: 'val_loss' });
    expect(twice.bySetting.objective2).toMatch(/val_loss is given twice/);
    expect(searchProblems(settings).bySetting).toEqual({});
  });
});

function frontStudy() {
  const plan = StudyPlan.create(
    { ...planInput({ ...defaultSettings(), pruner: 'none', objective2: 'step_time' }), constraints: [] },
    { family: 'llama', trainExamples: 40 },
  );
  const study = createStudy(plan.studyOptions());
  const tell = (values: number[], constraints?: number[]) =>
    study.tell(study.ask(), { state: 'complete', values, ...(constraints ? { constraints } : {}) });
  tell([2, 0.5]); // 0: front
  tell([1, 0.9]); // 1: front
  tell([3, 1]); // 2: dominated
  tell([0.5, 0.1], [1]); // 3: infeasible
  return { plan, study };
}

describe('the Pareto chart', () => {
  it('draws every trial, the front joined in order of the first objective, the chosen one marked', () => {
    const { study } = frontStudy();
    const option = paretoChart(
      {
        trials: study.trials,
        front: study.bestTrials,
        picked: 0,
        objectives: [
          { metric: 'val_loss', direction: 'minimize' },
          { metric: 'step_time', direction: 'minimize' },
        ],
      },
      palette,
    ) as {
      xAxis: { name: string };
      yAxis: { name: string };
      series: { name: string; data: number[][] }[];
    };
    expect(option.xAxis.name).toBe('validation loss, lower is better');
    expect(option.yAxis.name).toBe('time per optimizer step (s), lower is better');
    const byName = Object.fromEntries(option.series.map((s) => [s.name, s.data]));
    expect(byName['Pareto front']).toEqual([
      [1, 0.9, 1],
      [2, 0.5, 0],
    ]);
    expect(byName['other trials']).toEqual([[3, 1, 2]]);
    expect(byName.infeasible).toEqual([[0.5, 0.1, 3]]);
    expect(byName['chosen for export']).toEqual([[2, 0.5, 0]]);
    // A click picks a front point's trial, nothing else.
    expect(clickedFrontTrial([1, 0.9, 1], study.bestTrials)).toBe(1);
    expect(clickedFrontTrial([3, 1, 2], study.bestTrials)).toBeNull();
    expect(clickedFrontTrial(undefined, study.bestTrials)).toBeNull();
  });
});

describe('the exports of a front trial', () => {
  it('best-config.json names the chosen trial with every objective; trials.csv has a values column each', () => {
    const { plan, study } = frontStudy();
    const trial = study.trial(1);
    const context = planExportContext(plan, {
      study,
      best: trial,
      model: { id: 'HuggingFaceTB/SmolLM2-135M', revision: 'main', family: 'llama' },
      dataset: { fingerprint: 'f'.repeat(64), name: 'train.jsonl', format: 'text', examples: 40 },
      tunelabVersion: '0.1.0',
      date: '2026-11-30T00:00:00Z',
    });
    const file = exportBundle(context).find((f) => f.path === 'best-config.json')!;
    const config = JSON.parse(file.contents as string) as {
      trial: number;
      metrics: { value: number; objectives: { metric: string; value: number }[] };
    };
    expect(config.trial).toBe(1);
    expect(config.metrics.value).toBe(1);
    expect(config.metrics.objectives).toEqual([
      { metric: 'val_loss', direction: 'minimize', value: 1 },
      { metric: 'step_time', direction: 'minimize', value: 0.9 },
    ]);
    const csv = trialsCsv(study).split('\r\n');
    expect(csv[0]).toMatch(/^number,state,value,values_0,values_1,params_/);
    expect(csv[2]).toMatch(/^1,complete,1,1,0\.9,/);
  });
});
