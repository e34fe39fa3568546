// Browser trial workers: dedicated module Workers (Vite bundles trial.worker.ts and its imports).
import type { SpawnWorker } from './pool.ts';

export const spawnBrowserWorker: SpawnWorker = (index) => {
  const worker = new Worker(new URL('./trial.worker.ts', import.meta.url), {
    type: 'module',
    name: `trial-${index}`,
  });
  const listeners: ((reason: string) => void)[] = [];
  // An uncaught error ends nothing by itself in a Worker, but a trial worker's state is then unknown.
  worker.addEventListener('error', (event) => {
    event.preventDefault();
    listeners.forEach((l) => l(event.message || 'uncaught error in the worker'));
  });
  return {
    endpoint: worker,
    terminate: () => worker.terminate(),
    onExit: (listener) => void listeners.push(listener),
  };
};
