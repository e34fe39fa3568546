// Prints one JSON line describing the WebGPU adapter Dawn finds with the current environment, or null.
// Run as a child process: a broken Vulkan driver may crash it, and the caller must survive that.
import { create, globals } from 'webgpu';

Object.assign(globalThis, globals);
const gpu = create([]);
globalThis.__tunelabDawn = gpu; // keep Dawn's entry point reachable (it crashes if collected)
const adapter = await gpu.requestAdapter();
const summary = adapter && {
  description: adapter.info.description || adapter.info.vendor,
  features: [...adapter.features].sort(),
};
process.stdout.write(`\nTUNELAB_PROBE ${JSON.stringify(summary)}\n`);
process.exit(0);
