// A finished study as the page writes it (the form's default recipe as its plan, a learning-rate and rank search),
// for e2e tests that need Results and Export to have something to show without running trials on SwiftShader.
import { createStudy } from '../../src/engine/search/index.ts';
import { Rng } from '../../src/engine/rng.ts';
import { StudyPlan } from '../../src/engine/tune/plan.ts';
import { defaultSettings, planInput } from '../../src/ui/lib/search-config.ts';

/** `trials` trials, each evaluated at a few steps and then complete (about one in five pruned), as JSON lines. */
export function demoStudyLog(trials = 12, seed = 7): string {
  const settings = { ...defaultSettings(), trials, stepsPerTrial: 40, evalEvery: 10 };
  const plan = StudyPlan.create(planInput(settings), { family: 'llama' });
  const study = createStudy(plan.studyOptions());
  const rng = new Rng(seed, 'demo-study');
  for (let n = 0; n < trials; n++) {
    const trial = study.ask();
    const lr = trial.params.lr as number;
    // Lower loss near lr = 1e-2, noisy, falling with the steps.
    const base = 1.2 + Math.abs(Math.log10(lr) + 2) + 0.3 * rng.random();
    let value = base;
    for (let step = 10; step <= 40; step += 10) {
      value = base * (1 - step / 100);
      trial.report(step, value);
    }
    study.tell(trial, rng.random() < 0.2 ? { state: 'pruned' } : { state: 'complete', value });
  }
  return study.log();
}
