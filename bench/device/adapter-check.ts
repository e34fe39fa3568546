// The tunelab half of the adapter check: does PyTorch + PEFT read tunelab's adapter as the same model?
// Writes under --out:
//   base/          a tiny random Llama checkpoint in HF layout (config.json, model.safetensors, tokenizer files)
//   adapter/       a LoRA adapter trained on it with tunelab's Trainer, exported as PEFT files
//   rows.jsonl     the {"input_ids": [...]} rows the loss is measured on (varied lengths: padding is exercised)
//   tunelab-loss.json  tunelab's mean next-token loss over those rows with the adapter, in --precision (f32 by
//                      default; f16 trains and evaluates on the f16 path, so PEFT's f32 loss differs by f16's error)
// run.sh then runs peft_loss.py on the same three paths and compares (report.ts `compare`).
//
//   node adapter-check.mjs --out DIR [--steps 12] [--precision f32|f16]   (exit 3: no shader-f16 here, skipped)
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { acquireGpu, type Gpu } from '../../src/engine/gpu/index.ts';
import { parseTargets, type LoraConfig } from '../../src/engine/lora/config.ts';
import { loadModel } from '../../src/engine/model/load.ts';
import { openModel, type OpenedModel } from '../../src/engine/model/open.ts';
import { dataTokenizer, padIdOf, parseDataset, type Example } from '../../src/engine/train/data.ts';
import { Trainer } from '../../src/engine/train/trainer.ts';
import { nodeGpu } from '../../src/node/dawn.ts';
import { nodeDirectoryFiles } from '../../src/node/files.ts';
import { buildTinyModel, writeTinyModel } from '../../test/fixtures/tiny-models.ts';
import { rng } from '../../test/reference/random.ts';

const { values: args } = parseArgs({
  options: {
    out: { type: 'string' },
    steps: { type: 'string', default: '12' },
    precision: { type: 'string', default: 'f32' },
  },
});
if (!args.out) throw new Error('adapter-check: --out DIR is required');
const out = args.out;
const steps = Number(args.steps);
if (args.precision !== 'f32' && args.precision !== 'f16') {
  throw new Error(`adapter-check: --precision must be f32 or f16, got ${args.precision}`);
}
const precision: 'f32' | 'f16' = args.precision;
if (!Number.isInteger(steps) || steps < 1)
  throw new Error(`adapter-check: --steps must be ≥ 1, got ${args.steps}`);

// Odd lengths, one row of a single target, a partial last batch: the awkward cases of padding and batching.
const ROW_LENGTHS = [17, 2, 31, 9, 24, 13, 29];
// Below 1e-3 the adapter would barely move the loss and agreement with PEFT would prove little.
const MIN_ADAPTER_EFFECT = 1e-3;
/** Exit status of a check that cannot run here (f16 without shader-f16): run.sh records it as skipped. */
const SKIPPED_EXIT = 3;
const LORA: LoraConfig = {
  r: 8,
  alpha: 16,
  dropout: 0.05,
  targets: parseTargets('all-linear'),
  rslora: false,
};

/** Rows of random ids below the tokenizer's plain vocabulary, as the jsonl a user would give. */
function rowsJsonl(opened: OpenedModel): string {
  const next = rng(2024);
  const vocab = Math.min(opened.spec.vocab, opened.tokenizer.vocabSize);
  const rows = ROW_LENGTHS.map((n) => ({
    input_ids: Array.from({ length: n }, () => Math.floor(next() * vocab)),
  }));
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/** The rows as tunelab reads a .jsonl file (the CLI's path), none truncated. */
function examplesOf(opened: OpenedModel, text: string): Example[] {
  const seq = Math.max(...ROW_LENGTHS) - 1;
  const data = parseDataset('rows.jsonl', text, dataTokenizer(opened.tokenizer), { seq });
  if (data.stats.truncated !== 0)
    throw new Error(`adapter-check: ${data.stats.truncated} rows were truncated`);
  return data.examples;
}

async function train(gpu: Gpu, opened: OpenedModel, examples: Example[]) {
  const loaded = await loadModel(gpu, opened, { precision });
  const padId = padIdOf(dataTokenizer(opened.tokenizer));
  const trainer = new Trainer(gpu, loaded, examples, [], padId, {
    lora: LORA,
    optimizer: 'adamw',
    lr: 1e-2, // large on purpose: B must move well away from PEFT's zero init within a few steps
    schedule: 'constant',
    batch: 3,
    accum: 1,
    seq: Math.max(...ROW_LENGTHS) - 1,
    steps,
    seed: 7,
  });
  // B starts at zero, so the untrained adapter is the identity: this is the base model's loss.
  const base = await trainer.evaluate(examples);
  await trainer.run();
  const adapted = await trainer.evaluate(examples);
  const params = await trainer.readParams();
  let maxAbsB = 0;
  for (const s of trainer.layout.segments.filter((x) => x.kind === 'B')) {
    for (let i = s.offset; i < s.offset + s.length; i++) maxAbsB = Math.max(maxAbsB, Math.abs(params[i]));
  }
  const files = await trainer.exportAdapter(join(out, 'base'));
  trainer.destroy();
  loaded.destroy();
  return { base, adapted, maxAbsB, files };
}

const baseDir = join(out, 'base');
const adapterDir = join(out, 'adapter');
const rowsFile = join(out, 'rows.jsonl');
await writeTinyModel(buildTinyModel({ arch: 'llama', dtype: 'F32', seed: 3 }), baseDir);
// Read back from disk, as PEFT will: the check covers the files, not an in-memory copy.
const opened = await openModel(await nodeDirectoryFiles(baseDir));
const rowsText = rowsJsonl(opened);
await writeFile(rowsFile, rowsText);
const gpu = await acquireGpu({ gpu: nodeGpu(), precision: precision === 'f32' ? 'f32' : 'auto' });
if (gpu.precision !== precision) {
  console.log('TUNELAB_SKIPPED this adapter has no shader-f16');
  process.exit(SKIPPED_EXIT);
}
const { base, adapted, maxAbsB, files } = await train(gpu, opened, examplesOf(opened, rowsText));
await mkdir(adapterDir, { recursive: true });
for (const [name, contents] of Object.entries(files)) await writeFile(join(adapterDir, name), contents);
const effect = Math.abs(adapted.valLoss - base.valLoss) / base.valLoss;
const result = {
  loss: adapted.valLoss,
  tokens: adapted.tokens,
  baseLoss: base.valLoss,
  adapterEffect: effect,
  maxAbsB,
  steps,
  precision,
  adapter: [gpu.adapter.vendor, gpu.adapter.architecture, gpu.adapter.description].filter(Boolean).join(' '),
  base: baseDir,
  adapterDir,
  rows: rowsFile,
};
await writeFile(join(out, 'tunelab-loss.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(JSON.stringify(result));
gpu.destroy();
if (!(effect > MIN_ADAPTER_EFFECT)) {
  console.error(
    `adapter-check: the trained adapter moves the loss by ${effect.toExponential(2)} (relative), under ` +
      `${MIN_ADAPTER_EFFECT}: a PEFT match would not show that the adapter is read correctly`,
  );
  process.exit(1);
}
process.exit(0);
