// `tunelab models`: the ladder of supported Hub models (src/engine/model/ladder.ts) with their parameter count
// and the memory a LoRA training step needs, and against --gpu-memory whether each fits, needs --recompute or
// does not fit. Pure arithmetic on the configs: no GPU, no download.
import { TRIAL_FIELD_SPECS } from '../engine/train/config.ts';
import { formatBytes } from '../engine/model/memory.ts';
import {
  formatParameters,
  ladderRows,
  pendingLadderEntries,
  type LadderRow,
} from '../engine/model/ladder.ts';
import { numberFlag, parseFlags, UsageError } from './args.ts';

const { batch, seq, r } = TRIAL_FIELD_SPECS;

export const MODELS_USAGE = `tunelab models [--gpu-memory GiB] [--batch N] [--seq N] [--r N] [--precision f16|f32]

  The supported Hub models by family and size, with their parameters and the memory of a LoRA training step
  (all-linear adapters of rank --r, default ${r.default}; batch ${batch.default}, seq ${seq.default} unless given) with every block's
  activations kept, and with --recompute. With --gpu-memory (the GiB your GPU has), whether each fits, needs
  --recompute or does not fit. Download a model with huggingface-cli and pass its folder to --model.`;

function table(rows: LadderRow[], withFit: boolean): string {
  const head = ['family', 'model', 'params', 'memory', 'with --recompute', ...(withFit ? ['verdict'] : [])];
  const lines = rows.map((row) => [
    row.entry.ladder,
    row.entry.id,
    formatParameters(row.parameters),
    formatBytes(row.estimate.totalBytes),
    formatBytes(row.recomputed.totalBytes),
    ...(withFit ? [row.fit === 'needs recompute' ? 'needs --recompute' : (row.fit ?? '')] : []),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const format = (cells: string[]) =>
    cells
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [format(head), ...lines.map(format)].join('\n');
}

export async function modelsCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    'gpu-memory': { type: 'string' },
    batch: { type: 'string' },
    seq: { type: 'string' },
    r: { type: 'string' },
    precision: { type: 'string' },
  });
  const gib = numberFlag(flags, 'gpu-memory', undefined, { above: 0, max: 1 << 20 });
  const precision = flags.precision ?? 'f16';
  if (precision !== 'f16' && precision !== 'f32') {
    throw new UsageError(`--precision: expected f16 or f32, got '${String(precision)}'`);
  }
  const run = {
    batch: numberFlag(flags, 'batch', batch.default, { min: 1, integer: true, max: 1 << 16 })!,
    seq: numberFlag(flags, 'seq', seq.default, { min: 2, integer: true, max: 1 << 20 })!,
    precision,
    lora: {
      rank: numberFlag(flags, 'r', r.default, { min: 1, integer: true, max: 4096 })!,
      targets: 'all-linear',
    },
    // A total only: a real GPU's binding limits (≥ 1 GiB today) hold these models' largest tensors.
    limits:
      gib === undefined
        ? undefined
        : { maxBufferSize: Infinity, maxStorageBufferBindingSize: Infinity, budgetBytes: gib * 2 ** 30 },
  } as const;
  const rows = ladderRows(run);
  process.stdout.write(`${table(rows, gib !== undefined)}\n`);
  const note = `LoRA r ${run.lora.rank} on every linear, batch ${run.batch}, seq ${run.seq} (shorter where a model's positions end), ${precision}`;
  process.stdout.write(
    `\n${note}${gib === undefined ? '; --gpu-memory GiB says what fits' : `, ${gib} GiB`}.\n`,
  );
  const pending = pendingLadderEntries();
  if (pending.length > 0) {
    process.stdout.write(
      `Listed once their family loads in this build: ${pending.map((e) => e.id).join(', ')}.\n`,
    );
  }
  return 0;
}
