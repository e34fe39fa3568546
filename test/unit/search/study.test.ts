import { describe, expect, it } from 'vitest';
import { createStudy, loadStudy } from '../../../src/engine/search/index.ts';
import type {
  Params,
  SamplerName,
  SpaceSpec,
  Study,
  StudyEvent,
  StudyOptions,
} from '../../../src/engine/search/index.ts';

const space: SpaceSpec = {
  x: { type: 'float', low: -5, high: 10 },
  lr: { type: 'float', low: 1e-5, high: 1e-2, log: true },
  n: { type: 'int', low: 1, high: 8 },
  r: { type: 'categorical', choices: [4, 8, 16] },
};
const f = (p: Params): number =>
  ((p.x as number) - 2) ** 2 + (Math.log10(p.lr as number) + 3) ** 2 + (p.n as number) * 0.1;

describe('study', () => {
  it('runs the ask → report → tell loop of the issue', () => {
    const study = createStudy({ space, sampler: 'gp', direction: 'minimize', seed: 1, pruner: 'median' });
    for (let i = 0; i < 12; i++) {
      const trial = study.ask();
      expect(trial.number).toBe(i);
      expect(Object.keys(trial.params).sort()).toEqual(['lr', 'n', 'r', 'x']);
      trial.report(1, f(trial.params));
      expect(typeof trial.shouldPrune()).toBe('boolean');
      if (i < 4) study.tell(trial, f(trial.params));
      else if (i === 10) study.tell(trial, { state: 'failed' });
      else study.tell(trial, { state: 'complete', value: f(trial.params) });
    }
    const best = study.bestTrial;
    expect(best?.state).toBe('complete');
    const values = study.trials.filter((t) => t.state === 'complete').map((t) => t.value as number);
    expect(best?.value).toBe(Math.min(...values));
    expect(study.trials[10].state).toBe('failed');
    expect(study.bestValue).toBe(best?.value);
  });

  it('picks the best by direction', () => {
    const study = createStudy({ space, sampler: 'random', direction: 'maximize' });
    [3, 9, 1].forEach((v) => study.tell(study.ask(), v));
    expect(study.bestTrial?.number).toBe(1);
  });

  it('treats a non-finite value as a failed trial and rejects misuse', () => {
    const study = createStudy({ space, sampler: 'random' });
    const t = study.ask();
    study.tell(t, NaN);
    expect(study.trials[0].state).toBe('failed');
    expect(() => study.tell(t, 1)).toThrow(/trial 0 is already failed/);
    expect(() => study.tell(5, 1)).toThrow(/no trial number 5/);
    const u = study.ask();
    u.report(3, 1);
    expect(() => u.report(2, 1)).toThrow(/step 2 .* not after its last step 3/);
    expect(() => u.report(-1, 1)).toThrow(/step/);
    expect(() => study.tell(u, { state: 'complete' } as never)).toThrow(/finite value/);
  });

  const bad: [string, unknown, RegExp][] = [
    ['direction', { space, direction: 'up' }, /direction must be 'minimize' or 'maximize'/],
    ['seed', { space, seed: 1.5 }, /seed must be a safe integer/],
    ['sampler', { space, sampler: 'cmaes' }, /sampler.*cmaes/],
    ['sampler option', { space, sampler: { type: 'tpe', nEiCandidates: 0 } }, /nEiCandidates/],
    ['gp option', { space, sampler: { type: 'gp', nStartupTrials: -1 } }, /nStartupTrials/],
    ['pruner', { space, pruner: 'hyperband' }, /pruner/],
    ['onEvent', { space, onEvent: 3 }, /onEvent must be a function/],
    ['space', { space: { x: { type: 'float', low: 2, high: 1 } } }, /'x'.*low < high/],
  ];
  for (const [what, options, message] of bad) {
    it(`validates ${what}`, () => {
      expect(() => createStudy(options as StudyOptions)).toThrow(message);
    });
  }

  it('streams every event to onEvent and as JSON lines', () => {
    const seen: StudyEvent[] = [];
    const study = createStudy({ space, sampler: 'tpe', seed: 3, onEvent: (e) => seen.push(e) });
    const t = study.ask();
    t.report(0, NaN);
    t.report(1, 0.5);
    study.tell(t, 0.25);
    expect(seen.map((e) => e.type)).toEqual(['study', 'ask', 'report', 'report', 'tell']);
    const lines = study
      .log()
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as StudyEvent);
    expect(lines).toEqual(seen);
    expect(lines[0]).toMatchObject({
      type: 'study',
      sampler: 'tpe',
      seed: 3,
      direction: 'minimize',
      version: 1,
    });
    expect(lines[2]).toEqual({ type: 'report', number: 0, step: 0, value: null });
    expect(lines[4]).toEqual({ type: 'tell', number: 0, state: 'complete', value: 0.25 });
  });
});

/** Drive a study with a fixed worker pattern: two trials in flight, reports, occasional prunes/fails. */
function drive(study: Study, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const t = study.ask();
    t.report(1, f(t.params) + 1);
    if (i % 7 === 5) study.tell(t, { state: 'pruned' });
    else if (i % 11 === 9) study.tell(t, { state: 'failed' });
    else study.tell(t, f(t.params));
  }
}

