// Node trial workers: worker_threads, each with its own Dawn device (see trial.worker.node.ts).
//
// Terminating a thread from outside is not safe with Dawn: if the thread is inside a Dawn call when V8 stops it,
// dawn.node's exception turns into a fatal napi_throw that aborts the whole process. So `terminate` asks the
// thread, over a control port of its own, to free its device and exit between calls (its event loop runs only
// between them), and forces it only if it has not gone within EXIT_GRACE_MS.
import { MessageChannel, Worker } from 'node:worker_threads';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { EXIT_REQUEST } from './exit-request.ts';
import type { SpawnWorker } from './pool.ts';

const ENTRY = new URL('./trial.worker.node.mjs', import.meta.url);
const EXIT_GRACE_MS = 10_000;

export const spawnNodeWorker: SpawnWorker = (index) => {
  const control = new MessageChannel();
  const worker = new Worker(ENTRY, {
    name: `trial-${index}`,
    stderr: false,
    workerData: { control: control.port2 },
    transferList: [control.port2],
  });
  let terminated = false;
  let exited = false;
  let force: ReturnType<typeof setTimeout> | undefined;
  let lastError = '';
  worker.on('error', (error) => {
    lastError = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  });
  worker.once('exit', () => {
    exited = true;
    clearTimeout(force);
    control.port1.close();
  });
  return {
    endpoint: nodeEndpoint(worker),
    terminate() {
      if (terminated || exited) return;
      terminated = true;
      control.port1.postMessage(EXIT_REQUEST);
      force = setTimeout(() => void worker.terminate(), EXIT_GRACE_MS);
      force.unref();
    },
    onExit(listener) {
      worker.on('exit', (code) => {
        if (!terminated) listener(lastError || `exit code ${code}`);
      });
    },
  };
};
