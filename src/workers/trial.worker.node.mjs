// Entry of a Node trial worker thread: TypeScript (tsx) and Vite-style `?raw` shader imports, then the worker.
import { register } from 'tsx/esm/api';
import '../../scripts/raw-loader.mjs';

register();
await import('./trial.worker.node.ts');
