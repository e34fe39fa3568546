// The Try step's Generate over the generation Worker (src/workers/generate.worker.ts), started on first use
// so a page that never opens Try never pays for a second copy of the model; `dispose` ends the Worker (and
// frees its GPU memory) before a search needs the GPU for its trial workers.
import * as Comlink from 'comlink';
import type { GenerateModel, GenerateWorker } from '../../workers/generate.worker.ts';
import type { Generate } from '../state/try-state.svelte.ts';

export interface WorkerGenerator {
  generate: Generate;
  dispose(): void;
}

export function workerGenerator(model: () => GenerateModel | null): WorkerGenerator {
  let worker: Worker | null = null;
  let remote: Comlink.Remote<GenerateWorker> | null = null;
  return {
    async generate(req) {
      const current = model();
      if (!current) throw new Error('Load a model in the Model step first.');
      if (req.signal.aborted) return { text: '', tokens: [], stopReason: 'aborted' };
      if (!remote) {
        // Written inline so Vite sees the worker and bundles it for `npm run build`.
        worker = new Worker(new URL('../../workers/generate.worker.ts', import.meta.url), {
          type: 'module',
          name: 'generate',
        });
        remote = Comlink.wrap<GenerateWorker>(worker);
      }
      const target = remote;
      const stop = () => void target.stop();
      req.signal.addEventListener('abort', stop);
      let text = '';
      try {
        return await target.generate(
          current,
          {
            prompt: req.prompt,
            maxNewTokens: req.maxNewTokens,
            temperature: req.temperature,
            seed: req.seed,
            adapter: req.adapter,
          },
          Comlink.proxy((piece: string) => req.onText((text += piece))),
        );
      } finally {
        req.signal.removeEventListener('abort', stop);
      }
    },
    dispose() {
      remote?.[Comlink.releaseProxy]();
      worker?.terminate();
      remote = worker = null;
    },
  };
}
