// Prompt text in, streamed text out: one loaded base model, and per request an optional PEFT adapter applied
// unmerged. The CLI's `generate` and the playground's Try step (in a Worker) both use this, so the prompt
// checks, EOS set and adapter handling are written once.
import { BufferArena, type Gpu } from '../gpu/index.ts';
import { importPeftAdapter, type ImportedAdapter } from '../lora/peft.ts';
import { generate, type GenerateResult, type SamplingOptions } from './generate.ts';
import { InferenceSession, asInferenceModel } from './inference.ts';
import type { LoraAdapter } from './linear.ts';
import type { LoadedModel } from './load.ts';
import { loraAdapters } from './lora-bindings.ts';
import type { OpenedModel } from './open.ts';

/** PEFT files as PEFT writes them: adapter_config.json text and adapter_model.safetensors bytes. */
export interface AdapterFiles {
  config: string;
  weights: Uint8Array;
}

export interface TextRequest extends SamplingOptions {
  prompt: string;
  maxNewTokens: number;
  /** PEFT files, or an adapter already imported (validated) with importPeftAdapter. */
  adapter?: AdapterFiles | ImportedAdapter | null;
  signal?: AbortSignal;
  /** Each new piece of text as it is generated (whole characters only). */
  onText?: (piece: string) => void;
}

/** A prompt that cannot run: the message names what is wrong with it. */
export class PromptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PromptError';
  }
}

/** Prompt ids (with the tokenizer's special tokens), checked against the model's positions. */
export function promptIds(opened: OpenedModel, prompt: string, maxNewTokens: number): number[] {
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) {
    throw new PromptError(`tokens to generate must be a whole number ≥ 1, got ${maxNewTokens}`);
  }
  const ids = opened.tokenizer.encode(prompt, { addSpecialTokens: true });
  if (ids.length === 0) throw new PromptError('the prompt encodes to no tokens');
  const positions = opened.spec.maxPositions;
  if (ids.length >= positions) {
    throw new PromptError(
      `the prompt has ${ids.length} tokens: no room left in the model's ${positions} positions`,
    );
  }
  return ids;
}

export class TextGenerator {
  readonly #eos: number[];

  constructor(
    readonly gpu: Gpu,
    readonly opened: OpenedModel,
    readonly loaded: LoadedModel,
  ) {
    // config.json's EOS ids and the tokenizer's (training rows end with the tokenizer's).
    const tokenizerEos = opened.tokenizer.eosTokenId;
    this.#eos = [...new Set([...opened.spec.eosTokenIds, ...(tokenizerEos === null ? [] : [tokenizerEos])])];
  }

  async generate(request: TextRequest): Promise<GenerateResult> {
    const { prompt, maxNewTokens, adapter, signal, onText, ...sampling } = request;
    const ids = promptIds(this.opened, prompt, maxNewTokens);
    const capacity = Math.min(this.opened.spec.maxPositions, ids.length + maxNewTokens);
    // Imported before anything is allocated: a bad adapter changes nothing on the device.
    const imported =
      adapter && 'weights' in adapter
        ? await importPeftAdapter(adapter.config, adapter.weights, this.opened.spec)
        : (adapter ?? null);
    const arena = new BufferArena(this.gpu);
    let session: InferenceSession | null = null;
    try {
      // Inference: no gradients, and dropout is off (the session's linear context is in eval mode).
      const adapters = imported
        ? loraAdapters(imported.config, imported.layout, arena.upload('adapter', imported.params), null)
        : new Map<string, LoraAdapter>();
      session = new InferenceSession(asInferenceModel(this.loaded.withAdapters(adapters)), { capacity });
      return await generate(session, ids, {
        ...sampling,
        maxNewTokens,
        eosTokenIds: this.#eos,
        tokenizer: { decode: (t) => this.opened.tokenizer.decode(t) },
        ...(signal ? { signal } : {}),
        ...(onText ? { onToken: (_id: number, text: string) => onText(text) } : {}),
      });
    } finally {
      session?.destroy();
      arena.destroy();
    }
  }
}
