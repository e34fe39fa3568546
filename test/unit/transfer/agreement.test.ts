// Kendall's τ-b against hand-computed cases (ties in x, in y and in both), the best-vs-best verdict for both
// directions, and the plot as well-formed SVG.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { agreement, kendallTauB } from '../../../src/engine/transfer/agreement.ts';
import { transferPlotSvg } from '../../../src/engine/transfer/plot.ts';

describe('kendallTauB', () => {
  it('matches a hand-computed case with a tie in x and a tie in y', () => {
    // Pairs of x = [1, 2, 2, 3, 4], y = [2, 1, 3, 3, 5]: concordant (0,2) (0,3) (0,4) (1,3) (1,4) (2,4) (3,4) = 7,
    // discordant (0,1) = 1, tied in x (1,2), tied in y (2,3); n0 = 10: τ-b = (7 − 1) / √((10 − 1)(10 − 1)) = 2/3.
    expect(kendallTauB([1, 2, 2, 3, 4], [2, 1, 3, 3, 5])).toBeCloseTo(2 / 3, 15);
  });

  it('drops a pair tied in both from both sides of the denominator', () => {
    // (0,1) tied in x and y; (0,2), (1,2) concordant: 2 / √((3 − 1)(3 − 1)) = 1.
    expect(kendallTauB([1, 1, 2], [5, 5, 6])).toBe(1);
    // No ties: τ-b is τ-a. One discordant pair of three: (2 − 1) / 3.
    expect(kendallTauB([1, 2, 3], [1, 3, 2])).toBeCloseTo(1 / 3, 15);
    expect(kendallTauB([1, 2, 3], [3, 2, 1])).toBe(-1);
  });

  it('is undefined (NaN) for a constant list or a single value, and refuses lists of different lengths', () => {
    expect(kendallTauB([1, 1, 1], [1, 2, 3])).toBeNaN();
    expect(kendallTauB([1], [2])).toBeNaN();
    expect(() => kendallTauB([1, 2], [1])).toThrow(/2 x values but 1 y values/);
  });
});

describe('agreement', () => {
  const points = [
    { number: 4, small: 1.0, large: 2.25 },
    { number: 7, small: 1.1, large: 2.0 },
    { number: 2, small: 1.3, large: 2.5 },
    { number: 9, small: 1.4, large: NaN },
  ];

  it('minimising: the small best (4) is 12.5 % from the large best (7); the failed run is left out of τ', () => {
    const a = agreement(points, 'minimize', 12.5);
    expect(a).toMatchObject({ smallBest: 4, largeBest: 7, within: true, failed: [9] });
    expect(a.gapPercent).toBe(12.5); // (2.25 − 2) / 2
    expect(a.tau).toBeCloseTo(kendallTauB([1.0, 1.1, 1.3], [2.25, 2.0, 2.5]), 15);
    expect(agreement(points, 'minimize', 12.4).within).toBe(false);
  });

  it('maximising picks the largest values', () => {
    const a = agreement(points, 'maximize', 0);
    expect(a).toMatchObject({ smallBest: 2, largeBest: 2, gapPercent: 0, within: true });
  });

  it('the plot is well-formed SVG with a point per scored configuration and the small best ringed', () => {
    const a = agreement(points, 'minimize', 5);
    const svg = transferPlotSvg(points, a, {
      objective: 'validation loss',
      small: 'tiny <a>',
      large: 'big & "b"',
    });
    expect(svg.match(/<circle [^>]*r="5"/g)).toHaveLength(3);
    expect(svg.match(/r="9"/g)).toHaveLength(1);
    expect(svg).toContain('Kendall τ-b');
    const parsed = spawnSync(
      'python3',
      ['-c', 'import sys, xml.etree.ElementTree as E; E.fromstring(sys.stdin.read())'],
      {
        input: svg,
        encoding: 'utf8',
      },
    );
    if (parsed.error === undefined) expect(parsed.stderr).toBe('');
  });
});
