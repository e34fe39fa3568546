// A trial worker in Node: a worker_threads thread with its own Dawn instance and GPUDevice, exposed to the
// pool over comlink's Node adapter. Started through trial.worker.node.mjs, which installs the TypeScript and
// `?raw` loaders first (a worker thread does not inherit hooks registered with module.register()).
import { parentPort } from 'node:worker_threads';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { nodeGpu } from '../node/dawn.ts';
import { nodeDirectoryFiles } from '../node/files.ts';
import { exposeTrialRunner } from './expose.ts';

if (!parentPort) throw new Error('trial.worker.node.ts runs in a worker thread');
exposeTrialRunner({ gpu: nodeGpu, openDir: nodeDirectoryFiles }, nodeEndpoint(parentPort));