describe.each(['random', 'grid', 'sobol', 'tpe', 'gp', 'auto'] as SamplerName[])('resume (%s)', (sampler) => {
  it('continues exactly from the log text after an interruption', () => {
    const options: StudyOptions = { space, sampler, seed: 42, pruner: 'median' };
    const k = 13;
    const full = createStudy(options);
    drive(full, 0, k);
    const pendingFull = full.ask(); // a trial still running at the interruption
    const logAtInterrupt = full.log();

    const { study: resumed, errors } = loadStudy(logAtInterrupt);
    expect(errors).toEqual([]);
    expect(resumed.trials).toEqual(full.trials);
    expect(resumed.log()).toBe(logAtInterrupt);

    // Both studies go on the same way; every suggestion must match.
    for (const s of [full, resumed]) {
      drive(s, k + 1, k + 6);
      s.tell(pendingFull.number, 1.5);
    }
    expect(resumed.trials.map((t) => t.params)).toEqual(full.trials.map((t) => t.params));
    expect(resumed.log()).toBe(full.log());
  });
});

/** Four workers: keep 4 trials in flight, telling the oldest but one first so tells come out of order. */
function driveParallel(study: Study, asks: number): void {
  const inFlight = study.trials.filter((t) => t.state === 'running').map((t) => t.number);
  for (let i = 0; i < asks; i++) {
    while (inFlight.length < 4) inFlight.push(study.ask().number);
    const [done] = inFlight.splice(inFlight.length > 1 ? 1 : 0, 1);
    study.tell(done, f(study.trial(done).params));
  }
}

describe.each(['tpe', 'gp', 'auto'] as SamplerName[])('resume with 3 trials pending (%s)', (sampler) => {
  it('makes the same parallel-aware asks as the uninterrupted study', () => {
    const full = createStudy({ space, sampler, seed: 7 });
    driveParallel(full, 14);
    expect(full.trials.filter((t) => t.state === 'running')).toHaveLength(3);
    const { study: resumed, errors } = loadStudy(full.log());
    expect(errors).toEqual([]);
    for (const s of [full, resumed]) driveParallel(s, 6);
    expect(resumed.trials).toEqual(full.trials);
    expect(resumed.log()).toBe(full.log());
  });
});

describe('corrupt or truncated logs', () => {
  const make = (): string => {
    const study = createStudy({ space, sampler: 'tpe', seed: 8 });
    drive(study, 0, 6);
    return study.log();
  };

  it('loads every complete event of a truncated log and reports the partial line', () => {
    const text = make();
    const cut = text.slice(0, text.length - 15); // the last tell is cut mid-line
    const { study, errors } = loadStudy(cut);
    expect(errors).toHaveLength(1);
    expect(errors[0].line).toBe(cut.split('\n').length);
    expect(errors[0].reason).toMatch(/JSON/);
    expect(study.trials).toHaveLength(6);
    expect(study.trials[5].state).toBe('running'); // its tell was lost
    expect(study.trials.slice(0, 5).every((t) => t.state !== 'running')).toBe(true);
    // And the study goes on.
    study.tell(5, 2);
    expect(study.ask().number).toBe(6);
  });

  it('skips corrupt and inconsistent lines, keeping the rest', () => {
    const lines = make().trimEnd().split('\n');
    lines.splice(3, 1, '{"type":"report","number":0,"step":"x"'); // garbage in the middle
    lines.push('{"type":"tell","number":99,"state":"complete","value":1}'); // unknown trial
    lines.push('{"type":"warp"}');
    lines.push(JSON.stringify({ type: 'ask', number: 6, params: { x: 99 } })); // outside the space
    const { study, errors } = loadStudy(lines.join('\n'));
    expect(errors.map((e) => e.line)).toEqual([4, lines.length - 2, lines.length - 1, lines.length]);
    expect(errors[1].reason).toMatch(/no trial number 99/);
    expect(errors[2].reason).toMatch(/unknown event type "warp"/);
    expect(errors[3].reason).toMatch(/not in the space/);
    expect(study.trials).toHaveLength(6);
  });

  it('reports a deeply nested line as such, not as a stack overflow', () => {
    const lines = make().trimEnd().split('\n');
    lines.push(`{"type":"tell","number":5,"x":${'['.repeat(100000)}${']'.repeat(100000)}}`);
    const { errors } = loadStudy(lines.join('\n'));
    expect(errors).toEqual([{ line: lines.length, reason: 'study log: JSON nested deeper than 64 levels' }]);
  });

  it('accepts an array of events and rejects a log without its study header', () => {
    const study = createStudy({ space, sampler: 'sobol', seed: 1 });
    drive(study, 0, 3);
    expect(loadStudy(study.events).study.trials).toEqual(study.trials);
    expect(() => loadStudy(study.log().split('\n').slice(1).join('\n'))).toThrow(
      /line 1: first event is 'ask'/,
    );
    expect(() => loadStudy('')).toThrow(/empty/);
  });
});
