// The CLI's WebGPU: Dawn, on the machine's GPU or (when Dawn finds none) a lavapipe that `npm run setup:gpu`
// fetched into .cache/ — chosen before Dawn creates its Vulkan instance. Nothing is installed from here.
import { acquireGpu, type Gpu, type PrecisionChoice } from '../engine/gpu/index.ts';
import { adapterEnv } from '../node/adapter.ts';
import { nodeGpu } from '../node/dawn.ts';

let settled = false;

/** Chooses the driver once; worker threads inherit process.env, so the choice holds for every trial worker. */
export function settleGpuEnv(): void {
  if (settled) return;
  Object.assign(process.env, adapterEnv());
  settled = true;
}

export async function cliGpu(precision: PrecisionChoice = 'auto'): Promise<Gpu> {
  settleGpuEnv();
  return acquireGpu({ gpu: nodeGpu(), precision });
}
