// Node trial workers: worker_threads, each with its own Dawn device (see trial.worker.node.ts).
import { Worker } from 'node:worker_threads';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import type { SpawnWorker } from './pool.ts';

const ENTRY = new URL('./trial.worker.node.mjs', import.meta.url);

export const spawnNodeWorker: SpawnWorker = (index) => {
  const worker = new Worker(ENTRY, { name: `trial-${index}`, stderr: false });
  let terminated = false;
  let lastError = '';
  worker.on('error', (error) => {
    lastError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  });
  return {
    endpoint: nodeEndpoint(worker),
    terminate() {
      terminated = true;
      void worker.terminate();
    },
    onExit(listener) {
      worker.on('exit', (code) => {
        if (!terminated) listener(lastError || `exit code ${code}`);
      });
    },
  };
};
