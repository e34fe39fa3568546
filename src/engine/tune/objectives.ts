// A multi-objective study's objectives: what a finished trial is scored by, each with a direction
// (`--objectives val_loss,step_time`, `accuracy:max,peak_memory`). The first is measured at every evaluation
// (it is what the live charts draw and each evaluation reports); the others may be any measure of the trial:
// its cost in time per optimizer step, GPU memory or throughput.
import type { Direction } from '../search/index.ts';
import { metricValue, type TrialMeasures } from './constraints.ts';
import { OBJECTIVES, type Objective } from './objective.ts';

export type ObjectiveMetric = Objective | 'step_time' | 'peak_memory' | 'tokens_per_second';

export interface PlanObjective {
  metric: ObjectiveMetric;
  direction: Direction;
}

interface MetricInfo {
  direction: Direction;
  /** The axis title: what it is and its unit. */
  label: string;
  /** Measured at every evaluation (may be the first objective). */
  evaluated: boolean;
}

export const OBJECTIVE_METRICS: Record<ObjectiveMetric, MetricInfo> = {
  ...(Object.fromEntries(
    Object.entries(OBJECTIVES).map(([name, o]) => [
      name,
      { direction: o.direction, label: o.label, evaluated: true },
    ]),
  ) as Record<Objective, MetricInfo>),
  step_time: {
    direction: 'minimize',
    label: 'time per optimizer step (s)',
    evaluated: false,
  },
  peak_memory: { direction: 'minimize', label: 'peak GPU memory (bytes)', evaluated: false },
  tokens_per_second: { direction: 'maximize', label: 'training tokens per second', evaluated: false },
};

/** The most objectives a study may have (the exact hypervolume grows fast with more). */
export const MAX_OBJECTIVES = 4;

/** `val_loss,step_time:min`: the objectives in order, each direction by name unless `:min`/`:max` says. */
export function parseObjectives(text: string): PlanObjective[] {
  const names = Object.keys(OBJECTIVE_METRICS).join(', ');
  const list = text.split(',').map((part) => {
    const match = /^\s*([a-z_0-9]+)\s*(?::\s*(min|max)\s*)?$/.exec(part);
    if (!match)
      throw new RangeError(`'${part}': expected METRIC or METRIC:min / METRIC:max, METRIC one of ${names}`);
    const metric = match[1] as ObjectiveMetric;
    if (!(metric in OBJECTIVE_METRICS)) throw new RangeError(`'${metric}' is not one of ${names}`);
    const direction: Direction =
      match[2] === undefined
        ? OBJECTIVE_METRICS[metric].direction
        : match[2] === 'max'
          ? 'maximize'
          : 'minimize';
    return { metric, direction };
  });
  const problem = objectivesProblem(list);
  if (problem) throw new RangeError(problem);
  return list;
}

/** What is wrong with a list of objectives (one read back from a stored plan, too), or undefined. */
export function objectivesProblem(list: unknown): string | undefined {
  if (!Array.isArray(list) || list.length < 2 || list.length > MAX_OBJECTIVES)
    return `expected 2 to ${MAX_OBJECTIVES} objectives (one objective: --objective)`;
  const seen = new Set<string>();
  for (const o of list as unknown[]) {
    const { metric, direction } = (typeof o === 'object' && o !== null ? o : {}) as Record<string, unknown>;
    if (typeof metric !== 'string' || !(metric in OBJECTIVE_METRICS))
      return `${JSON.stringify(metric)} is not one of ${Object.keys(OBJECTIVE_METRICS).join(', ')}`;
    if (direction !== 'minimize' && direction !== 'maximize')
      return `${metric}: direction must be 'minimize' or 'maximize' (got ${JSON.stringify(direction)})`;
    if (seen.has(metric)) return `${metric} is given twice`;
    seen.add(metric);
  }
  const first = (list[0] as PlanObjective).metric;
  if (!OBJECTIVE_METRICS[first].evaluated)
    return (
      `the first objective is measured at every evaluation: one of ` +
      `${Object.keys(OBJECTIVES).join(', ')} (got ${first}; put it second)`
    );
  return undefined;
}

/** `val_loss,step_time:min` as a flag spells the list (the direction only where it is not the name's). */
export function formatObjectives(list: readonly PlanObjective[]): string {
  return list
    .map((o) =>
      o.direction === OBJECTIVE_METRICS[o.metric].direction
        ? o.metric
        : `${o.metric}:${o.direction === 'maximize' ? 'max' : 'min'}`,
    )
    .join(',');
}

/** A finished trial's value of each objective (NaN where it measured none). */
export function objectiveValues(list: readonly PlanObjective[], measured: TrialMeasures): number[] {
  return list.map((o) => measuredValue(o.metric, measured));
}

function measuredValue(metric: ObjectiveMetric, measured: TrialMeasures): number {
  if (metric !== 'step_time') return metricValue(metric, measured);
  // Seconds per step over the trial's last stretch of training (tokens per second is that stretch's mean).
  const last = measured.lastStep;
  return last && last.tokensPerSecond > 0 ? last.tokens / last.tokensPerSecond : NaN;
}
