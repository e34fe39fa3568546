// `tunelab eval`: mean next-token loss and perplexity of a model on a .txt or .jsonl file.
import { BufferArena } from '../engine/gpu/index.ts';
import { padIdOf, dataTokenizer } from '../engine/train/data.ts';
import { evaluateLoss } from '../engine/train/evaluate.ts';
import { numberFlag, parseFlags, precisionFlag, stringFlag, UsageError } from './args.ts';
import {
  COLUMN_FLAGS,
  COLUMN_USAGE,
  columnsFromFlags,
  loadOntoGpu,
  openModelDir,
  Progress,
  readDataset,
} from './common.ts';
import { cliGpu } from './gpu.ts';

export const EVAL_USAGE = `tunelab eval --model DIR --data FILE [--seq N] [--batch N] [--precision auto|f32|f16] [--json]

  Mean next-token loss and perplexity. FILE is .txt (tokenised with the model's tokenizer and cut into
  sequences of --seq tokens) or .jsonl (one sequence per row; a row with "input_ids" is used as-is, no
  BOS/EOS added), each truncated to --seq tokens. The loss averages -log p(x[t+1] | x[<=t]) over every
  predicted token of every row; a .csv or .jsonl file's rows are read as \`train\` reads them.
${COLUMN_USAGE}`;

export async function evalCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    model: { type: 'string' },
    data: { type: 'string' },
    seq: { type: 'string' },
    batch: { type: 'string' },
    precision: { type: 'string' },
    json: { type: 'boolean' },
    ...COLUMN_FLAGS,
  });
  const dir = stringFlag(flags, 'model', true);
  const file = stringFlag(flags, 'data', true);
  const seq = numberFlag(flags, 'seq', 256, { min: 2, integer: true })!;
  const batch = numberFlag(flags, 'batch', 1, { min: 1, integer: true })!;
  const precisionChoice = precisionFlag(flags);
  const columns = columnsFromFlags(flags);

  const opened = await openModelDir(dir);
  if (seq > opened.spec.maxPositions) {
    throw new UsageError(`--seq ${seq} exceeds the model's ${opened.spec.maxPositions} positions`);
  }
  // A row of seq tokens is seq − 1 positions predicting the next token each.
  const dataset = await readDataset(file, opened, { seq: seq - 1, columns });
  const gpu = await cliGpu(precisionChoice);
  try {
    const loaded = await loadOntoGpu(gpu, opened, gpu.precision);
    const model = loaded.withAdapters(new Map());
    const arena = new BufferArena(gpu);
    const acts = model.createActivations(arena, batch, seq - 1);
    const progress = new Progress('evaluating');
    const padId = padIdOf(dataTokenizer(opened.tokenizer));
    const result = await evaluateLoss(model, acts, dataset.examples, padId, (done, total) =>
      progress.update(done, total),
    );
    progress.done(`${result.tokens} tokens`);
    if (flags.json === true) {
      process.stdout.write(
        `${JSON.stringify({ loss: result.loss, perplexity: result.perplexity, tokens: result.tokens })}\n`,
      );
    } else {
      process.stdout.write(
        `loss ${result.loss.toFixed(4)}  perplexity ${result.perplexity.toFixed(3)}  over ${result.tokens} tokens (${gpu.precision})\n`,
      );
    }
    arena.destroy();
    loaded.destroy();
    return 0;
  } finally {
    gpu.destroy();
  }
}
