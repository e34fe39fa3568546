import { describe, expect, it } from 'vitest';
import { createStudy } from '../../../src/engine/search/index.ts';
import type { Direction, PrunerSpec } from '../../../src/engine/search/index.ts';

const space = { q: { type: 'float', low: 0, high: 1 } } as const;

/**
 * Learning curves: trial i's loss at step s is `level_i + 1/(s+1)`. The good trial has the lowest level,
 * the bad one the highest. Returns the step at which each trial stopped (pruned) or its final step.
 */
function simulate(pruner: PrunerSpec, levels: number[], steps: number, direction: Direction = 'minimize') {
  const study = createStudy({ space, sampler: 'random', pruner, direction, seed: 1 });
  const sign = direction === 'minimize' ? 1 : -1;
  const outcome: { pruned: boolean; at: number }[] = [];
  for (const level of levels) {
    const t = study.ask();
    let pruned = false;
    let s = 1;
    for (; s <= steps; s++) {
      t.report(s, sign * (level + 1 / (s + 1)));
      if (t.shouldPrune()) {
        pruned = true;
        break;
      }
    }
    study.tell(t, pruned ? { state: 'pruned' } : sign * (level + 1 / (steps + 1)));
    outcome.push({ pruned, at: Math.min(s, steps) });
  }
  return { study, outcome };
}

describe.each(['minimize', 'maximize'] as const)('median pruner (%s)', (direction) => {
  it('prunes the bad trial and keeps the good one', () => {
    const levels = [0.5, 0.4, 0.6, 0.45, 0.55, /* bad */ 2.0, /* good */ 0.1];
    const { outcome } = simulate(
      { type: 'median', nStartupTrials: 5, nWarmupSteps: 2 },
      levels,
      10,
      direction,
    );
    expect(outcome.slice(0, 5).every((o) => !o.pruned)).toBe(true); // start-up trials never pruned
    expect(outcome[5]).toEqual({ pruned: true, at: 2 }); // first step after warm-up
    expect(outcome[6].pruned).toBe(false);
  });

  it('checks only at the first report of each interval', () => {
    const { study } = simulate(
      { type: 'median', nStartupTrials: 5, intervalSteps: 4 },
      [0.5, 0.4, 0.6, 0.45, 0.55],
      10,
      direction,
    );
    const sign = direction === 'minimize' ? 1 : -1;
    // Others' median is 1.0, 0.83, 0.75, 0.7 at steps 1–4; this trial (0.9 then 0.85) falls behind from
    // step 2, but checks happen only at steps 1, 4, 8.
    const t = study.ask();
    const stoppedAt = [1, 2, 3, 4, 5].find((s) => {
      t.report(s, sign * (s === 1 ? 0.9 : 0.85));
      return t.shouldPrune();
    });
    expect(stoppedAt).toBe(4);
  });
});

describe.each(['minimize', 'maximize'] as const)('ASHA pruner (%s)', (direction) => {
  it('prunes the bad trial at the first rung and promotes the good one through every rung', () => {
    const levels = [0.5, 0.3, 0.6, 0.4, /* bad */ 2.0, /* good */ 0.05];
    const { outcome } = simulate({ type: 'asha', minResource: 1, reductionFactor: 2 }, levels, 16, direction);
    expect(outcome[4]).toEqual({ pruned: true, at: 1 });
    expect(outcome[5]).toEqual({ pruned: false, at: 16 });
    // The first trial is alone at every rung and runs to the end.
    expect(outcome[0].pruned).toBe(false);
  });

  it('keeps only about the top 1/η at a rung', () => {
    const levels = Array.from({ length: 12 }, (_, i) => ((i * 7) % 12) / 12);
    const { outcome } = simulate({ type: 'asha', minResource: 2, reductionFactor: 3 }, levels, 2, direction);
    const survivors = outcome.filter((o) => !o.pruned).length;
    expect(survivors).toBeGreaterThan(1);
    expect(survivors).toBeLessThan(8);
  });
});

describe('pruner options', () => {
  it('are validated with messages naming the argument', () => {
    expect(() => createStudy({ space, pruner: { type: 'median', intervalSteps: 0 } })).toThrow(
      /intervalSteps/,
    );
    expect(() => createStudy({ space, pruner: { type: 'asha', reductionFactor: 1 } })).toThrow(
      /reductionFactor/,
    );
    expect(() => createStudy({ space, pruner: 'hyperband' as PrunerSpec })).toThrow(/pruner/);
  });

  it('never prunes with the default (none)', () => {
    const { outcome } = simulate('none', [0.1, 5, 9], 5);
    expect(outcome.every((o) => !o.pruned)).toBe(true);
  });
});
