// `tunelab train`: one LoRA fine-tune, written as a PEFT adapter plus metrics.jsonl.
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, rename } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { dataTokenizer, padIdOf, splitExamples, type Example } from '../engine/train/data.ts';
import { defaultTrialConfig, trainerOptionsOf } from '../engine/train/config.ts';
import { Trainer } from '../engine/train/trainer.ts';
import { numberFlag, parseFlags, stringFlag, TRAIN_FLAGS, trialConfigFromFlags, UsageError } from './args.ts';
import {
  checkAdapterFits,
  checkOutDir,
  COLUMN_FLAGS,
  COLUMN_USAGE,
  columnsFromFlags,
  loadOntoGpu,
  openModelDir,
  Progress,
  readDataset,
} from './common.ts';
import { cliGpu } from './gpu.ts';
import { AUTOTUNE_USAGE, prepareKernelTuning } from './tuning.ts';
import { writeFilesAtomic } from '../node/files.ts';

const d = defaultTrialConfig();

export const TRAIN_USAGE = `tunelab train --model DIR --data FILE [--val FILE | --val-ratio X] --out DIR [options]

  LoRA:        --targets q_proj,v_proj|all-linear|attention  --r ${d.r}  --alpha 2r  --dropout ${d.dropout}  --rslora
               --loraplus-lr-ratio X (${d.loraplusLrRatio} = off; LoRA+: every B learns at X × its A's rate, ~16)
  optimizer:   --optimizer adamw|sgd (${d.optimizer})  --lr ${d.lr}  --beta1 ${d.beta1}  --beta2 ${d.beta2}  --eps ${d.eps}
               --weight-decay ${d.weightDecay}  --momentum ${d.momentum}  --nesterov  --max-grad-norm ${d.maxGradNorm} (0 = off)
  schedule:    --schedule constant|linear|cosine (${d.schedule})  --warmup N | --warmup-ratio X  --llrd X (${d.llrd} = off)
  batches:     --batch ${d.batch}  --accum ${d.accum}  --seq ${d.seq}  --steps N (${d.steps}) | --epochs E
  run:         --precision auto|f16|f32 (${d.precision})  --seed ${d.seed}  --eval-every N  --base-model NAME (for adapter_config.json)
  memory:      --recompute  keep only each block's input through the forward and recompute the block in the
               backward: same gradients, (layers − 1) fewer blocks of activations, about one more forward
${COLUMN_USAGE}
${AUTOTUNE_USAGE}

  Writes to --out: adapter_config.json, adapter_model.safetensors (PEFT), metrics.jsonl, training_args.json.
  --steps 0 writes the freshly initialised adapter. Bad data is reported with file, line and reason, and then
  nothing is written. While training, metrics go to metrics.jsonl.partial; at the end every file is written
  to a temporary name and renamed, so a run that fails (a full disk, a crash) leaves the previous run's files
  in --out whole. Ctrl-C stops after the current step and writes the adapter trained so far, with
  "stepsDone" and "interrupted": true in training_args.json; the exit status is then 130.`;

/** Test hooks: a stop signal (as Ctrl-C gives) and a call after every step. */
export interface TrainHooks {
  signal?: AbortSignal;
  onTrainStep?(step: number): void;
}

