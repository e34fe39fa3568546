// When and where each trial ran, as the page saw it: the study log keeps what was decided (asks, reports,
// tells), not wall-clock times, worker slots or failure messages, which the timeline and the trial detail need.
// A trial paused and resumed runs more than once, so it has one span per run.

export interface TrialSpan {
  /** The pool worker it ran on (0-based). */
  slot: number;
  /** Wall-clock ms (Date.now()) when the run started and ended; no end: still running, or the page closed. */
  start: number;
  end?: number;
  /** The step it started from (a resumed trial's checkpoint step) and the steps it had made when it ended. */
  fromStep: number;
  toStep?: number;
  /** How the run ended: 'paused' is a checkpointed pause, the others the trial's end. */
  ended?: 'complete' | 'pruned' | 'failed' | 'paused';
  /** Why a failed run failed, in words. */
  reason?: string;
}

/** Per trial number, its runs in order. */
export type TrialHistory = Readonly<Record<number, readonly TrialSpan[]>>;

export function runStarted(
  history: TrialHistory,
  number: number,
  run: { slot: number; at: number; fromStep: number },
): TrialHistory {
  const span: TrialSpan = { slot: run.slot, start: run.at, fromStep: run.fromStep };
  return { ...history, [number]: [...(history[number] ?? []), span] };
}

export function runEnded(
  history: TrialHistory,
  number: number,
  end: { at: number; toStep: number; ended: NonNullable<TrialSpan['ended']>; reason?: string },
): TrialHistory {
  const spans = history[number] ?? [];
  const last = spans.at(-1);
  if (!last || last.end !== undefined) return history; // no run of it was seen starting
  const closed: TrialSpan = {
    ...last,
    end: end.at,
    toStep: end.toStep,
    ended: end.ended,
    ...(end.reason !== undefined ? { reason: end.reason } : {}),
  };
  return { ...history, [number]: [...spans.slice(0, -1), closed] };
}

/** A stored history, or an empty one when the study has none (imported, or stored before histories were kept). */
export function parseHistory(text: string | null): TrialHistory {
  if (text === null) return {};
  try {
    const data: unknown = JSON.parse(text);
    return typeof data === 'object' && data !== null && !Array.isArray(data) ? (data as TrialHistory) : {};
  } catch {
    return {};
  }
}
