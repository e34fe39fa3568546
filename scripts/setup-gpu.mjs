// `npm run setup:gpu`: only the WebGPU step of the test set-up (scripts/setup.mjs). Prints the adapter Dawn
// finds: the machine's GPU, or else Mesa's lavapipe, fetched once into .cache/lavapipe (Debian/Ubuntu, as
// root, without installing it system-wide). `tunelab` commands then find that lavapipe by themselves.
import { SetupError, gpuEnv, probeGpu } from './setup.mjs';

try {
  const env = gpuEnv();
  const adapter = probeGpu({ ...process.env, ...env });
  if (!adapter) throw new SetupError('Dawn finds no adapter after the set-up');
  const f16 = adapter.features.includes('shader-f16') ? 'with' : 'without';
  console.log(`WebGPU adapter: ${adapter.description} (${f16} shader-f16)`);
  if (env.VK_ICD_FILENAMES) console.log(`driver: VK_ICD_FILENAMES=${env.VK_ICD_FILENAMES}`);
} catch (error) {
  if (!(error instanceof SetupError)) throw error;
  console.error(`tunelab setup: ${error.message}`);
  process.exitCode = 1;
}