export async function trainCommand(argv: string[], hooks: TrainHooks = {}): Promise<number> {
  const flags = parseFlags(argv, {
    ...TRAIN_FLAGS,
    model: { type: 'string' },
    data: { type: 'string' },
    val: { type: 'string' },
    'val-ratio': { type: 'string' },
    out: { type: 'string' },
    'base-model': { type: 'string' },
    recompute: { type: 'boolean' },
    'no-autotune': { type: 'boolean' },
    ...COLUMN_FLAGS,
  });
  const dir = stringFlag(flags, 'model', true);
  const dataFile = stringFlag(flags, 'data', true);
  const valFile = stringFlag(flags, 'val');
  const out = stringFlag(flags, 'out', true);
  const valRatio = numberFlag(flags, 'val-ratio', undefined, { above: 0, max: 0.9 });
  if (valFile && valRatio !== undefined) throw new UsageError('give --val or --val-ratio, not both');
  const columns = columnsFromFlags(flags);
  await checkOutDir(out);

  const opened = await openModelDir(dir);
  const config = trialConfigFromFlags(flags, opened.spec);
  const options = trainerOptionsOf(config, flags.recompute === true ? { recompute: true } : {});
  if (options.seq > opened.spec.maxPositions) {
    throw new UsageError(`--seq ${options.seq} exceeds the model's ${opened.spec.maxPositions} positions`);
  }
  checkAdapterFits(options.lora, opened.spec);
  // Everything the run depends on is checked before anything is written.
  const data = await readDataset(dataFile, opened, { seq: options.seq, columns });
  let train: Example[] = data.examples;
  let validation: Example[] = [];
  if (valFile) {
    validation = (await readDataset(valFile, opened, { seq: options.seq, classes: data.classes, columns }))
      .examples;
  } else if (valRatio !== undefined) {
    ({ train, validation } = splitExamples(data.examples, valRatio, options.seed, basename(dataFile)));
  }
  if (data.classes) options.classes = data.classes;
  if ((options.evalEvery ?? 0) > 0 && validation.length === 0) {
    throw new UsageError('--eval-every needs validation data: give --val FILE or --val-ratio X');
  }
  process.stderr.write(
    `data: ${data.format}, ${train.length} training and ${validation.length} validation examples ` +
      `(${data.stats.tokens} tokens, ${data.stats.truncated} truncated to ${options.seq + 1})\n`,
  );

  const gpu = await cliGpu(config.precision);
  try {
    const loaded = await loadOntoGpu(gpu, opened, gpu.precision);
    await prepareKernelTuning(gpu, opened.spec, options, flags['no-autotune'] !== true);
    const padId = padIdOf(dataTokenizer(opened.tokenizer));
    const trainer = new Trainer(gpu, loaded, train, validation, padId, options);
    await mkdir(out, { recursive: true });
    // The old metrics.jsonl stays until this run's files replace it together.
    const partialMetrics = join(out, 'metrics.jsonl.partial');
    const metrics = openSync(partialMetrics, 'w');
    const progress = new Progress('training');
    let lastLoss = NaN;
    const abort = new AbortController();
    const onSignal = () => abort.abort();
    process.once('SIGINT', onSignal);
    hooks.signal?.addEventListener('abort', onSignal);
    try {
      await trainer.run({
        signal: abort.signal,
        onStep: (m) => {
          lastLoss = m.loss;
          writeSync(metrics, `${JSON.stringify({ type: 'step', ...m })}\n`);
          hooks.onTrainStep?.(m.step);
          progress.update(
            m.step,
            trainer.totalSteps,
            `loss ${m.loss.toFixed(4)} lr ${m.lr.toExponential(2)} ${Math.round(m.tokensPerSecond)} tok/s` +
              (m.skipped ? ' (skipped: non-finite gradients)' : ''),
          );
        },
        onEval: (m) => {
          writeSync(metrics, `${JSON.stringify({ type: 'eval', ...m })}\n`);
          const scores =
            m.accuracy === undefined
              ? ''
              : `, accuracy ${m.accuracy.toFixed(3)}, macro-F1 ${m.macroF1!.toFixed(3)}`;
          process.stderr.write(
            `\neval at step ${m.step}: val loss ${m.valLoss.toFixed(4)}, perplexity ${m.perplexity.toFixed(3)}${scores}\n`,
          );
        },
      });
    } finally {
      process.off('SIGINT', onSignal);
      hooks.signal?.removeEventListener('abort', onSignal);
      closeSync(metrics);
    }
    const interrupted = abort.signal.aborted;
    progress.done(
      interrupted
        ? `stopped at step ${trainer.step}`
        : `${trainer.step} steps, last loss ${Number.isNaN(lastLoss) ? 'n/a' : lastLoss.toFixed(4)}`,
    );
    const files = await trainer.exportAdapter(stringFlag(flags, 'base-model') ?? dir);
    // What was done, not what was asked: an interrupted run says so.
    const args = { ...options, stepsDone: trainer.step, ...(interrupted ? { interrupted: true } : {}) };
    await writeFilesAtomic([
      ...Object.entries(files).map(([name, contents]) => ({ path: join(out, name), contents })),
      { path: join(out, 'training_args.json'), contents: `${JSON.stringify(args, null, 2)}\n` },
    ]);
    await rename(partialMetrics, join(out, 'metrics.jsonl'));
    process.stdout.write(
      `wrote ${Object.keys(files).join(', ')}, metrics.jsonl, training_args.json to ${out}` +
        (interrupted ? ` (interrupted after ${trainer.step} of ${trainer.totalSteps} steps)` : '') +
        '\n',
    );
    trainer.destroy();
    loaded.destroy();
    return interrupted ? 130 : 0;
  } finally {
    gpu.destroy();
  }
}
