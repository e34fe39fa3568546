// The study log keeps a transfer check: a 'transfer' event replays (changing no trial) and round-trips, and one
// naming a trial that is not complete, or malformed, is refused naming why.
import { describe, expect, it } from 'vitest';
import { createStudy, loadStudy, type TransferEvent } from '../../../src/engine/search/index.ts';

function finished() {
  const study = createStudy({ space: { lr: { type: 'float', low: 1e-4, high: 1e-2, log: true } }, seed: 3 });
  for (let i = 0; i < 3; i++) study.tell(study.ask(), 1 + i);
  study.tell(study.ask(), { state: 'pruned' });
  return study;
}

const event = (numbers: number[]): TransferEvent => ({
  type: 'transfer',
  model: './bigger',
  params: 1000,
  results: numbers.map((number) => ({ number, small: number + 1, large: number + 2 })),
  tau: 1,
  smallBest: 0,
  largeBest: 0,
  gapPercent: 0,
  withinPercent: 5,
});

describe('a transfer event in the study log', () => {
  it('changes no trial and survives a reload', () => {
    const study = finished();
    const trials = study.trials;
    study.applyEvent(event([0, 1, 2]));
    expect(study.trials).toEqual(trials);
    const { study: again, errors } = loadStudy(study.log());
    expect(errors).toEqual([]);
    expect(again.events.at(-1)).toEqual(event([0, 1, 2]));
    expect(again.trials).toEqual(trials);
  });

  it('is refused for a trial that is not complete, or when malformed', () => {
    const study = finished();
    expect(() => study.applyEvent(event([0, 3]))).toThrow('transfer: trial 3 is pruned, not complete');
    expect(() => study.applyEvent(event([9]))).toThrow('transfer: no trial number 9');
    const bad = `${study.log()}${JSON.stringify({ type: 'transfer', model: 5, results: [] })}\n`;
    expect(loadStudy(bad).errors[0].reason).toMatch(/transfer event: model must be a string/);
  });
});
