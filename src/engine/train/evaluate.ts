// Mean next-token loss of a model over a set of examples: one forward per micro-batch, each adding its share
// of the token-weighted mean into the loss scalar, one readback at the end.

import { CommandRecorder } from '../gpu/index.ts';
import type { CausalLM, TrainingActivations } from '../model/causal-lm.ts';
import { evalBatches, type Example } from './data.ts';
import { perplexity } from './metrics.ts';

export interface LossEvaluation {
  loss: number;
  perplexity: number;
  /** Predicted tokens the mean is over. */
  tokens: number;
}

export async function evaluateLoss<A extends TrainingActivations>(
  model: CausalLM<A>,
  acts: A,
  examples: readonly Example[],
  padId: number,
  onProgress?: (done: number, total: number) => void,
): Promise<LossEvaluation> {
  const { batch, seq } = acts;
  const batches = [...evalBatches(examples, batch, seq, padId)];
  const tokens = batches.reduce((s, b) => s + b.validTargets, 0);
  if (tokens === 0) throw new RangeError('the evaluation set has no tokens to predict');
  const gpu = model.gpu;
  const N = batch * seq;
  // One recorder for the whole pass: bind groups are made once, and from the third batch on the forward is
  // replayed (batches differ only in the token buffers' contents; the first one writes the loss, later add).
  const rec = new CommandRecorder(gpu, { label: 'eval' });
  try {
    for (const [i, mb] of batches.entries()) {
      // Queue order puts each upload after the previous batch's forward has read the buffers.
      gpu.device.queue.writeBuffer(
        acts.tokens,
        0,
        new Uint32Array(mb.inputs.buffer as ArrayBuffer, mb.inputs.byteOffset, N),
      );
      gpu.device.queue.writeBuffer(acts.targets, 0, mb.targets as Int32Array<ArrayBuffer>);
      const accumulate = i > 0;
      rec.replayable(`accumulate ${accumulate}`, () =>
        model.forward(rec, acts, { invNormaliser: 1 / tokens, accumulate, eval: true }),
      );
      if (onProgress && (i % 8 === 7 || i === batches.length - 1)) {
        await rec.submitAndWait();
        onProgress(i + 1, batches.length);
      } else {
        rec.submit();
      }
    }
    const pending = rec.readback(acts.loss, 0, 4);
    rec.submit();
    const loss = new Float32Array(await pending.read())[0];
    return { loss, perplexity: perplexity(loss), tokens };
  } finally {
    rec.destroy();
  }
}
