// One way to get a GPUDevice, in a page, in a dedicated Worker, or in Node (Dawn): the caller passes the
// `GPU` object (navigator.gpu by default). Optional features are requested when present, and the adapter's
// maximum buffer limits are asked for so large models fit where the hardware allows.

import {
  GpuDeviceLostError,
  GpuError,
  GpuFeatureError,
  GpuLimitError,
  GpuOutOfMemoryError,
  GpuUnavailableError,
  GpuValidationError,
  WEBGPU_HELP,
} from './errors.ts';
import { PipelineCache } from './program.ts';
import { KernelTuning } from './tuning.ts';
import { Unsettled } from '../unsettled.ts';
import { resolvePrecision, type Precision, type PrecisionChoice } from './precision.ts';

/** Features tunelab uses when the adapter has them. */
export const OPTIONAL_FEATURES = ['shader-f16', 'timestamp-query', 'subgroups'] as const;

/** Limits raised to the adapter's maximum: model weights and activations need the largest buffers possible. */
const RAISED_LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxStorageBuffersPerShaderStage',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupsPerDimension',
] as const;

export interface AcquireOptions {
  /** The WebGPU entry point; defaults to `navigator.gpu`. In Node pass `nodeGpu()` from src/node/dawn.ts. */
  gpu?: GPU;
  /** 'auto' (default) picks f16 when `shader-f16` exists. */
  precision?: PrecisionChoice;
  /** Features that must exist; acquisition fails with GpuFeatureError otherwise. */
  requiredFeatures?: GPUFeatureName[];
  powerPreference?: GPUPowerPreference;
  /** Called once if the device is lost after acquisition. */
  onLost?: (error: GpuDeviceLostError) => void;
}

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  description: string;
  isFallback: boolean;
}

/** A device plus the facts decided once for it: precision, features, limits. */
export class Gpu {
  /** Set when the device is lost; every later operation throws it. */
  lost: GpuDeviceLostError | null = null;
  readonly #uncaptured: GPUError[] = [];
  readonly pipelines: PipelineCache;
  /** Kernel variant choices for this adapter (autotuned, or loaded from the host's cache). */
  readonly tuning: KernelTuning;
  /** Totals since acquisition; benchmarks report them per step. */
  readonly stats = { dispatches: 0, passes: 0, submits: 0, readbacks: 0, bindGroups: 0, flops: 0, bytes: 0 };
  /** Promises the device handed out that have not settled yet (see `track`). */
  readonly #unsettled = new Unsettled();

  constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
    readonly precision: Precision,
  ) {
    this.pipelines = new PipelineCache(device, precision);
    this.tuning = new KernelTuning(adapterKey(adapter));
    device.addEventListener('uncapturederror', (event) => {
      this.#uncaptured.push((event as GPUUncapturedErrorEvent).error);
    });
  }

  get features(): ReadonlySet<string> {
    return this.device.features as ReadonlySet<string>;
  }

  get limits(): GPUSupportedLimits {
    return this.device.limits;
  }

  get hasF16(): boolean {
    return this.device.features.has('shader-f16');
  }

  /** A CPU implementation (lavapipe, SwiftShader): kernels pick variants that compile quickly there. */
  get isSoftware(): boolean {
    const { isFallback, description, architecture } = this.adapter;
    return isFallback || /llvmpipe|lavapipe|swiftshader/i.test(`${description} ${architecture}`);
  }

  get hasTimestamps(): boolean {
    return this.device.features.has('timestamp-query');
  }

  /** Throws if the device is gone, so callers fail fast instead of waiting on a dead queue. */
  assertAlive(): void {
    if (this.lost) throw this.lost;
  }

  /** Errors no scope caught (a bug in the runtime if any appear); drained on read. */
  takeUncapturedErrors(): GPUError[] {
    return this.#uncaptured.splice(0);
  }

  /**
   * Called after waiting on the GPU: throws, as typed errors and in this order, a kernel that failed to compile,
   * device loss, and any other error the device reported (then the submitted work did not run).
   */
  async settle(): Promise<void> {
    try {
      await this.pipelines.check();
    } catch (error) {
      this.takeUncapturedErrors(); // consequences of the failed compile: the compile error says it all
      throw error;
    }
    this.assertAlive();
    this.throwReportedErrors();
  }

  /**
   * Throws the first error the device reported outside any error scope (an invalid bind group or command
   * buffer: the submitted work did not run) as a typed error. Called after waiting on the GPU.
   */
  throwReportedErrors(): void {
    const [first, ...rest] = this.takeUncapturedErrors();
    if (!first) return;
    const more = rest.length > 0 ? ` (and ${rest.length} more)` : '';
    if (first.constructor.name === 'GPUOutOfMemoryError') {
      throw new GpuOutOfMemoryError(`out of GPU memory: ${first.message}${more}`);
    }
    throw new GpuValidationError(`the GPU rejected submitted work: ${first.message}${more}`);
  }

  /**
   * Runs `fn` inside validation and out-of-memory error scopes and throws the first error as a typed
   * GpuError, naming `what`. Use around pipeline creation and allocation, not around every dispatch.
   */
  async checked<T>(what: string, fn: () => T): Promise<T> {
    this.assertAlive();
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    let result: T | undefined;
    let thrown: unknown;
    try {
      result = fn();
    } catch (error) {
      thrown = error;
    }
    // Pop both scopes before awaiting: they must come off in order whatever `fn` did.
    const validation = this.track(this.device.popErrorScope());
    const oom = this.track(this.device.popErrorScope());
    if (thrown !== undefined) throw thrown;
    const [v, o] = await Promise.all([validation, oom]);
    if (v) throw new GpuValidationError(`${what}: ${v.message}`);
    if (o) throw new GpuOutOfMemoryError(`${what}: out of GPU memory (${o.message})`);
    this.assertAlive();
    return result as T;
  }

  /** Rejects a buffer size the device cannot hold, naming the buffer. */
  assertBufferFits(name: string, bytes: number, binding = true): void {
    const max = binding
      ? Math.min(this.limits.maxStorageBufferBindingSize, this.limits.maxBufferSize)
      : this.limits.maxBufferSize;
    if (bytes > max) {
      throw new GpuLimitError(
        `buffer '${name}' needs ${formatBytes(bytes)} but this GPU allows at most ${formatBytes(max)} ` +
          `per ${binding ? 'storage binding' : 'buffer'} (maxStorageBufferBindingSize/maxBufferSize)`,
      );
    }
  }

  /**
   * Registers a promise the device settles later (a buffer map, queue completion, an error scope) and returns
   * it. `drain` waits for every one: in Node a thread must not end with one pending (dawn.node then aborts the
   * whole process), and a step that failed may leave a read of its loss unawaited.
   */
  track<T>(promise: Promise<T>): Promise<T> {
    return this.#unsettled.add(promise);
  }

  destroy(): void {
    this.device.destroy();
  }

  /** After `destroy`: resolves once the device has settled its loss and every tracked promise and compile check. */
  async drain(): Promise<void> {
    await this.device.lost;
    await this.pipelines.check().catch(() => {});
    await this.#unsettled.settled();
  }
}

