// Node module hook: `import text from './file.wgsl?raw'` yields the file's text, as Vite does, so the engine's
// shader imports work unchanged in the CLI and benchmarks (`node --import ./scripts/raw-loader.mjs`).
import { register } from 'node:module';

register('./raw-hooks.mjs', import.meta.url);
