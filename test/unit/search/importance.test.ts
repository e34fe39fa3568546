import { describe, expect, it } from 'vitest';
import { createStudy, parameterImportance } from '../../../src/engine/search/index.ts';
import type { Params } from '../../../src/engine/search/index.ts';

describe('fANOVA importance', () => {
  it('finds the one dominant parameter and sums to 1', () => {
    const study = createStudy({
      space: {
        lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
        dropout: { type: 'float', low: 0, high: 0.5 },
        r: { type: 'categorical', choices: [4, 8, 16, 32] },
        seedish: { type: 'int', low: 0, high: 100 },
      },
      sampler: 'random',
      seed: 3,
    });
    const f = (p: Params): number =>
      (Math.log10(p.lr as number) + 3) ** 2 + 0.05 * (p.dropout as number) + (p.r === 8 ? 0 : 0.02);
    for (let i = 0; i < 80; i++) {
      const t = study.ask();
      study.tell(t, f(t.params));
    }
    const imp = parameterImportance(study.space, study.trials, { seed: 1 });
    const total = Object.values(imp).reduce((a, b) => a + b, 0);
    expect(total).toBeCloseTo(1, 9);
    expect(imp.lr).toBeGreaterThan(0.8);
    for (const k of ['dropout', 'r', 'seedish']) expect(imp[k]).toBeLessThan(0.1);
  });

  it('ranks a categorical parameter first when it carries the signal', () => {
    const study = createStudy({
      space: {
        opt: { type: 'categorical', choices: ['adam', 'sgd', 'lion'] },
        x: { type: 'float', low: 0, high: 1 },
      },
      sampler: 'random',
      seed: 5,
    });
    for (let i = 0; i < 40; i++) {
      const t = study.ask();
      study.tell(t, (t.params.opt === 'sgd' ? 1 : 0) + 0.05 * (t.params.x as number));
    }
    const imp = parameterImportance(study.space, study.trials);
    expect(imp.opt).toBeGreaterThan(imp.x);
    expect(imp.opt).toBeGreaterThan(0.8);
  });

  it('needs two complete trials', () => {
    const study = createStudy({ space: { x: { type: 'float', low: 0, high: 1 } } });
    study.tell(study.ask(), 1);
    expect(() => parameterImportance(study.space, study.trials)).toThrow(/two complete trials/);
  });
});
