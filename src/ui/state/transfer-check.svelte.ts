// The Results step's transfer check: the study's top configurations re-run on a larger model of the same family
// and tokenizer (picked as a local folder), with the study's data, split and budget, in one trial worker; then
// Kendall τ-b, the best-vs-best verdict and the small-vs-large plot, and a 'transfer' event in the study's log.
// What `tunelab transfer` does in the CLI (src/cli/transfer.ts), with the page's worker instead of a thread.
import { localFiles } from '../../engine/model/sources.ts';
import { parameterCount } from '../../engine/model/memory.ts';
import { openModel, type OpenedModel } from '../../engine/model/open.ts';
import { dataTokenizer, padIdOf, parseDataset, splitExamples } from '../../engine/train/data.ts';
import {
  agreement,
  transferEvent,
  type Agreement,
  type TransferPoint,
} from '../../engine/transfer/agreement.ts';
import { transferPlotSvg } from '../../engine/transfer/plot.ts';
import { OBJECTIVES } from '../../engine/tune/objective.ts';
import { objectiveValue } from '../../engine/tune/objective.ts';
import { WorkerPool } from '../../workers/pool.ts';
import { spawnBrowserWorker } from '../../workers/spawn-browser.ts';
import { appendEvent } from '../lib/db.ts';
import { describeError } from '../lib/errors.ts';
import { planOf } from '../lib/exports.ts';
import type { RunState } from './run-state.svelte.ts';

/** The study's top `k` complete trials, best first. */
function topTrials(run: RunState, k: number): { number: number; value: number }[] {
  const study = run.study!;
  const sign = study.direction === 'minimize' ? 1 : -1;
  return study.trials
    .filter((t) => t.state === 'complete' && t.value !== undefined)
    .map((t) => ({ number: t.number, value: t.value! }))
    .sort((a, b) => sign * (a.value - b.value) || a.number - b.number)
    .slice(0, k);
}

export interface TransferCheckInputs {
  /** The model the study ran on, loaded now (its family and tokenizer file are compared). */
  small: OpenedModel;
  smallTokenizer: string;
  /** The study's data (stored with it), else the data loaded now, and its file name. */
  dataText: string;
  dataFile: string;
}

export class TransferCheckState {
  phase = $state<'idle' | 'running' | 'done' | 'error'>('idle');
  error = $state('');
  progress = $state('');
  label = $state('');
  points = $state.raw<TransferPoint[]>([]);
  result = $state.raw<Agreement | null>(null);
  svg = $state('');

  constructor(readonly run: RunState) {}

  /** Re-runs the top `k` configurations on the model in `files` (a picked folder). */
  async check(files: File[], inputs: TransferCheckInputs, k: number, within: number): Promise<void> {
    const { run } = this;
    if (!run.meta || !run.study) return;
    this.phase = 'running';
    this.error = '';
    this.points = [];
    this.result = null;
    let pool: WorkerPool | null = null;
    try {
      const label = files[0]?.webkitRelativePath.split('/')[0] || 'larger model';
      this.label = label;
      const modelFiles = localFiles(files, label);
      const large = await openModel(modelFiles);
      if (large.spec.family !== inputs.small.spec.family)
        throw new Error(
          `${label} is a ${large.spec.family} model; the study's model is ${inputs.small.spec.family}`,
        );
      const tokenizerFile = files.find((f) => f.name === 'tokenizer.json');
      if (!tokenizerFile || (await tokenizerFile.text()) !== inputs.smallTokenizer)
        throw new Error(
          `${label} does not have the study model's tokenizer (tokenizer.json differs or is missing)`,
        );
      const plan = planOf({ meta: run.meta, study: run.study, spec: large.spec });
      const { seq, seed } = plan.spec.fixed;
      if (seq! > large.spec.maxPositions)
        throw new Error(`the study's seq ${seq} exceeds ${label}'s ${large.spec.maxPositions} positions`);
      // The run's own split: the same text, seq, ratio, seed and file name give the same examples.
      const tok = dataTokenizer(large.tokenizer);
      const data = parseDataset(inputs.dataFile, inputs.dataText, tok, {
        seq: seq!,
        columns: plan.spec.columns,
      });
      const split = splitExamples(data.examples, plan.spec.valRatio ?? 0.1, seed!, inputs.dataFile);
      const blobs: Record<string, Blob> = Object.fromEntries(files.map((f) => [f.name, f]));
      pool = new WorkerPool(spawnBrowserWorker, 1, {
        model: { kind: 'files', label, files: blobs },
        precision: run.meta.settings.precision,
        train: split.train,
        validation: split.validation,
        padId: padIdOf(tok),
      });
      await pool.start();
      const top = topTrials(run, k);
      const points: TransferPoint[] = [];
      for (const [i, t] of top.entries()) {
        this.progress = `Training configuration ${i + 1} of ${top.length} (trial ${t.number}) on ${label}…`;
        const outcome = await pool.run(
          0,
          {
            number: t.number,
            options: plan.trainerOptions(run.study.trial(t.number).params, data.classes),
            keepCheckpoint: false,
            exportAdapter: false,
            baseModel: label,
          },
          { onStep: () => {}, onEval: () => ({ action: 'continue' }) },
        );
        const value = outcome.lastEval ? objectiveValue(plan.spec.objective, outcome.lastEval) : NaN;
        points.push({ number: t.number, small: t.value, large: value });
        this.points = [...points];
      }
      const result = agreement(points, OBJECTIVES[plan.spec.objective].direction, within);
      const event = transferEvent(label, parameterCount(large.spec), points, result);
      run.study.applyEvent(event);
      await appendEvent(run.meta.id, event);
      this.result = result;
      this.svg = transferPlotSvg(points, result, {
        objective: OBJECTIVES[plan.spec.objective].label,
        small: run.meta.model.label,
        large: label,
      });
      this.phase = 'done';
    } catch (e) {
      this.error = describeError(e);
      this.phase = 'error';
    } finally {
      this.progress = '';
      await pool?.close();
    }
  }
}
