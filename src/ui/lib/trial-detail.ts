// What the trial detail says about one trial, in words: why it ended, its runs (and checkpoint) and its lines of
// the study log. Plain functions of the study's records and the page's history.
import type { PrunerSpec, StudyEvent, TrialRecord } from '../../engine/search/index.ts';
import { formatDuration, formatNumber, formatParams } from './format.ts';
import type { TrialSpan } from './trial-history.ts';
import type { TrialStatus } from './trial-table.ts';

export function prunerName(spec: PrunerSpec): string {
  const type = typeof spec === 'string' ? spec : spec.type;
  return type === 'median'
    ? 'the median pruner'
    : type === 'asha'
      ? 'ASHA (successive halving)'
      : 'no pruner';
}

export interface EndingContext {
  status: TrialStatus;
  pruner: PrunerSpec;
  /** The objective's name ("validation loss"). */
  objective: string;
  /** Steps a trial trains. */
  steps: number;
  /** Its runs as the page saw them (empty for an imported study). */
  spans: readonly TrialSpan[];
  /** The step it has reached (running or paused). */
  step: number;
}

/** Why the trial ended, or what it is doing. */
export function trialEnding(t: TrialRecord, c: EndingContext): string {
  const lastEval = t.intermediate.at(-1);
  switch (c.status) {
    case 'complete':
      return `Finished its ${c.steps} steps: ${c.objective} ${formatNumber(t.value)}.`;
    case 'infeasible': {
      const broken = (t.constraints ?? []).filter((v) => v > 0).length;
      return (
        `Finished its ${c.steps} steps (${c.objective} ${formatNumber(t.value)}) but broke ` +
        `${broken === 1 ? 'a constraint' : `${broken} constraints`}, so it is never the best.`
      );
    }
    case 'pruned':
      return lastEval
        ? `Pruned at step ${lastEval[0]} by ${prunerName(c.pruner)}: its ${c.objective} there, ` +
            `${formatNumber(lastEval[1])}, was worse than the other trials' at that step.`
        : `Pruned by ${prunerName(c.pruner)} before its first evaluation.`;
    case 'failed': {
      const reason = c.spans.findLast((s) => s.ended === 'failed')?.reason;
      return reason
        ? `Failed: ${reason}.`
        : 'Failed (the study log keeps no error messages, and this page did not see it fail).';
    }
    case 'paused':
      return `Paused at step ${c.step} of ${c.steps}, its checkpoint stored: Resume continues it from there.`;
    case 'running':
      return `Running: step ${c.step} of ${c.steps}.`;
  }
}

/** Its runs: which worker, from which step to which, how long, how each ended (a resume starts a new run). */
export function describeRuns(spans: readonly TrialSpan[]): string[] {
  return spans.map((s, i) => {
    const what =
      i === 0 && s.fromStep === 0 ? 'Started' : `Resumed from the checkpoint at step ${s.fromStep}`;
    const where = `on worker ${s.slot + 1}`;
    if (s.end === undefined) return `${what} ${where}; no end recorded (still running, or the page closed).`;
    const how =
      s.ended === 'paused'
        ? `paused at step ${s.toStep} with its checkpoint stored`
        : `${s.ended} at step ${s.toStep}`;
    return `${what} ${where}, ran ${formatDuration((s.end - s.start) / 1000)}, ${how}.`;
  });
}

/** The study log's lines about one trial, in words: asked, each evaluation, PBT exploits, told. */
export function trialLog(events: readonly StudyEvent[], number: number): string[] {
  const lines: string[] = [];
  for (const e of events) {
    if (e.type === 'study' || e.type === 'transfer' || e.number !== number) continue;
    switch (e.type) {
      case 'ask':
        lines.push(`asked: ${formatParams(e.params)}`);
        break;
      case 'report':
        lines.push(`step ${e.step}: objective ${e.value === null ? 'not finite' : formatNumber(e.value)}`);
        break;
      case 'pbt':
        lines.push(
          `step ${e.step}: continued from trial ${e.donor}'s weights with ${formatParams(e.params)}`,
        );
        break;
      case 'tell':
        lines.push(
          e.state === 'complete'
            ? `told: complete, objective ${formatNumber(e.value)}` +
                (e.constraints ? ` (constraint values ${e.constraints.map(formatNumber).join(', ')})` : '')
            : `told: ${e.state}`,
        );
        break;
    }
  }
  return lines;
}
