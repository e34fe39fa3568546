// Builds .carry/: everything a bare NVIDIA machine (no Node, no node_modules, no network) needs to run
// bench/device/run.sh. Run it in the checkout the device call is made from, right before the call: the bundles
// are of the benches as they are now.
//
//   node bench/device/pack.mjs          (npm run device:pack)
//
// .carry/
//   node.xz                      this machine's Node binary (x86-64 Linux, like the GPU machine)
//   bench/*.mjs                  esbuild bundles (ESM, WGSL inlined as text) of the benches and device scripts
//   bench/<dir>/                 copies of source folders a bundle lists at run time (bench:kernels' cases)
//   bench/<path>/dawn.node.xz    Dawn, where the bundled `webgpu` index.js looks for it (beside the bundles)
//   debs/*.deb                   the Vulkan loader and GL vendor-neutral dispatch libraries (Debian packages)
//   manifest.txt                 what was packed, from which commit
import { spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const CARRY = join(ROOT, '.carry');
// Compressed Node, Dawn and the debs are cached here between packs (xz -9 of Node takes a minute).
const CACHE = join(ROOT, '.cache/device');
const MiB = 2 ** 20;
// The device tool moves at most 64 MiB: the working tree plus the carried paths.
const TRAVEL_LIMIT = 64 * MiB;
const CARRY_LIMIT = 60 * MiB;

/** Entry points, bundled to .carry/bench/<name>.mjs. */
const ENTRIES = {
  kernels: 'bench/kernels.ts',
  train: 'bench/train.ts',
  'adapter-check': 'bench/device/adapter-check.ts',
  'adapter-info': 'bench/device/adapter-info.ts',
  report: 'bench/device/report.ts',
};

/** The loaders the device README carries; only libvulkan1 is Dawn's, the rest let the NVIDIA ICD load. */
const DEBS = ['libvulkan1', 'libegl1', 'libglvnd0', 'libopengl0', 'libgl1', 'libglx0', 'libgles2'];

class PackError extends Error {}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    encoding: 'utf8',
    ...options,
  });
  if (result.error) throw new PackError(`${command}: ${result.error.message}`);
  if (result.status !== 0) {
    throw new PackError(
      `${command} ${args.join(' ')} failed (${result.status}):\n${result.stderr.slice(-2000)}`,
    );
  }
  return result.stdout;
}

/** `?raw` imports become the file's text, as Vite and scripts/raw-hooks.mjs do. */
const rawPlugin = {
  name: 'raw',
  setup(build) {
    build.onResolve({ filter: /\?raw$/ }, (a) => ({
      path: resolve(a.resolveDir, a.path.slice(0, -4)),
      namespace: 'raw',
    }));
    build.onLoad({ filter: /.*/, namespace: 'raw' }, (a) => ({
      contents: readFileSync(a.path, 'utf8'),
      loader: 'text',
    }));
  },
};

