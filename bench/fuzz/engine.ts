// One-off fuzz measurement of the engine's parsers: ~3000 mutated inputs per parser, counted as
// "cases → clear error / crash / silent (/ accepted and sound)". The targets, mutations and what counts as
// silent are in test/unit/property/mutations.ts (shared with the property tests).
//
//   npx tsx bench/fuzz/engine.ts [cases per parser, default 3000] [--verbose]

import { TARGETS, fuzz } from '../../test/unit/property/mutations.ts';

const cases = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 3000);
const verbose = process.argv.includes('--verbose');

for (const target of TARGETS) {
  const started = performance.now();
  const { counts, examples } = await fuzz(target, cases, 2026);
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    `${target.name.padEnd(12)} ${cases} → ${counts.clear} clear / ${counts.crash} crash / ${counts.silent} silent ` +
      `(${counts.ok} accepted and sound; ${seconds} s)`,
  );
  if (verbose) {
    for (const [outcome, list] of Object.entries(examples)) {
      for (const line of list ?? []) console.log(`    ${outcome}: ${line}`);
    }
  }
}
