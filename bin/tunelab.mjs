#!/usr/bin/env node
// `npx tunelab <command>`: runs the TypeScript CLI through tsx, with Vite-style `?raw` shader imports, on a
// WebGPU adapter (the machine's GPU, or lavapipe fetched by scripts/setup.mjs when there is none).
import { register } from 'tsx/esm/api';
import '../scripts/raw-loader.mjs';

register();
const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
