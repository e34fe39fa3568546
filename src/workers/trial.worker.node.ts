// A trial worker in Node: a worker_threads thread with its own Dawn instance and GPUDevice, exposed to the
// pool over comlink's Node adapter. Started through trial.worker.node.mjs, which installs the TypeScript and
// `?raw` loaders first (a worker thread does not inherit hooks registered with module.register()).
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { nodeGpu } from '../node/dawn.ts';
import { nodeDirectoryFiles } from '../node/files.ts';
import { exposeTrialRunner } from './expose.ts';
import { EXIT_REQUEST } from './exit-request.ts';

if (!parentPort) throw new Error('trial.worker.node.ts runs in a worker thread');
const runner = exposeTrialRunner({ gpu: nodeGpu, openDir: nodeDirectoryFiles }, nodeEndpoint(parentPort));

// The host's terminate (spawn-node.ts): handled between Dawn calls, never inside one. The device goes first and
// the calls in flight settle, so no Dawn work or promise is left for the thread's teardown.
const control = (workerData as { control: MessagePort }).control;
control.on('message', (message) => {
  if (message !== EXIT_REQUEST) return;
  void runner.shutdown(5000).then(() => process.exit(1));
});
control.unref();
