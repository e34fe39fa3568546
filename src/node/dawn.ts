// WebGPU in Node through Dawn (npm `webgpu`). The object returned by `create()` must stay reachable for the
// life of the process: if it is garbage-collected dawn.node crashes at random. Hence the module variable.

import { create, globals } from 'webgpu';

let instance: GPU | null = null;

/**
 * The process-wide Dawn GPU entry point; also installs the WebGPU globals (GPUBufferUsage, ...). Benchmarks may
 * pass Dawn flags through TUNELAB_DAWN_FLAGS, space-separated (e.g. `disable-dawn-features=timestamp_quantization`
 * for unrounded GPU timestamps on a real GPU).
 */
export function nodeGpu(): GPU {
  if (!instance) {
    Object.assign(globalThis, globals);
    instance = create((process.env.TUNELAB_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean));
  }
  return instance;
}
