// The CLI ships: `npm pack` (which builds dist-cli/ first), a plain `npm install --omit=dev` of the tarball in an
// empty folder, and `npx tunelab` runs --help, eval, train and a short tune there, on a tiny checkout, with none of
// the devDependencies (no tsx, no Vite, no TypeScript sources). Without an adapter it says what to install.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeAdapter } from '../../src/node/adapter.ts';
import { buildTinyModel, writeTinyModel } from '../fixtures/tiny-models.ts';

const ROOT = join(import.meta.dirname, '..', '..');
let dir: string;
let app: string;
let model: string;
let data: string;

function run(command: string, args: string[], cwd: string, env = process.env): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 110_000 });
}

function tunelab(args: string, env = process.env): SpawnSyncReturns<string> {
  return run('npx', ['--no-install', 'tunelab', ...args.split(' ')], app, env);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-pack-'));
  model = await writeTinyModel(buildTinyModel({ arch: 'llama' }), join(dir, 'model'));
  data = join(dir, 'data.jsonl');
  const rows = Array.from({ length: 24 }, (_, i) =>
    JSON.stringify({ prompt: `${i}+1=`, completion: `${i + 1}` }),
  );
  await writeFile(data, rows.join('\n'));
  const packed = run('npm', ['pack', '--pack-destination', dir], ROOT);
  expect(packed.status, packed.stderr).toBe(0);
  const tgz = join(dir, packed.stdout.trim().split('\n').at(-1)!);
  app = join(dir, 'app');
  await mkdir(app);
  await writeFile(join(app, 'package.json'), '{"name": "app", "version": "1.0.0", "private": true}\n');
  const flags = ['--omit=dev', '--no-audit', '--no-fund', '--prefer-offline'];
  const installed = run('npm', ['install', ...flags, tgz], app);
  expect(installed.status, installed.stderr).toBe(0);
}, 240_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the packed CLI, installed without devDependencies', () => {
  it('holds the built JavaScript and Dawn, and none of the development tools', async () => {
    const pkg = join(app, 'node_modules', 'tunelab');
    expect(existsSync(join(pkg, 'dist-cli', 'tunelab.mjs'))).toBe(true);
    expect(existsSync(join(pkg, 'src'))).toBe(false);
    for (const dev of ['tsx', 'vite', 'typescript', 'comlink', '@huggingface'])
      expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
    expect(existsSync(join(app, 'node_modules', 'webgpu'))).toBe(true);
    const help = tunelab('--help');
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/train .*fine-tune a LoRA adapter/);
    expect(tunelab('train --help').stdout).toContain('--recompute');
  });

  it('evaluates and trains a tiny model, and runs a short search on a worker thread', async () => {
    const evaluated = tunelab(`eval --model ${model} --data ${data} --seq 16 --json`);
    expect(evaluated.status, evaluated.stderr).toBe(0);
    const { loss, tokens } = JSON.parse(evaluated.stdout) as { loss: number; tokens: number };
    expect(Number.isFinite(loss) && loss > 0).toBe(true);
    expect(tokens).toBeGreaterThan(0);

    const out = join(dir, 'run');
    const trained = tunelab(`train --model ${model} --data ${data} --seq 16 --steps 3 --r 4 --out ${out}`);
    expect(trained.status, trained.stderr).toBe(0);
    const metrics = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    expect(metrics).toHaveLength(3);
    const adapter = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8')) as { r: number };
    expect(adapter.r).toBe(4);

    const study = join(dir, 'study');
    const budget = '--seq 16 --steps 2 --trials 2 --workers 1 --sampler random';
    const tuned = tunelab(`tune --model ${model} --data ${data} ${budget} --out ${study}`);
    expect(tuned.status, tuned.stderr).toBe(0);
    expect(tuned.stdout).toMatch(/2 trials: 2 complete/);
    expect(existsSync(join(study, 'best-config.json'))).toBe(true);
  });

  it('without an adapter, names what to install and `npm run setup:gpu` instead of installing it', () => {
    const env = { ...process.env };
    delete env.VK_ICD_FILENAMES;
    if (probeAdapter(env)) return; // this machine has a GPU driver of its own: nothing to say
    const refused = tunelab(`eval --model ${model} --data ${data} --seq 16`, env);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(
      /no WebGPU adapter: .*libvulkan1.*`npm run setup:gpu` in .*node_modules\/tunelab/,
    );
  });
});
