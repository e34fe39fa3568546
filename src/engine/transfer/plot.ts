// The transfer check's figure: each configuration's objective on the small model (x) against the large model
// (y), as a standalone SVG (no script, no external reference), trial numbers beside the points, the small
// model's best ringed.
import type { Agreement, TransferPoint } from './agreement.ts';

const W = 480;
const H = 380;
const PAD = { left: 64, right: 24, top: 52, bottom: 48 };

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
const fmt = (x: number): string => String(Number(x.toPrecision(3)));

/** A linear map of the values' range (padded 8 %) onto [from, to], with the range's ends for tick labels. */
function scale(
  values: number[],
  from: number,
  to: number,
): { at: (v: number) => number; lo: number; hi: number } {
  const [min, max] = [Math.min(...values), Math.max(...values)];
  const [lo, hi] = min === max ? [min - 0.5, max + 0.5] : [min, max];
  const pad = (hi - lo) * 0.08;
  return { at: (v) => from + ((v - (lo - pad)) / (hi - lo + 2 * pad)) * (to - from), lo: min, hi: max };
}

export function transferPlotSvg(
  points: readonly TransferPoint[],
  agreement: Agreement,
  labels: { objective: string; small: string; large: string },
): string {
  const scored = points.filter((p) => Number.isFinite(p.large));
  const sx = scale(
    scored.map((p) => p.small),
    PAD.left,
    W - PAD.right,
  );
  const sy = scale(
    scored.map((p) => p.large),
    H - PAD.bottom,
    PAD.top,
  );
  const x = sx.at;
  const y = sy.at;
  // The smallest and largest value of each axis, at their places.
  const ticks = [
    ...[sx.lo, sx.hi].map(
      (v) =>
        `<text x="${x(v).toFixed(1)}" y="${H - PAD.bottom + 14}" text-anchor="middle" font-size="10">${fmt(v)}</text>`,
    ),
    ...[sy.lo, sy.hi].map(
      (v) =>
        `<text x="${PAD.left - 4}" y="${(y(v) + 3).toFixed(1)}" text-anchor="end" font-size="10">${fmt(v)}</text>`,
    ),
  ];
  const dots = scored.map((p) => {
    const cx = x(p.small).toFixed(1);
    const cy = y(p.large).toFixed(1);
    const ring =
      p.number === agreement.smallBest
        ? `<circle cx="${cx}" cy="${cy}" r="9" fill="none" stroke="#b45309" stroke-width="2"/>`
        : '';
    return (
      `${ring}<circle cx="${cx}" cy="${cy}" r="5" fill="#4f46e5"><title>trial ${p.number}: ${fmt(p.small)} → ${fmt(p.large)}</title></circle>` +
      `<text x="${(x(p.small) + 8).toFixed(1)}" y="${(y(p.large) - 8).toFixed(1)}" font-size="11">#${p.number}</text>`
    );
  });
  const tau = Number.isFinite(agreement.tau) ? agreement.tau.toFixed(2) : 'n/a';
  const verdict = `small model's best (#${agreement.smallBest}) ${agreement.smallBest === agreement.largeBest ? 'is' : `is ${fmt(agreement.gapPercent)} % from`} the large model's best`;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="13">Kendall τ-b ${tau}</text>`,
    `<text x="${W / 2}" y="36" text-anchor="middle" font-size="12">${escape(verdict)}</text>`,
    ...ticks,
    `<line x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}" stroke="#555"/>`,
    `<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${H - PAD.bottom}" stroke="#555"/>`,
    `<text x="${(PAD.left + W - PAD.right) / 2}" y="${H - 12}" text-anchor="middle" font-size="12">${escape(`${labels.objective} on ${labels.small}`)}</text>`,
    `<text transform="translate(16 ${(PAD.top + H - PAD.bottom) / 2}) rotate(-90)" text-anchor="middle" font-size="12">${escape(`${labels.objective} on ${labels.large}`)}</text>`,
    ...dots,
    '</svg>',
    '',
  ].join('\n');
}
