// Reactive state of the GPU panel: detection, then self-tests on the main thread and in a worker.
import * as Comlink from 'comlink';
import { acquireGpu, GpuError, WEBGPU_HELP, type Gpu } from '../engine/gpu/index.ts';
import { runMatmulSelfTest, type SelfTestResult } from '../engine/selftest.ts';
import type { SelfTestWorker } from '../workers/selftest.worker.ts';

export type GpuPhase = 'detecting' | 'ready' | 'unavailable';

export interface SelfTestRow extends SelfTestResult {
  where: 'page' | 'worker';
}

const SHOWN_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupsPerDimension',
] as const;

export class GpuStatus {
  phase = $state<GpuPhase>('detecting');
  message = $state('');
  adapter = $state.raw<Gpu['adapter'] | null>(null);
  features = $state.raw<string[]>([]);
  limits = $state.raw<[string, number][]>([]);
  precision = $state<'f16' | 'f32'>('f32');
  running = $state(false);
  results = $state.raw<SelfTestRow[]>([]);
  error = $state('');
  #gpu: Gpu | null = null;

  async detect(): Promise<void> {
    try {
      const gpu = await acquireGpu({
        onLost: (e) => {
          this.error = e.message;
        },
      });
      this.#gpu = gpu;
      this.adapter = gpu.adapter;
      this.features = [...gpu.features].sort();
      this.limits = SHOWN_LIMITS.map((name) => [name, gpu.limits[name]]);
      this.precision = gpu.precision;
      this.phase = 'ready';
    } catch (error) {
      this.phase = 'unavailable';
      this.message = error instanceof GpuError ? error.message : `${String(error)} ${WEBGPU_HELP}`;
    }
  }

  /** The page's own device (kernel tuning runs on it); null until detected. */
  get gpu(): Gpu | null {
    return this.#gpu;
  }

  get hasF16(): boolean {
    return this.features.includes('shader-f16');
  }

  async runSelfTest(): Promise<void> {
    if (!this.#gpu || this.running) return;
    this.running = true;
    this.error = '';
    this.results = [];
    try {
      const page = await runMatmulSelfTest(this.#gpu);
      this.results = [{ ...page, where: 'page' }];
      // eslint-disable-next-line svelte/prefer-svelte-reactivity -- a one-off module URL, not reactive state
      const worker = new Worker(new URL('../workers/selftest.worker.ts', import.meta.url), {
        type: 'module',
      });
      try {
        const remote = Comlink.wrap<SelfTestWorker>(worker);
        const inWorker = await remote.selfTest();
        this.results = [...this.results, { ...inWorker, where: 'worker' }];
      } finally {
        worker.terminate();
      }
    } catch (error) {
      this.error = error instanceof Error ? error.message : String(error);
    } finally {
      this.running = false;
    }
  }
}
