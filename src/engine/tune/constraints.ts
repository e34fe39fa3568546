// A study's constraints: bounds on what a trial measures (`accuracy>=0.8`, `tokens_per_second>=2000`,
// `peak_memory<=2GiB`). A
// trial that breaks one is kept as infeasible: the samplers steer away from it and it is never the best.
// Each bound becomes one constraint value per trial in Optuna's convention (≤ 0 feasible): metric − bound
// for `<=`, bound − metric for `>=`.
import type { EvalMetrics, StepMetrics } from '../train/trainer.ts';

export type ConstraintMetric =
  'val_loss' | 'perplexity' | 'accuracy' | 'macro_f1' | 'tokens_per_second' | 'peak_memory';

export const CONSTRAINT_METRICS: Record<ConstraintMetric, { label: string; classification: boolean }> = {
  val_loss: { label: 'validation loss', classification: false },
  perplexity: { label: 'validation perplexity', classification: false },
  accuracy: { label: 'accuracy', classification: true },
  macro_f1: { label: 'macro-F1', classification: true },
  tokens_per_second: { label: 'training tokens per second', classification: false },
  peak_memory: {
    label: 'GPU bytes of a trial (weights, adapter, optimizer state, activations)',
    classification: false,
  },
};

/** What a finished trial measured, for its constraint values. */
export interface TrialMeasures {
  evaluation: EvalMetrics;
  lastStep: StepMetrics | null;
  /** GPU bytes the trial held (TrialOutcome.gpuBytes). */
  gpuBytes?: number;
}

const BYTE_UNITS: Record<string, number> = { '': 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 };

export interface PlanConstraint {
  metric: ConstraintMetric;
  op: '<=' | '>=';
  bound: number;
}

/** `metric<=bound` or `metric>=bound`, as a flag or a form spells it. */
export function formatConstraint(c: PlanConstraint): string {
  return `${c.metric}${c.op}${c.bound}`;
}

/** Parses one `metric<=bound` / `metric>=bound`; throws a RangeError saying what was expected. */
export function parseConstraint(text: string): PlanConstraint {
  const match = /^\s*([a-z_0-9]+)\s*(<=|>=)\s*(\S+)\s*$/.exec(text);
  const names = Object.keys(CONSTRAINT_METRICS).join(', ');
  if (!match)
    throw new RangeError(`'${text}': expected METRIC<=BOUND or METRIC>=BOUND with METRIC one of ${names}`);
  const [, metric, op, boundText] = match;
  // Byte sizes may carry a binary unit: peak_memory<=2GiB.
  const sized = /^([0-9.eE+-]+)(KiB|MiB|GiB)$/.exec(boundText);
  const bound = sized ? Number(sized[1]) * BYTE_UNITS[sized[2]] : Number(boundText);
  if (!Number.isFinite(bound))
    throw new RangeError(
      `'${text}': the bound '${boundText}' is not a number (a byte size may end in KiB, MiB or GiB)`,
    );
  const c = { metric, op, bound } as PlanConstraint;
  const problem = constraintProblem(c);
  if (problem) throw new RangeError(`'${text}': ${problem}`);
  return c;
}

/** What is wrong with a constraint (one read back from a stored plan, too), or undefined. */
export function constraintProblem(c: unknown): string | undefined {
  if (typeof c !== 'object' || c === null) return 'expected { metric, op, bound }';
  const { metric, op, bound } = c as Record<string, unknown>;
  if (typeof metric !== 'string' || !(metric in CONSTRAINT_METRICS))
    return `metric ${JSON.stringify(metric)} is not one of ${Object.keys(CONSTRAINT_METRICS).join(', ')}`;
  if (op !== '<=' && op !== '>=') return `op must be '<=' or '>=' (got ${JSON.stringify(op)})`;
  if (typeof bound !== 'number' || !Number.isFinite(bound))
    return `the bound of ${metric} must be a finite number (got ${JSON.stringify(bound)})`;
  return undefined;
}

/** Throws, saying why, when a constraint's metric cannot be measured on this data. */
export function checkConstraints(
  constraints: readonly PlanConstraint[],
  data: { classes?: readonly string[] },
): void {
  for (const c of constraints) {
    const m = CONSTRAINT_METRICS[c.metric];
    if (m.classification && !(data.classes && data.classes.length > 1))
      throw new RangeError(
        `${formatConstraint(c)}: ${m.label} is only measured on classification data (a text,label CSV)`,
      );
  }
}

/**
 * The constraint values of a finished trial from what it measured (≤ 0 feasible); a
 * metric the trial did not measure counts as broken (Infinity is not a value a log can keep: 1e300).
 */
export function constraintValues(constraints: readonly PlanConstraint[], measured: TrialMeasures): number[] {
  return constraints.map((c) => {
    const v = metricValue(c.metric, measured);
    if (!Number.isFinite(v)) return 1e300;
    return c.op === '<=' ? v - c.bound : c.bound - v;
  });
}

export function metricValue(
  metric: ConstraintMetric,
  { evaluation: e, lastStep, gpuBytes }: TrialMeasures,
): number {
  switch (metric) {
    case 'val_loss':
      return e.valLoss;
    case 'perplexity':
      return e.perplexity;
    case 'accuracy':
      return e.accuracy ?? NaN;
    case 'macro_f1':
      return e.macroF1 ?? NaN;
    case 'tokens_per_second':
      return lastStep?.tokensPerSecond ?? NaN;
    case 'peak_memory':
      return gpuBytes ?? NaN;
  }
}
