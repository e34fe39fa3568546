// The Try step: one prompt, the base model and base + best adapter side by side, streamed token by token.
// Generation (KV cache) runs in a Worker of its own (src/ui/lib/worker-generator.ts); the generator is
// pluggable so the state can be driven without one.
import type { Generated } from '../../workers/generate.worker.ts';
import { describeError } from '../lib/errors.ts';

export type { Generated };

export interface GenerateRequest {
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  /** Sampling seed (temperature > 0): each Generate click draws new text, the two sides the same seed. */
  seed: number;
  /** PEFT files of the adapter, or null for the base model alone. */
  adapter: { config: string; weights: Uint8Array<ArrayBuffer> } | null;
  onText: (text: string) => void;
  signal: AbortSignal;
}

export type Generate = (req: GenerateRequest) => Promise<Generated>;

const STOPPED: Record<Generated['stopReason'], string> = {
  eos: 'stopped at end of text',
  length: 'token limit reached',
  capacity: "the model's context is full",
  aborted: 'cancelled',
};

const summary = (g: Generated) =>
  `${g.tokens.length} token${g.tokens.length === 1 ? '' : 's'} · ${STOPPED[g.stopReason]}`;

export class TryState {
  prompt = $state('12+34=');
  maxNewTokens = $state(16);
  temperature = $state(0);
  base = $state('');
  tuned = $state('');
  /** How each side ended, e.g. '16 tokens · token limit reached'. */
  baseInfo = $state('');
  tunedInfo = $state('');
  baseIds = $state.raw<number[]>([]);
  tunedIds = $state.raw<number[]>([]);
  busy = $state(false);
  error = $state('');
  generator = $state.raw<Generate | null>(null);
  #controller: AbortController | null = null;
  #clicks = 0;

  async generate(adapter: GenerateRequest['adapter']): Promise<void> {
    const gen = this.generator;
    if (!gen || this.busy) return;
    this.busy = true;
    this.error = '';
    this.base = this.tuned = this.baseInfo = this.tunedInfo = '';
    this.baseIds = this.tunedIds = [];
    const controller = (this.#controller = new AbortController());
    const common = {
      prompt: this.prompt,
      maxNewTokens: this.maxNewTokens,
      temperature: this.temperature,
      seed: this.#clicks++,
      signal: controller.signal,
    };
    try {
      const base = await gen({ ...common, adapter: null, onText: (t) => (this.base = t) });
      this.base = base.text;
      this.baseInfo = summary(base);
      this.baseIds = base.tokens;
      if (adapter && !controller.signal.aborted) {
        const tuned = await gen({ ...common, adapter, onText: (t) => (this.tuned = t) });
        this.tuned = tuned.text;
        this.tunedInfo = summary(tuned);
        this.tunedIds = tuned.tokens;
      }
    } catch (e) {
      this.error = describeError(e);
    } finally {
      this.busy = false;
      this.#controller = null;
    }
  }

  cancel(): void {
    this.#controller?.abort();
  }
}
