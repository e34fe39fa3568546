// `tunelab generate`: streams a continuation of a prompt with the KV cache, optionally through a PEFT adapter.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { importPeftAdapter } from '../engine/lora/peft.ts';
import { PromptError, promptIds, TextGenerator } from '../engine/model/text-generator.ts';
import { numberFlag, parseFlags, precisionFlag, stringFlag, UsageError } from './args.ts';
import { loadOntoGpu, openModelDir } from './common.ts';
import { cliGpu } from './gpu.ts';

export const GENERATE_USAGE = `tunelab generate --model DIR --prompt TEXT [--adapter DIR] [--max-new-tokens 64]
                 [--temperature 0] [--top-k 0] [--top-p 1] [--seed 0] [--precision auto|f32|f16]

  Greedy at temperature 0; otherwise samples with top-k / top-p. Stops at the model's EOS. --adapter applies a
  PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, e.g. from tunelab train) unmerged.`;

/** One file of the --adapter folder, as bytes; a missing one is a usage error naming it. */
async function adapterFile(dir: string, name: string): Promise<Uint8Array> {
  const path = join(dir, name);
  const bytes = await readFile(path).catch((error: NodeJS.ErrnoException) => {
    const why = error.code === 'ENOENT' || error.code === 'ENOTDIR' ? 'no such file' : error.message;
    throw new UsageError(`--adapter: cannot read ${path}: ${why} (expected a PEFT adapter folder)`);
  });
  return new Uint8Array(bytes);
}

export async function generateCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    model: { type: 'string' },
    prompt: { type: 'string' },
    adapter: { type: 'string' },
    'max-new-tokens': { type: 'string' },
    temperature: { type: 'string' },
    'top-k': { type: 'string' },
    'top-p': { type: 'string' },
    seed: { type: 'string' },
    precision: { type: 'string' },
  });
  const opened = await openModelDir(stringFlag(flags, 'model', true));
  const prompt = stringFlag(flags, 'prompt', true);
  const maxNewTokens = numberFlag(flags, 'max-new-tokens', 64, { min: 1, integer: true })!;
  const sampling = {
    temperature: numberFlag(flags, 'temperature', 0, { min: 0 }),
    topK: numberFlag(flags, 'top-k', 0, { min: 0, integer: true }),
    topP: numberFlag(flags, 'top-p', 1, { above: 0, max: 1 }),
    seed: numberFlag(flags, 'seed', 0, { min: 0, integer: true }),
  };
  try {
    promptIds(opened, prompt, maxNewTokens);
  } catch (e) {
    if (e instanceof PromptError) throw new UsageError(`--prompt: ${e.message}`);
    throw e;
  }
  const adapterDir = stringFlag(flags, 'adapter');
  const adapter = adapterDir
    ? await importPeftAdapter(
        await adapterFile(adapterDir, 'adapter_config.json'),
        await adapterFile(adapterDir, 'adapter_model.safetensors'),
        opened.spec,
      )
    : null;
  let generator: TextGenerator | null = null;
  const gpu = await cliGpu(precisionFlag(flags));
  try {
    generator = new TextGenerator(gpu, opened, await loadOntoGpu(gpu, opened, gpu.precision));
    process.stdout.write(prompt);
    const result = await generator.generate({
      ...sampling,
      prompt,
      maxNewTokens,
      adapter,
      onText: (text) => process.stdout.write(text),
    });
    process.stdout.write('\n');
    process.stderr.write(`${result.tokens.length} tokens, stopped: ${result.stopReason}\n`);
    return 0;
  } finally {
    generator?.loaded.destroy();
    gpu.destroy();
  }
}
