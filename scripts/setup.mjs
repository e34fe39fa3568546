// Makes this machine able to run tunelab's tests: a WebGPU adapter for Dawn (a real GPU when there is one,
// otherwise Mesa 25's lavapipe software Vulkan driver, fetched once into .cache/) and Debian's Chromium for
// the browser tests. Each step says in one line what it does; anything it cannot do is a clear error.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const cache = join(root, '.cache', 'lavapipe');
const icdPath = join(cache, 'icd.json');
const say = (line) => console.error(`tunelab setup: ${line}`);
const isRoot = () => typeof process.getuid === 'function' && process.getuid() === 0;

export class SetupError extends Error {}

/** Runs the probe in a child process with `env`; returns the adapter summary or null. */
export function probeGpu(env = process.env) {
  const result = spawnSync(process.execPath, [join(root, 'scripts', 'probe-gpu.mjs')], {
    env,
    encoding: 'utf8',
    timeout: 120_000,
  });
  const line = (result.stdout ?? '').split('\n').find((l) => l.startsWith('TUNELAB_PROBE '));
  if (!line) return null;
  return JSON.parse(line.slice('TUNELAB_PROBE '.length));
}

function hasVulkanLoader() {
  const out = spawnSync('ldconfig', ['-p'], { encoding: 'utf8' }).stdout ?? '';
  return out.includes('libvulkan.so.1');
}

function aptGet(args, env = process.env) {
  const result = spawnSync('apt-get', args, { env, encoding: 'utf8' });
  if (result.status !== 0) {
    throw new SetupError(`apt-get ${args.join(' ')} failed:\n${result.stderr || result.stdout}`);
  }
  return result.stdout;
}

function osRelease() {
  try {
    return Object.fromEntries(
      readFileSync('/etc/os-release', 'utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => {
          const i = l.indexOf('=');
          return [l.slice(0, i), l.slice(i + 1).replace(/^"|"$/g, '')];
        }),
    );
  } catch {
    return {};
  }
}

/** The machine's own Debian/Ubuntu mirror, read from its apt sources (never hard-coded). */
function mirrorUri() {
  const deb822 = '/etc/apt/sources.list.d';
  if (existsSync(deb822)) {
    for (const file of readdirSync(deb822).filter((f) => f.endsWith('.sources'))) {
      const uris = readFileSync(join(deb822, file), 'utf8').match(/^URIs:\s*(\S+)/m);
      if (uris && !uris[1].includes('security')) return uris[1];
    }
  }
  if (existsSync('/etc/apt/sources.list')) {
    const deb = readFileSync('/etc/apt/sources.list', 'utf8').match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)/m);
    if (deb) return deb[1];
  }
  return null;
}

const MANUAL_HELP =
  'Install a Vulkan driver with WebGPU support (a GPU driver, or Mesa ≥ 24 lavapipe: package ' +
  'mesa-vulkan-drivers) and the Vulkan loader (libvulkan1), or set VK_ICD_FILENAMES to a working ICD json.';