async function bundle() {
  const outdir = join(CARRY, 'bench');
  await esbuild.build({
    absWorkingDir: ROOT,
    entryPoints: ENTRIES,
    outdir,
    outExtension: { '.js': '.mjs' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    plugins: [rawPlugin],
    // CommonJS dependencies inside an ESM bundle call require(); give them Node's.
    banner: {
      js: "import { createRequire as __tunelabRequire } from 'node:module'; const require = __tunelabRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
  for (const [name, source] of Object.entries(ENTRIES))
    mirrorListedFolders(join(outdir, `${name}.mjs`), dirname(source));
}

/**
 * A bundle that lists a folder beside itself at run time (bench:kernels reads `./kernels/` and imports each case
 * file, which esbuild bundles as a glob) needs that folder's listing beside the bundle: copy the source folder.
 */
function mirrorListedFolders(bundleFile, sourceDir) {
  const text = readFileSync(bundleFile, 'utf8');
  for (const m of text.matchAll(/new URL\("\.\/([\w.-]+)\/", import\.meta\.url\)/g)) {
    const from = join(ROOT, sourceDir, m[1]);
    if (!existsSync(from)) throw new PackError(`${bundleFile} lists ./${m[1]}/ but ${from} does not exist`);
    const to = join(dirname(bundleFile), m[1]);
    mkdirSync(to, { recursive: true });
    for (const file of readdirSync(from))
      if (statSync(join(from, file)).isFile()) copyFileSync(join(from, file), join(to, file));
  }
}

/** xz -9 of `file` into the cache (keyed by `key`), then copied to `dest`. */
function xzCached(file, key, dest) {
  const cached = join(CACHE, `${key}.xz`);
  if (!existsSync(cached)) {
    mkdirSync(CACHE, { recursive: true });
    console.log(`compressing ${file} (xz -9, once per version)…`);
    const partial = `${cached}.partial`;
    run('sh', ['-c', 'xz -9 -T2 -c "$1" > "$2"', 'sh', file, partial]);
    run('mv', [partial, cached]);
  }
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(cached, dest);
}

/** Dawn goes where webgpu's index.js (now inside each bundle) computes it: relative to the bundle's folder. */
function packDawn() {
  const require = createRequire(join(ROOT, 'package.json'));
  const pkgDir = dirname(require.resolve('webgpu/package.json'));
  const { version } = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
  const index = readFileSync(join(pkgDir, 'index.js'), 'utf8');
  if (!/join\(__dirname, 'dist', `\$\{process\.platform\}-\$\{arch\}`, 'dawn\.node'\)/.test(index)) {
    throw new PackError(
      `webgpu ${version}: index.js no longer loads dist/<platform>-<arch>/dawn.node; update packDawn()`,
    );
  }
  const rel = 'dist/linux-x64/dawn.node';
  xzCached(join(pkgDir, rel), `dawn-${version}`, join(CARRY, 'bench', `${rel}.xz`));
  return `webgpu ${version}`;
}

/** The device README's recipe: amd64 package lists in /tmp from this machine's own apt sources. */
function packDebs() {
  const dir = join(CACHE, 'debs');
  const have = () => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.deb')) : []);
  const missing = () => DEBS.filter((p) => !have().some((f) => f.startsWith(`${p}_`)));
  if (missing().length > 0) {
    if (!existsSync('/usr/bin/apt-get'))
      throw new PackError(`need ${missing().join(', ')} (.deb) and apt-get is not here`);
    mkdirSync(dir, { recursive: true });
    mkdirSync('/tmp/amd64/partial', { recursive: true });
    const o = ['-oAPT::Architecture=amd64', '-oAPT::Architectures=amd64', '-oDir::State::Lists=/tmp/amd64'];
    console.log(`fetching ${missing().join(', ')} with apt-get download…`);
    run('apt-get', [...o, 'update']);
    run('apt-get', [...o, 'download', ...missing()], { cwd: dir });
  }
  mkdirSync(join(CARRY, 'debs'), { recursive: true });
  for (const f of have()) copyFileSync(join(dir, f), join(CARRY, 'debs', f));
  return have().join(' ');
}

/** The team's shared scripts are copied byte for byte into bench/device/: refuse to pack a drifted copy. */
function checkSharedScripts() {
  const shared = resolve(ROOT, '../shared/device');
  for (const name of ['peft_anchor.py', 'peft_loss.py']) {
    const ours = join(ROOT, 'bench/device', name);
    if (!existsSync(ours)) throw new PackError(`${ours} is missing`);
    const theirs = join(shared, name);
    if (existsSync(theirs) && !readFileSync(theirs).equals(readFileSync(ours))) {
      throw new PackError(
        `bench/device/${name} differs from ${theirs}: copy it again (cp ${theirs} bench/device/)`,
      );
    }
  }
}

function sizeOf(path) {
  const info = statSync(path);
  if (!info.isDirectory()) return info.size;
  return readdirSync(path).reduce((sum, f) => sum + sizeOf(join(path, f)), 0);
}

/** Tracked and untracked-not-ignored files: what the device tool sends besides the carried paths. */
function treeBytes() {
  const files = run('git', ['ls-files', '-z', '-co', '--exclude-standard'], {
    cwd: ROOT,
    maxBuffer: 64 * MiB,
  })
    .split('\0')
    .filter(Boolean);
  return files.reduce((sum, f) => (existsSync(join(ROOT, f)) ? sum + statSync(join(ROOT, f)).size : sum), 0);
}

function commitLine() {
  const head = run('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT }).trim();
  const dirty = run('git', ['status', '--porcelain'], { cwd: ROOT }).trim() !== '';
  return `${head}${dirty ? ' + uncommitted changes' : ''}`;
}

async function main() {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new PackError(`the GPU machine is x86-64 Linux; this Node is ${process.platform}-${process.arch}`);
  }
  checkSharedScripts();
  rmSync(CARRY, { recursive: true, force: true });
  mkdirSync(CARRY, { recursive: true });
  await bundle();
  const dawn = packDawn();
  xzCached(process.execPath, `node-${process.version}`, join(CARRY, 'node.xz'));
  const debs = packDebs();
  const carry = sizeOf(CARRY);
  const tree = treeBytes();
  const manifest = [
    `TUNELAB_PACK packed ${new Date().toISOString()} from ${commitLine()}, Node ${process.version}, ${dawn}`,
    `debs: ${debs}`,
    ...readdirSync(CARRY, { recursive: true })
      .map(String)
      .filter((f) => !statSync(join(CARRY, f)).isDirectory())
      .sort()
      .map((f) => `${(statSync(join(CARRY, f)).size / MiB).toFixed(2).padStart(7)} MiB  ${f}`),
  ];
  writeFileSync(join(CARRY, 'manifest.txt'), `${manifest.join('\n')}\n`);
  console.log(manifest.join('\n'));
  console.log(
    `\n.carry: ${(carry / MiB).toFixed(1)} MiB; working tree: ${(tree / MiB).toFixed(1)} MiB; ` +
      `together ${((carry + tree) / MiB).toFixed(1)} of ${TRAVEL_LIMIT / MiB} MiB`,
  );
  if (carry > CARRY_LIMIT || carry + tree > TRAVEL_LIMIT) {
    throw new PackError(
      `too large to travel (limits: .carry ${CARRY_LIMIT / MiB} MiB, all ${TRAVEL_LIMIT / MiB} MiB)`,
    );
  }
  console.log(
    `ready: run with command "bash bench/device/run.sh", carry [".carry"] (see ${relative(ROOT, join(ROOT, 'bench/device/README.md'))})`,
  );
}

try {
  await main();
} catch (error) {
  if (!(error instanceof PackError)) throw error;
  console.error(`device:pack: ${error.message}`);
  process.exit(1);
}
