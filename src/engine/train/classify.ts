// Classification accuracy and macro-F1 for `text,label` data: each example's prompt is scored with every
// label's completion (the label word and EOS, as the training rows end), and the label whose tokens have the
// lowest summed loss is the prediction — the usual way to evaluate a causal LM on a fixed label set.

import { CommandRecorder } from '../gpu/index.ts';
import { IGNORE_INDEX, type Example } from './data.ts';
import type { CausalLM, TrainingActivations } from '../model/causal-lm.ts';
import { accuracy, macroF1 } from './metrics.ts';

export interface ClassificationEvaluation {
  accuracy: number;
  macroF1: number;
  predicted: number[];
  target: number[];
}

/**
 * Each class's completion tokens, taken from the training row of that class with the longest completion (they
 * are the same in every row that was not cut short by the sequence length).
 */
export function labelCompletions(examples: readonly Example[], classes: readonly string[]): Int32Array[] {
  return classes.map((label, c) => {
    let best: Int32Array | null = null;
    for (const e of examples) {
      if (e.classIndex !== c) continue;
      const completion = e.ids.slice(e.promptLength);
      if (!best || completion.length > best.length) best = completion;
    }
    if (!best || best.length === 0) {
      throw new RangeError(
        `class '${label}' has no training row whose label survived truncation: raise seq or shorten the texts`,
      );
    }
    return best;
  });
}

export async function evaluateClassification<A extends TrainingActivations>(
  model: CausalLM<A>,
  acts: A,
  examples: readonly Example[],
  completions: readonly Int32Array[],
  padId: number,
): Promise<ClassificationEvaluation> {
  const { batch, seq } = acts;
  const labelled = examples.filter((e) => e.classIndex !== undefined);
  if (labelled.length === 0) throw new RangeError('no classification examples to evaluate');
  // One candidate row per (example, class): prompt ++ that class's completion, loss on the completion only.
  const candidates = labelled.flatMap((e) =>
    completions.map((completion) => {
      const ids = new Int32Array(e.promptLength + completion.length);
      ids.set(e.ids.subarray(0, e.promptLength));
      ids.set(completion, e.promptLength);
      return ids;
    }),
  );
  const scores = new Float64Array(candidates.length);
  const N = batch * seq;
  // One recorder for the whole pass: its bind groups are made once and, from the third batch on, the forward
  // is replayed (the batches differ only in the token buffers' contents).
  const rec = new CommandRecorder(model.gpu, { label: 'classify' });
  try {
    await scoreBatches();
  } finally {
    rec.destroy();
  }
  async function scoreBatches(): Promise<void> {
    for (let start = 0; start < candidates.length; start += batch) {
      const inputs = new Uint32Array(N).fill(padId);
      const targets = new Int32Array(N).fill(IGNORE_INDEX);
      const rows = candidates.slice(start, start + batch);
      rows.forEach((ids, r) => {
        const promptLength = labelled[Math.floor((start + r) / completions.length)].promptLength;
        for (let t = 0; t < Math.min(ids.length, seq); t++) inputs[r * seq + t] = ids[t];
        // Position t predicts ids[t + 1]: the completion's tokens are predicted from promptLength − 1 on.
        for (let t = Math.max(0, promptLength - 1); t + 1 < ids.length && t < seq; t++)
          targets[r * seq + t] = ids[t + 1];
      });
      const queue = model.gpu.device.queue;
      queue.writeBuffer(acts.tokens, 0, inputs);
      queue.writeBuffer(acts.targets, 0, targets);
      // invNormaliser 1: `losses` then holds each token's plain loss.
      rec.replayable('forward', () =>
        model.forward(rec, acts, { invNormaliser: 1, accumulate: false, eval: true }),
      );
      const pending = rec.readback(acts.losses, 0, 4 * N);
      rec.submit();
      const losses = new Float32Array(await pending.read());
      rows.forEach((_, r) => {
        let sum = 0;
        for (let t = 0; t < seq; t++) sum += losses[r * seq + t];
        scores[start + r] = sum;
      });
    }
  }
  const predicted = labelled.map((_, i) => {
    let best = 0;
    for (let c = 1; c < completions.length; c++) {
      if (scores[i * completions.length + c] < scores[i * completions.length + best]) best = c;
    }
    return best;
  });
  const target = labelled.map((e) => e.classIndex!);
  const classes = completions.map((_, c) => c);
  return {
    accuracy: accuracy(predicted, target),
    macroF1: macroF1(predicted, target, classes),
    predicted,
    target,
  };
}