/** Fetches Mesa's lavapipe without touching the system's apt state, into .cache/lavapipe. */
function fetchLavapipe() {
  const os = osRelease();
  const codename = os.VERSION_CODENAME;
  const uri = mirrorUri();
  if (process.platform !== 'linux' || !existsSync('/usr/bin/apt-get') || !codename || !uri) {
    throw new SetupError(`no WebGPU adapter found and this is not a Debian/Ubuntu machine. ${MANUAL_HELP}`);
  }
  // Debian 12's own Mesa (22.3) is too old for Dawn; its backports carry Mesa 25.
  const suite = os.ID === 'debian' && codename === 'bookworm' ? 'bookworm-backports' : codename;
  say(`no WebGPU adapter found: fetching Mesa lavapipe (software Vulkan) from ${suite} into .cache/lavapipe`);
  rmSync(cache, { recursive: true, force: true });
  const apt = join(cache, 'apt');
  for (const dir of ['lists/partial', 'archives/partial', 'cache'])
    mkdirSync(join(apt, dir), { recursive: true });
  writeFileSync(join(apt, 'sources.list'), `deb ${uri} ${suite} main\n`);
  writeFileSync(
    join(apt, 'apt.conf'),
    [
      `Dir::Etc::SourceList "${apt}/sources.list";`,
      'Dir::Etc::SourceParts "/dev/null";',
      `Dir::State::Lists "${apt}/lists";`,
      `Dir::Cache "${apt}/cache";`,
      `Dir::Cache::Archives "${apt}/archives";`,
      'APT::Sandbox::User "root";',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, APT_CONFIG: join(apt, 'apt.conf') };
  aptGet(['-q', 'update'], env);
  const result = spawnSync('apt-get', ['-q', 'download', `mesa-vulkan-drivers/${suite}`], {
    cwd: cache,
    env,
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new SetupError(`downloading mesa-vulkan-drivers failed:\n${result.stderr}`);
  const deb = readdirSync(cache).find((f) => f.startsWith('mesa-vulkan-drivers') && f.endsWith('.deb'));
  const extract = spawnSync('dpkg-deb', ['-x', join(cache, deb), join(cache, 'root')], { encoding: 'utf8' });
  if (extract.status !== 0) throw new SetupError(`unpacking ${deb} failed:\n${extract.stderr}`);
  const lib = spawnSync('find', [join(cache, 'root'), '-name', 'libvulkan_lvp.so'], {
    encoding: 'utf8',
  }).stdout.trim();
  if (!lib) throw new SetupError(`${deb} holds no libvulkan_lvp.so`);
  ensureLibrariesOf(lib);
  writeFileSync(
    icdPath,
    JSON.stringify(
      { file_format_version: '1.0.0', ICD: { library_path: lib, api_version: '1.3.0' } },
      null,
      2,
    ),
  );
  rmSync(apt, { recursive: true, force: true });
}

/** lavapipe links against LLVM, libdrm, xcb...: the system's own mesa-vulkan-drivers package pulls them in. */
function ensureLibrariesOf(lib) {
  const missing = (spawnSync('ldd', [lib], { encoding: 'utf8' }).stdout ?? '')
    .split('\n')
    .filter((l) => l.includes('not found'))
    .map((l) => l.trim().split(' ')[0]);
  if (missing.length === 0) return;
  if (!isRoot())
    throw new SetupError(
      `lavapipe needs libraries this machine lacks: ${missing.join(', ')}. ${MANUAL_HELP}`,
    );
  say(`installing lavapipe's libraries (${missing.join(', ')}) with apt-get install mesa-vulkan-drivers`);
  aptGet(['-q', 'update']);
  aptGet(['-q', '-y', 'install', 'mesa-vulkan-drivers']);
}

function ensureVulkanLoader() {
  if (hasVulkanLoader()) return;
  if (!isRoot() || !existsSync('/usr/bin/apt-get')) {
    throw new SetupError(`the Vulkan loader (libvulkan.so.1) is missing. ${MANUAL_HELP}`);
  }
  say('installing the Vulkan loader (apt-get install libvulkan1)');
  aptGet(['-q', 'update']);
  aptGet(['-q', '-y', 'install', 'libvulkan1']);
}

/**
 * Environment variables under which Dawn finds an adapter. Uses the machine's own GPU when Dawn finds one;
 * otherwise the cached (or freshly fetched) lavapipe. Throws SetupError with what to install when it cannot.
 */
export function gpuEnv() {
  const own = probeGpu();
  if (own) return {};
  ensureVulkanLoader();
  const env = { VK_ICD_FILENAMES: icdPath };
  if (existsSync(icdPath) && probeGpu({ ...process.env, ...env })) return env;
  if (!isRoot()) {
    throw new SetupError(
      `no WebGPU adapter found, and fetching lavapipe needs root (apt-get download). ${MANUAL_HELP}`,
    );
  }
  fetchLavapipe();
  const adapter = probeGpu({ ...process.env, ...env });
  if (!adapter)
    throw new SetupError(
      `lavapipe was fetched into ${cache} but Dawn still finds no adapter. ${MANUAL_HELP}`,
    );
  say(
    `using ${adapter.description} (${adapter.features.includes('shader-f16') ? 'with' : 'without'} shader-f16)`,
  );
  return env;
}

/** Path of a Chromium for the browser tests: CHROMIUM_PATH, Debian's chromium, or installed with apt as root. */
export function chromiumPath() {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].filter(
    Boolean,
  );
  const found = candidates.find((p) => existsSync(p));
  if (found) return found;
  if (!isRoot() || !existsSync('/usr/bin/apt-get')) {
    throw new SetupError(
      'browser tests need Chromium: install it (Debian: apt-get install chromium) or set CHROMIUM_PATH',
    );
  }
  say('installing Chromium for the browser tests (apt-get install chromium)');
  aptGet(['-q', 'update']);
  aptGet(['-q', '-y', 'install', 'chromium']);
  return '/usr/bin/chromium';
}
