// What a trial is scored by, read from the trainer's evaluation at each eval point (the pruning rung) and at
// the end. Accuracy and macro-F1 exist only for classification data (`text,label` CSV).
import type { Direction } from '../search/index.ts';
import type { EvalMetrics } from '../train/trainer.ts';

export type Objective = 'val_loss' | 'perplexity' | 'accuracy' | 'macro_f1';

export const OBJECTIVES: Record<Objective, { direction: Direction; label: string; classification: boolean }> =
  {
    val_loss: { direction: 'minimize', label: 'validation loss', classification: false },
    perplexity: { direction: 'minimize', label: 'validation perplexity', classification: false },
    accuracy: { direction: 'maximize', label: 'accuracy', classification: true },
    macro_f1: { direction: 'maximize', label: 'macro-F1', classification: true },
  };

/** Throws, saying why, when `objective` cannot be measured on this data. */
export function checkObjective(
  objective: Objective,
  data: { classes?: readonly string[]; validation: number },
): void {
  const o = OBJECTIVES[objective];
  if (!o)
    throw new RangeError(
      `objective: expected one of ${Object.keys(OBJECTIVES).join(', ')}, got '${objective}'`,
    );
  if (data.validation === 0)
    throw new RangeError(`objective ${o.label}: needs validation examples (a validation file or a split)`);
  if (o.classification && !(data.classes && data.classes.length > 1))
    throw new RangeError(
      `objective ${o.label}: only available for classification data (a text,label CSV with ≥ 2 labels); ` +
        'use val_loss or perplexity',
    );
}

export function objectiveValue(objective: Objective, m: EvalMetrics): number {
  switch (objective) {
    case 'val_loss':
      return m.valLoss;
    case 'perplexity':
      return m.perplexity;
    case 'accuracy':
      return m.accuracy ?? NaN;
    case 'macro_f1':
      return m.macroF1 ?? NaN;
  }
}

/** The metrics a best value stands for, under the objective's name (when only the value is known). */
export function metricsOfValue(
  objective: Objective,
  value: number | undefined,
): { valLoss?: number; perplexity?: number; accuracy?: number; macroF1?: number } {
  if (value === undefined) return {};
  switch (objective) {
    case 'val_loss':
      return { valLoss: value };
    case 'perplexity':
      return { perplexity: value };
    case 'accuracy':
      return { accuracy: value };
    case 'macro_f1':
      return { macroF1: value };
  }
}
