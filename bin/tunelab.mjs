#!/usr/bin/env node
// `npx tunelab <command>`: runs the command line built as plain JavaScript (dist-cli/tunelab.mjs, made by
// `npm run build` and before `npm pack`). Only in a development checkout that has not been built does it run
// the TypeScript sources through tsx (a devDependency) instead.
import { existsSync } from 'node:fs';

const bundle = new URL('../dist-cli/tunelab.mjs', import.meta.url);
if (existsSync(bundle)) {
  await import(bundle.href);
} else if (existsSync(new URL('../src/cli/run.ts', import.meta.url))) {
  const { register } = await import('tsx/esm/api');
  await import('../scripts/raw-loader.mjs');
  register();
  await import('../src/cli/run.ts');
} else {
  console.error('tunelab: dist-cli/tunelab.mjs is missing: run `npm run build` in the tunelab folder');
  process.exitCode = 1;
}
