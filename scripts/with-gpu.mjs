// Runs a command with an environment in which Dawn finds a WebGPU adapter (see setup.mjs), e.g.
//   node scripts/with-gpu.mjs vitest run --project gpu
import { spawnSync } from 'node:child_process';
import { SetupError, chromiumPath, gpuEnv } from './setup.mjs';

const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: node scripts/with-gpu.mjs <command> [args...]');
  process.exit(2);
}
try {
  const env = { ...process.env, ...gpuEnv(), CHROMIUM_PATH: process.env.CHROMIUM_PATH ?? chromiumPath() };
  const result = spawnSync(command, args, { stdio: 'inherit', env, shell: process.platform === 'win32' });
  process.exit(result.status ?? 1);
} catch (error) {
  if (error instanceof SetupError) {
    console.error(`tunelab setup: ${error.message}`);
    process.exit(1);
  }
  throw error;
}
