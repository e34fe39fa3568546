// `tunelab generate`: streams a continuation of a prompt with the KV cache, optionally through a PEFT adapter.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { BufferArena } from '../engine/gpu/index.ts';
import { importPeftAdapter } from '../engine/lora/peft.ts';
import { generate } from '../engine/model/generate.ts';
import { InferenceSession, asInferenceModel } from '../engine/model/inference.ts';
import type { LoraAdapter } from '../engine/model/linear.ts';
import { loraAdapters } from '../engine/model/lora-bindings.ts';
import { numberFlag, parseFlags, precisionFlag, stringFlag, UsageError } from './args.ts';
import { loadOntoGpu, openModelDir } from './common.ts';
import { cliGpu } from './gpu.ts';

export const GENERATE_USAGE = `tunelab generate --model DIR --prompt TEXT [--adapter DIR] [--max-new-tokens 64]
                 [--temperature 0] [--top-k 0] [--top-p 1] [--seed 0] [--precision auto|f32|f16]

  Greedy at temperature 0; otherwise samples with top-k / top-p. Stops at the model's EOS. --adapter applies a
  PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors, e.g. from tunelab train) unmerged.`;

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
  const ids = opened.tokenizer.encode(prompt, { addSpecialTokens: true });
  if (ids.length === 0) throw new UsageError('--prompt: the prompt encodes to no tokens');
  const capacity = Math.min(opened.spec.maxPositions, ids.length + maxNewTokens);
  if (ids.length >= capacity) {
    throw new UsageError(
      `--prompt: ${ids.length} tokens leave no room in the model's ${opened.spec.maxPositions} positions`,
    );
  }
  const adapterDir = stringFlag(flags, 'adapter');
  const adapter = adapterDir
    ? await importPeftAdapter(
        await readFile(join(adapterDir, 'adapter_config.json'), 'utf8'),
        new Uint8Array(await readFile(join(adapterDir, 'adapter_model.safetensors'))),
        opened.spec,
      )
    : null;

  const gpu = await cliGpu(precisionFlag(flags));
  const arena = new BufferArena(gpu);
  try {
    const loaded = await loadOntoGpu(gpu, opened, gpu.precision);
    // Inference: no gradients, and dropout is off (the session's linear context is in eval mode).
    const adapters = adapter
      ? loraAdapters(
          adapter.config,
          adapter.layout,
          arena.upload('adapter', adapter.params as Float32Array<ArrayBuffer>),
          null,
        )
      : new Map<string, LoraAdapter>();
    const session = new InferenceSession(asInferenceModel(loaded.withAdapters(adapters)), { capacity });
    process.stdout.write(prompt);
    const result = await generate(session, ids, {
      ...sampling,
      maxNewTokens,
      // config.json's EOS ids and the tokenizer's (training rows end with the tokenizer's).
      eosTokenIds: [
        ...new Set([
          ...opened.spec.eosTokenIds,
          ...(opened.tokenizer.eosTokenId === null ? [] : [opened.tokenizer.eosTokenId]),
        ]),
      ],
      tokenizer: { decode: (t) => opened.tokenizer.decode(t) },
      onToken: (_id, text) => process.stdout.write(text),
    });
    process.stdout.write('\n');
    process.stderr.write(`${result.tokens.length} tokens, stopped: ${result.stopReason}\n`);
    session.destroy();
    loaded.destroy();
    return 0;
  } finally {
    arena.destroy();
    gpu.destroy();
  }
}
