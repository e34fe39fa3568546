// The Try step's Generate over the generation Worker (src/workers/generate.worker.ts), started on first use
// so a page that never opens Try never pays for a second copy of the model.
import * as Comlink from 'comlink';
import type { GenerateModel, GenerateWorker } from '../../workers/generate.worker.ts';
import type { Generate } from '../state/try-state.svelte.ts';

export function workerGenerator(model: () => GenerateModel | null): Generate {
  let remote: Comlink.Remote<GenerateWorker> | null = null;
  return async (req) => {
    const current = model();
    if (!current) throw new Error('Load a model in the Model step first.');
    // Written inline so Vite sees the worker and bundles it for `npm run build`.
    remote ??= Comlink.wrap<GenerateWorker>(
      new Worker(new URL('../../workers/generate.worker.ts', import.meta.url), {
        type: 'module',
        name: 'generate',
      }),
    );
    const worker = remote;
    const stop = () => void worker.stop();
    req.signal.addEventListener('abort', stop);
    let text = '';
    try {
      return await worker.generate(
        current,
        {
          prompt: req.prompt,
          maxNewTokens: req.maxNewTokens,
          temperature: req.temperature,
          seed: 0,
          adapter: req.adapter,
        },
        Comlink.proxy((piece: string) => req.onText((text += piece))),
      );
    } finally {
      req.signal.removeEventListener('abort', stop);
    }
  };
}
