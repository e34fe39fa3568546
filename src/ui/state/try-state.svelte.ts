// The Try step: one prompt, the base model and base + best adapter side by side, streamed token by token.
// Generation (KV cache) comes from the engine's generator; until it is available the step says so.

export interface GenerateRequest {
  prompt: string;
  maxNewTokens: number;
  temperature: number;
  /** PEFT files of the adapter, or null for the base model alone. */
  adapter: { config: string; weights: Uint8Array<ArrayBuffer> } | null;
  onText: (text: string) => void;
  signal: AbortSignal;
}

export type Generate = (req: GenerateRequest) => Promise<void>;

export class TryState {
  prompt = $state('12+34=');
  maxNewTokens = $state(16);
  temperature = $state(0);
  base = $state('');
  tuned = $state('');
  busy = $state(false);
  error = $state('');
  generator = $state.raw<Generate | null>(null);
  #controller: AbortController | null = null;

  async generate(adapter: GenerateRequest['adapter']): Promise<void> {
    const gen = this.generator;
    if (!gen || this.busy) return;
    this.busy = true;
    this.error = '';
    this.base = '';
    this.tuned = '';
    const controller = (this.#controller = new AbortController());
    const common = {
      prompt: this.prompt,
      maxNewTokens: this.maxNewTokens,
      temperature: this.temperature,
      signal: controller.signal,
    };
    try {
      await gen({ ...common, adapter: null, onText: (t) => (this.base = t) });
      if (adapter) await gen({ ...common, adapter, onText: (t) => (this.tuned = t) });
    } catch (e) {
      this.error = e instanceof Error ? e.message : String(e);
    } finally {
      this.busy = false;
      this.#controller = null;
    }
  }

  cancel(): void {
    this.#controller?.abort();
  }
}
