// Writes tiny random checkpoints in Hugging Face layout (config.json with the real configs' structure at tiny
// size, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json), one folder per family,
// for trying a family with the CLI or the page's folder picker:
//
//   node --import tsx scripts/make-tiny-models.ts OUT_DIR [arch ...] [--dtype F32|F16|BF16] [--seed N]
//
// The tests build the same checkpoints in memory (test/fixtures/tiny-models.ts, deterministic from the seed).
// llama3: Llama-3.2-1B's llama3 rope_scaling; qwen3: Qwen3-0.6B's q/k norms and head_dim; smollm3: SmolLM3-3B's
// NoPE layers; gemma3: Gemma-3-270M's sliding and global layers, two RoPE bases, head_dim, sandwich norms and
// chat template. Default: every family.
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { SafetensorsDtype } from '../src/engine/checkpoint/dtypes.ts';
import { buildTinyModel, writeTinyModel, type TinyArch } from '../test/fixtures/tiny-models.ts';

const ARCHS: TinyArch[] = ['llama', 'llama3', 'qwen2', 'qwen3', 'smollm3', 'mistral', 'gemma3', 'gpt2'];
const DTYPES: SafetensorsDtype[] = ['F32', 'F16', 'BF16'];

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { dtype: { type: 'string', default: 'F32' }, seed: { type: 'string', default: '1' } },
});
const [out, ...asked] = positionals;
const dtype = values.dtype as SafetensorsDtype;
const seed = Number(values.seed);
const unknown = asked.filter((a) => !ARCHS.includes(a as TinyArch));
if (!out || unknown.length > 0 || !DTYPES.includes(dtype) || !Number.isInteger(seed)) {
  const why = unknown.length > 0 ? `unknown family ${unknown.join(', ')}; ` : '';
  process.stderr.write(
    `${why}usage: make-tiny-models.ts OUT_DIR [${ARCHS.join('|')} ...] [--dtype F32|F16|BF16] [--seed N]\n`,
  );
  process.exit(2);
}
for (const arch of asked.length > 0 ? (asked as TinyArch[]) : ARCHS) {
  const dir = await writeTinyModel(buildTinyModel({ arch, dtype, seed }), join(out, `tiny-${arch}`));
  process.stdout.write(`${dir}\n`);
}
