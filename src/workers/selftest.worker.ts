// A dedicated module Worker that acquires its own GPUDevice and runs the self-test: proof that the engine
// runs off the main thread, as the trial workers of a search will.
import * as Comlink from 'comlink';
import { acquireGpu, type PrecisionChoice } from '../engine/gpu/index.ts';
import { runMatmulSelfTest, type SelfTestResult } from '../engine/selftest.ts';

const api = {
  async selfTest(precision: PrecisionChoice = 'auto'): Promise<SelfTestResult & { adapter: string }> {
    const gpu = await acquireGpu({ precision });
    try {
      const result = await runMatmulSelfTest(gpu);
      return { ...result, adapter: gpu.adapter.architecture || gpu.adapter.vendor };
    } finally {
      gpu.destroy();
    }
  },
};

export type SelfTestWorker = typeof api;
Comlink.expose(api);
