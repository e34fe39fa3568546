// The CLI's WebGPU: Dawn, on the machine's GPU or (when Dawn finds none) the lavapipe driver that
// scripts/setup.mjs fetches once into .cache/ — set up before Dawn creates its Vulkan instance.
import { acquireGpu, type Gpu, type PrecisionChoice } from '../engine/gpu/index.ts';
import { nodeGpu } from '../node/dawn.ts';

export async function cliGpu(precision: PrecisionChoice = 'auto'): Promise<Gpu> {
  if (!process.env.VK_ICD_FILENAMES && !process.env.TUNELAB_NO_SETUP) {
    const setup = (await import(new URL('../../scripts/setup.mjs', import.meta.url).href)) as {
      gpuEnv(): Record<string, string>;
    };
    Object.assign(process.env, setup.gpuEnv());
  }
  return acquireGpu({ gpu: nodeGpu(), precision });
}
