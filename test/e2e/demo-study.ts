// A finished study as the page writes it (the form's default recipe as its plan, a learning-rate and rank search),
// for e2e tests that need Results and Export to have something to show without running trials on SwiftShader.
import { createStudy } from '../../src/engine/search/index.ts';
import { Rng } from '../../src/engine/rng.ts';
import { StudyPlan } from '../../src/engine/tune/plan.ts';
import { defaultSettings, planInput } from '../../src/ui/lib/search-config.ts';
import { runEnded, runStarted, type TrialHistory } from '../../src/ui/lib/trial-history.ts';

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

/**
 * The runs a page would have recorded for `demoStudyLog`'s trials (the `history` study file, trial-history.ts): two
 * workers taking the trials in turn, 20–60 s each, trial 2 paused and resumed later on the other worker.
 */
export function demoStudyHistory(log: string, seed = 7): TrialHistory {
  const ended = new Map<number, 'complete' | 'pruned' | 'failed'>();
  for (const line of log.split('\n').filter(Boolean)) {
    const e = JSON.parse(line) as { type: string; number: number; state: 'complete' | 'pruned' | 'failed' };
    if (e.type === 'tell') ended.set(e.number, e.state);
  }
  const rng = new Rng(seed, 'demo-history');
  const free = [1_700_000_000_000, 1_700_000_004_000]; // each worker's next free moment (ms)
  let history: TrialHistory = {};
  for (const [number, state] of ended) {
    const slot = free[0] <= free[1] ? 0 : 1;
    const start = free[slot];
    const ms = 20_000 + 40_000 * rng.random();
    if (number === 2) {
      history = runStarted(history, number, { slot, at: start, fromStep: 0 });
      history = runEnded(history, number, { at: start + ms / 2, toStep: 20, ended: 'paused' });
      free[slot] = start + ms / 2;
      continue; // resumed after the others, below
    }
    history = runStarted(history, number, { slot, at: start, fromStep: 0 });
    history = runEnded(history, number, {
      at: start + ms,
      toStep: state === 'pruned' ? 20 : 40,
      ended: state,
    });
    free[slot] = start + ms + 500;
  }
  const at = Math.max(...free) + 30_000;
  history = runStarted(history, 2, { slot: 1, at, fromStep: 20 });
  return runEnded(history, 2, { at: at + 15_000, toStep: 40, ended: ended.get(2) ?? 'complete' });
}
