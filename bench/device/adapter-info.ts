// Prints the WebGPU adapter Dawn finds with the current environment as one `TUNELAB_ADAPTER {json}` line, so
// run.sh can stop before benchmarking the wrong device. With --require-hardware a software adapter (lavapipe,
// llvmpipe, SwiftShader) or none at all exits non-zero. --dawn-flag passes a flag to Dawn's create() (e.g.
// enable-dawn-features=allow_unsafe_apis, which unlocks experimental features such as subgroup-matrix) and
// labels the line TUNELAB_ADAPTER_UNSAFE.
import { parseArgs } from 'node:util';
import { create, globals } from 'webgpu';

const { values: args } = parseArgs({
  options: {
    'require-hardware': { type: 'boolean', default: false },
    'dawn-flag': { type: 'string', multiple: true, default: [] },
  },
});

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software/i;

/** Limits that bound what tunelab's kernels can use (workgroup tiles, buffer sizes). */
const LIMITS = [
  'maxBufferSize',
  'maxStorageBufferBindingSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
] as const;

Object.assign(globalThis, globals);
// The benches' flags (TUNELAB_DAWN_FLAGS, as src/node/dawn.ts reads them) first: the adapter they will see.
const flags = [
  ...(process.env.TUNELAB_DAWN_FLAGS ?? '').split(/\s+/).filter(Boolean),
  ...(args['dawn-flag'] ?? []),
];
// Kept reachable from the global object for the life of the process (as scripts/probe-gpu.mjs does): a
// collected Dawn instance crashes dawn.node.
const dawn = create(flags);
(globalThis as { __tunelabDawn?: GPU }).__tunelabDawn = dawn;
const adapter = await dawn.requestAdapter();
const label = flags.length > 0 ? 'TUNELAB_ADAPTER_UNSAFE' : 'TUNELAB_ADAPTER';
if (!adapter) {
  console.log(`${label} null`);
  console.error(
    'adapter-info: Dawn found no WebGPU adapter (no Vulkan driver reachable: check VK_DRIVER_FILES)',
  );
  process.exit(1);
}
const info = adapter.info;
// isFallbackAdapter is newer than @webgpu/types' GPUAdapterInfo on some versions; read it defensively.
const fallback = (info as unknown as { isFallbackAdapter?: boolean }).isFallbackAdapter === true;
const software = fallback || SOFTWARE.test(`${info.vendor} ${info.architecture} ${info.description}`);
const summary = {
  vendor: info.vendor,
  architecture: info.architecture,
  device: info.device,
  description: info.description,
  software,
  subgroupSizes: [info.subgroupMinSize ?? null, info.subgroupMaxSize ?? null],
  features: [...adapter.features].sort(),
  limits: Object.fromEntries(LIMITS.map((name) => [name, adapter.limits[name]])),
  dawnFlags: flags,
};
console.log(`${label} ${JSON.stringify(summary)}`);
if (software && args['require-hardware']) {
  console.error(
    `adapter-info: Dawn's adapter is a software rasteriser (${info.description || info.architecture}), not the GPU. ` +
      'The NVIDIA Vulkan driver was not loaded: check that VK_DRIVER_FILES names nvidia_icd.json and that ' +
      'libvulkan.so.1 and libGLX_nvidia.so.0 are found (ldconfig -p).',
  );
  process.exit(2);
}
process.exit(0);