/** Identifies an adapter for cached tuning: the same card and driver stack give the same key. */
export function adapterKey(adapter: AdapterSummary): string {
  return [adapter.vendor, adapter.architecture, adapter.description].filter(Boolean).join(' / ') || 'unknown';
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

function defaultGpu(): GPU {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  if (!nav?.gpu)
    throw new GpuUnavailableError(`This environment has no WebGPU (navigator.gpu). ${WEBGPU_HELP}`);
  return nav.gpu;
}

/** Acquires an adapter and device, decides the precision policy and wires up device-loss reporting. */
export async function acquireGpu(options: AcquireOptions = {}): Promise<Gpu> {
  const gpu = options.gpu ?? defaultGpu();
  const adapter = await gpu.requestAdapter({
    powerPreference: options.powerPreference ?? 'high-performance',
  });
  if (!adapter) {
    throw new GpuUnavailableError(`WebGPU is present but no GPU adapter was found. ${WEBGPU_HELP}`);
  }

  const required = new Set<GPUFeatureName>(options.requiredFeatures ?? []);
  for (const feature of required) {
    if (!adapter.features.has(feature)) {
      throw new GpuFeatureError(
        `feature '${feature}' is required but this adapter (${describeAdapter(adapter)}) offers only: ` +
          `${[...adapter.features].sort().join(', ') || 'none'}`,
      );
    }
  }
  for (const feature of OPTIONAL_FEATURES) {
    if (adapter.features.has(feature)) required.add(feature);
  }
  const precision = resolvePrecision(options.precision ?? 'auto', adapter.features.has('shader-f16'));

  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];

  let device: GPUDevice;
  try {
    device = await adapter.requestDevice({ requiredFeatures: [...required], requiredLimits });
  } catch (cause) {
    throw new GpuError(`requesting a device from ${describeAdapter(adapter)} failed: ${String(cause)}`, {
      cause,
    });
  }

  const info = adapter.info;
  const result = new Gpu(
    device,
    {
      vendor: info.vendor,
      architecture: info.architecture,
      description: info.description,
      isFallback: Boolean((info as { isFallbackAdapter?: boolean }).isFallbackAdapter),
    },
    precision,
  );
  void device.lost.then((lost) => {
    const error = new GpuDeviceLostError(
      `the GPU device was lost (${lost.reason || 'unknown'}): ${lost.message || 'no details'}. ` +
        'Reload the model to continue; finished work is kept.',
      lost.reason ?? 'unknown',
    );
    result.lost = error;
    options.onLost?.(error);
  });
  return result;
}

function describeAdapter(adapter: GPUAdapter): string {
  const info = adapter.info;
  return [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unknown adapter';
}
