// Typed GPU errors: every failure of the runtime surfaces as one of these, with a message a person can act on.

export class GpuError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No WebGPU implementation or no adapter at all. */
export class GpuUnavailableError extends GpuError {}

/** A feature was required that the adapter does not offer. */
export class GpuFeatureError extends GpuError {}

/** A buffer, binding or dispatch exceeds the device's limits. */
export class GpuLimitError extends GpuError {}

/** WGSL failed to compile, or a pipeline/bind group was invalid. */
export class GpuValidationError extends GpuError {}

/** The device ran out of memory while allocating. */
export class GpuOutOfMemoryError extends GpuError {}

/** The device was lost (driver reset, tab backgrounded, `destroy()`); nothing more can run on it. */
export class GpuDeviceLostError extends GpuError {
  constructor(
    message: string,
    readonly reason: GPUDeviceLostReason | 'unknown',
  ) {
    super(message);
  }
}

/** Browsers and flags known to expose WebGPU, for messages shown when it is missing. */
export const WEBGPU_HELP =
  'WebGPU is available in Chrome/Edge 113+ (Windows, macOS, ChromeOS, Android), in Chrome on Linux with ' +
  '--enable-unsafe-webgpu (and --enable-features=Vulkan), in Safari 26+, and in Firefox 141+ on Windows ' +
  '(Nightly elsewhere, dom.webgpu.enabled). In Node, tunelab uses Dawn through the `webgpu` package.';
