import { describe, expect, it } from 'vitest';
import { importanceLines } from '../../../src/cli/tune-importance.ts';
import { createStudy } from '../../../src/engine/search/index.ts';
import type { Params, SpaceSpec, Study } from '../../../src/engine/search/index.ts';

const spec: SpaceSpec = {
  lr: { type: 'float', low: 1e-5, high: 1e-1, log: true },
  lora_dropout: { type: 'float', low: 0, high: 0.1 },
  r: { type: 'categorical', choices: [4, 8, 16] },
};
/**
 * lr sets the loss far from 1e-3 and is flat within 1.5 decades of it, where r = 16 alone sets the best trials
 * apart (they tie: the top set is all of them).
 */
const loss = (p: Params): number => {
  const off = Math.abs(Math.log10(p.lr as number) + 3);
  return off < 1.5 ? (p.r === 16 ? 0 : 1) : 1 + off;
};

function studyOf(trials: number, direction: 'minimize' | 'maximize' = 'minimize'): Study {
  const study = createStudy({ space: spec, sampler: 'random', seed: 5, direction });
  for (let i = 0; i < trials; i++) {
    const t = study.ask();
    study.tell(t, (direction === 'minimize' ? 1 : -1) * loss(t.params));
  }
  return study;
}

const parse = (line: string): string[] =>
  line
    .split(': ')[1]
    .split(', ')
    .map((e) => e.split(' ')[0]);

describe('tune summary: parameter importance', () => {
  it('ranks by fANOVA over the whole space and by PED-ANOVA over the top 10 %', () => {
    const [global, local] = importanceLines(studyOf(120));
    expect(global).toMatch(/^importance, whole space \(fANOVA\): \w+ \d\.\d\d, \w+ \d\.\d\d, \w+ \d\.\d\d$/);
    expect(local).toMatch(/^importance, top 10 % \(PED-ANOVA\): \w+ \d\.\d\d, \w+ \d\.\d\d, \w+ \d\.\d\d$/);
    expect(parse(global)[0]).toBe('lr');
    expect(parse(local)[0]).toBe('r');
    expect(parse(local).at(-1)).toBe('lora_dropout');
  });

  it('reads the study direction: a maximised objective gives the same ranking', () => {
    expect(importanceLines(studyOf(120, 'maximize'))).toEqual(importanceLines(studyOf(120)));
  });

  it('says why there is no ranking yet instead of failing the command', () => {
    expect(importanceLines(studyOf(2))).toEqual([
      expect.stringMatching(/^importance, whole space \(fANOVA\): \w+ \d\.\d\d/),
      'importance, top 10 % (PED-ANOVA): none (need at least 3 complete trials (got 2))',
    ]);
    expect(importanceLines(studyOf(1))).toEqual([
      'importance, whole space (fANOVA): none (need at least two complete trials)',
      'importance, top 10 % (PED-ANOVA): none (need at least 3 complete trials (got 1))',
    ]);
  });
});
