// Which WebGPU adapter the CLI's Dawn will find, decided before Dawn creates its Vulkan instance (it reads
// VK_ICD_FILENAMES once): the machine's GPU, else a lavapipe that `npm run setup:gpu` fetched into
// <package>/.cache/lavapipe. This never installs anything: without an adapter it says what to install.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GpuUnavailableError } from '../engine/gpu/index.ts';

/** The folder of tunelab's package.json (a checkout, or node_modules/tunelab), found from this file. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}

/** The ICD json of the lavapipe `npm run setup:gpu` fetches (scripts/setup.mjs writes it there). */
export const lavapipeIcd = (): string => join(packageRoot(), '.cache', 'lavapipe', 'icd.json');

/**
 * Whether Dawn finds an adapter under `env`, asked in a child process: a broken Vulkan driver may crash
 * the process that asks, and Dawn must not start in this one before VK_ICD_FILENAMES is settled.
 */
export function probeAdapter(env: NodeJS.ProcessEnv): boolean {
  const webgpu = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  const source = [
    `import { create, globals } from ${JSON.stringify(webgpu)};`,
    'Object.assign(globalThis, globals);',
    'globalThis.dawn = create([]);', // kept reachable: Dawn crashes when its entry point is collected
    'const adapter = await globalThis.dawn.requestAdapter();',
    "process.stdout.write(adapter ? '\\nTUNELAB_ADAPTER yes\\n' : '\\nTUNELAB_ADAPTER no\\n');",
    'process.exit(0);',
  ].join('\n');
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', source], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  return (result.stdout ?? '').includes('TUNELAB_ADAPTER yes');
}

export const INSTALL_HELP =
  'Install a Vulkan driver with WebGPU support (your GPU vendor’s, or Mesa ≥ 24 lavapipe for the CPU: ' +
  'package mesa-vulkan-drivers) and the Vulkan loader (libvulkan1), or set VK_ICD_FILENAMES to a working ' +
  'ICD json.';

/**
 * Environment variables for Dawn: none when VK_ICD_FILENAMES is set (or TUNELAB_NO_SETUP) or the machine's
 * own driver works; VK_ICD_FILENAMES of the fetched lavapipe when only that works. Throws
 * GpuUnavailableError saying what to install otherwise.
 */
export function adapterEnv(): Record<string, string> {
  if (process.env.VK_ICD_FILENAMES || process.env.TUNELAB_NO_SETUP) return {};
  if (probeAdapter(process.env)) return {};
  const icd = lavapipeIcd();
  if (existsSync(icd) && probeAdapter({ ...process.env, VK_ICD_FILENAMES: icd }))
    return { VK_ICD_FILENAMES: icd };
  throw new GpuUnavailableError(
    `no WebGPU adapter: Dawn finds no GPU driver on this machine. ${INSTALL_HELP} On Debian or Ubuntu, ` +
      `\`npm run setup:gpu\` in ${packageRoot()} (as root) fetches lavapipe into its .cache/ without ` +
      'installing it system-wide.',
  );
}
