// `tunelab tune`'s summary lines on parameter importance, as the page's Results step shows them: fANOVA over
// the whole space (which parameter moves the objective anywhere) and PED-ANOVA over the top 10 % of the
// complete trials (which parameter the good trials agree on). In a multi-objective study both read the first
// objective.
import { parameterImportance, pedAnovaImportance } from '../engine/search/index.ts';
import type { Study } from '../engine/search/index.ts';

/** Parameters by importance, most important first: `lr 0.81, r 0.15, lora_dropout 0.04`. */
function ranked(importance: Record<string, number>): string {
  return Object.entries(importance)
    .sort((a, b) => b[1] - a[1])
    .map(([name, value]) => `${name} ${value.toFixed(2)}`)
    .join(', ');
}

/** The engine's reason without the function that threw it (`need at least 2 complete trials`). */
const reason = (e: unknown): string => (e as Error).message.replace(/^[a-zA-Z]+: /, '');

/**
 * One line per method: its ranking, or why there is none (too few complete trials). Never throws: the
 * summary of a finished study must not turn it into a failed command.
 */
export function importanceLines(study: Study): string[] {
  if (study.space.sampled.length === 0) return [];
  const line = (label: string, compute: () => Record<string, number>): string => {
    try {
      return `importance, ${label}: ${ranked(compute())}`;
    } catch (e) {
      return `importance, ${label}: none (${reason(e)})`;
    }
  };
  return [
    line('whole space (fANOVA)', () => parameterImportance(study.space, study.trials, { seed: 0 })),
    line('top 10 % (PED-ANOVA)', () =>
      pedAnovaImportance(study.space, study.trials, { direction: study.direction }),
    ),
  ];
}
