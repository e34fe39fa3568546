// The CLI commands, run in-process on tiny checkpoints written to a temporary directory.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveTargets } from '../../src/engine/lora/config.ts';
import { initLoraParams, loraLayout } from '../../src/engine/lora/init.ts';
import { importPeftAdapter } from '../../src/engine/lora/peft.ts';
import { parseModelConfig } from '../../src/engine/model/config.ts';
import { runCli } from '../fixtures/cli.ts';
import { buildTinyModel, writeTinyModel } from '../fixtures/tiny-models.ts';

let dir: string;
let modelDir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-cli-'));
  modelDir = await writeTinyModel(buildTinyModel({ arch: 'llama', dtype: 'BF16' }), join(dir, 'model'));
  await writeFile(
    join(dir, 'data.txt'),
    'the quick brown fox jumps over the lazy dog. hello world, hello there! '.repeat(8),
  );
  await writeFile(
    join(dir, 'tokens.jsonl'),
    [JSON.stringify({ input_ids: [5, 6, 7, 8, 9, 10] }), JSON.stringify({ input_ids: [11, 12, 13] })].join(
      '\n',
    ),
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('tunelab eval', () => {
  it('prints loss, perplexity and token count as JSON', async () => {
    const tokens = join(dir, 'tokens.jsonl');
    const { code, stdout } = await runCli(
      `eval --model ${modelDir} --data ${tokens} --seq 5 --json --precision f32`,
    );
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    // Rows truncated to 5 tokens: 4 + 2 predicted tokens.
    expect(result.tokens).toBe(6);
    expect(result.perplexity).toBeCloseTo(Math.exp(result.loss), 3);
  });

  it('refuses a missing model directory and a bad flag with the flag named', async () => {
    expect((await runCli(`eval --model ${join(dir, 'nope')} --data x.txt`)).stderr).toMatch(
      /--model: .* is not a directory/,
    );
    const bad = await runCli(`eval --model ${modelDir} --data ${join(dir, 'data.txt')} --seq ten`);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--seq: expected a whole number ≥ 2, got 'ten'/);
  });
});

describe('tunelab train', () => {
  it('--steps 0 writes the freshly initialised PEFT adapter: A from the seed, B = 0', async () => {
    const out = join(dir, 'init');
    const { code } = await runCli(
      `train --model ${modelDir} --data ${join(dir, 'data.txt')} --out ${out} --steps 0 --seq 16 --seed 7 --r 4`,
    );
    expect(code).toBe(0);
    const spec = parseModelConfig(await readFile(join(modelDir, 'config.json'), 'utf8'));
    const adapter = await importPeftAdapter(
      await readFile(join(out, 'adapter_config.json'), 'utf8'),
      new Uint8Array(await readFile(join(out, 'adapter_model.safetensors'))),
      spec,
    );
    const layout = loraLayout(resolveTargets(adapter.config, spec), 4);
    expect(Array.from(adapter.params)).toEqual(Array.from(initLoraParams(layout, 7)));
  });

  it('trains, logs every step to metrics.jsonl, and lowers the loss', async () => {
    const out = join(dir, 'run');
    const { code } = await runCli(
      `train --model ${modelDir} --data ${join(dir, 'data.txt')} --out ${out} --steps 12 --seq 16 --batch 2 ` +
        '--lr 1e-2 --targets all-linear --val-ratio 0.25 --eval-every 6 --precision f32',
    );
    expect(code).toBe(0);
    const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    const steps = lines.filter((l) => l.type === 'step');
    expect(steps.map((s) => s.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    expect(steps.at(-1).loss).toBeLessThan(steps[0].loss);
    expect(lines.filter((l) => l.type === 'eval').map((l) => l.step)).toEqual([6, 12]);
    const config = JSON.parse(await readFile(join(out, 'adapter_config.json'), 'utf8'));
    expect(config.target_modules).toEqual([
      'down_proj',
      'gate_proj',
      'k_proj',
      'o_proj',
      'q_proj',
      'up_proj',
      'v_proj',
    ]);
  });

  it('--recompute trains to the same losses and records the option in training_args.json', async () => {
    const losses = async (out: string, extra: string) => {
      const train = `train --model ${modelDir} --data ${join(dir, 'data.txt')} --out ${out}`;
      // --no-autotune: the same kernels in both runs, whatever a time budget left untuned
      const common = '--steps 3 --seq 16 --batch 2 --dropout 0.1 --precision f32 --no-autotune';
      expect((await runCli(`${train} ${common} ${extra}`)).code).toBe(0);
      const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
      return lines.map((l) => JSON.parse(l)).map((l) => l.loss);
    };
    const plain = await losses(join(dir, 'plain'), '');
    const recomputed = await losses(join(dir, 'recompute'), '--recompute');
    expect(recomputed).toHaveLength(3);
    expect(recomputed).toEqual(plain);
    const args = JSON.parse(await readFile(join(dir, 'recompute', 'training_args.json'), 'utf8'));
    expect(args.recompute).toBe(true);
  });

  it('a malformed row fails with file, line and reason, and nothing is written', async () => {
    const bad = join(dir, 'bad.jsonl');
    await writeFile(bad, '{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion": 3}\n');
    const out = join(dir, 'never');
    const { code, stderr } = await runCli(
      `train --model ${modelDir} --data ${bad} --out ${out} --steps 1 --seq 8`,
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/bad\.jsonl:2: .*completion/);
    expect(existsSync(out)).toBe(false);
  });
});

describe('tunelab train: outputs and exit codes', () => {
  /** The folder's files and their bytes. */
  const snapshot = async (folder: string) =>
    Object.fromEntries(
      await Promise.all(
        (await readdir(folder))
          .sort()
          .map(async (n) => [n, await readFile(join(folder, n), 'utf8')] as const),
      ),
    );

  it('a full disk while writing the outputs leaves the previous run whole (a real tmpfs as --out)', async (ctx) => {
    const out = join(dir, 'full-disk');
    await mkdir(out);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', out], { stdio: 'ignore' });
    } catch {
      ctx.skip(); // not root, or no tmpfs here
    }
    try {
      const previous = {
        'adapter_config.json': '{"previous": "config"}',
        'adapter_model.safetensors': 'previous weights',
        'metrics.jsonl': '{"type":"step","step":1}\n',
        'training_args.json': '{"previous": "args"}',
      };
      for (const [name, text] of Object.entries(previous)) await writeFile(join(out, name), text);
      // Fill the disk but one page: this run's metrics fit, its adapter (rank 16: several pages) does not.
      const { bavail, bsize } = await statfs(out);
      await writeFile(join(out, 'filler'), new Uint8Array(bavail * bsize - 4096));
      const { code, stderr } = await runCli(
        `train --model ${modelDir} --data ${join(dir, 'data.txt')} --out ${out} --steps 1 --seq 8 --r 16 --no-autotune`,
      );
      expect(code).toBe(1);
      expect(stderr).toMatch(/ENOSPC/);
      const after = await snapshot(out);
      for (const [name, text] of Object.entries(previous)) expect(after[name], name).toBe(text);
      expect(Object.keys(after).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    } finally {
      execFileSync('umount', [out]);
    }
  });

  it('a stop (Ctrl-C) after step 1 writes the adapter so far, records the steps done, and exits 130', async () => {
    const out = join(dir, 'stopped');
    const stop = new AbortController();
    const { code, stdout } = await runCli(
      `train --model ${modelDir} --data ${join(dir, 'data.txt')} --out ${out} --steps 4 --seq 8 --r 4 --no-autotune`,
      { signal: stop.signal, onTrainStep: (step) => step === 1 && stop.abort() },
    );
    expect(code).toBe(130);
    const args = JSON.parse(await readFile(join(out, 'training_args.json'), 'utf8'));
    const steps = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((l) => l.type === 'step');
    expect(args.steps).toBe(4);
    expect(args.interrupted).toBe(true);
    expect(args.stepsDone).toBe(steps.length);
    expect(args.stepsDone).toBeLessThan(4);
    expect(stdout).toMatch(new RegExp(`interrupted after ${args.stepsDone} of 4 steps`));
    const spec = parseModelConfig(await readFile(join(modelDir, 'config.json'), 'utf8'));
    await importPeftAdapter(
      await readFile(join(out, 'adapter_config.json'), 'utf8'),
      new Uint8Array(await readFile(join(out, 'adapter_model.safetensors'))),
      spec,
    );
    expect(existsSync(join(out, 'metrics.jsonl.partial'))).toBe(false);
  });
});

describe('kernel autotuning in tunelab train', () => {
  it('the first run times the kernels and saves the choices, the next loads them, --no-autotune uses neither', async () => {
    const saved = process.env.TUNELAB_CACHE_DIR;
    const cache = join(dir, 'cache');
    process.env.TUNELAB_CACHE_DIR = cache;
    // A budget no cold shader cache can exhaust: every class of the run is timed, whatever the machine's speed.
    process.env.TUNELAB_AUTOTUNE_MS = '600000';
    try {
      const train = `train --model ${modelDir} --data ${join(dir, 'data.txt')} --out ${join(dir, 'tuned')}`;
      const args = `${train} --steps 0 --seq 8 --batch 2 --r 4 --precision f32`;
      const first = await runCli(args);
      expect(first.code).toBe(0);
      expect(first.stderr).toMatch(/autotuning kernels: tuned \d+ shape classes for /);
      const file = () => readFile(join(cache, 'tuning.json'), 'utf8');
      const saved1 = await file();
      const records = Object.values(JSON.parse(saved1).records) as { choices: Record<string, string> }[];
      expect(records).toHaveLength(1);
      expect(Object.keys(records[0].choices).length).toBeGreaterThan(3);
      const second = await runCli(args);
      expect(second.code).toBe(0);
      // Loaded; a class the first run's time budget did not reach is timed now.
      expect(second.stderr).toMatch(
        /kernels: choices for .* loaded from .*tuning\.json|the rest loaded from the cache/,
      );
      const off = await runCli(`${args} --no-autotune`);
      expect(off.code).toBe(0);
      expect(off.stderr).toMatch(/kernels: built-in defaults \(--no-autotune\)/);
      expect(off.stderr).not.toMatch(/autotuning/);
    } finally {
      process.env.TUNELAB_CACHE_DIR = saved;
      delete process.env.TUNELAB_AUTOTUNE_MS;
    }
  });
});

describe('tunelab generate', () => {
  it('streams the prompt and a greedy continuation through the adapter tunelab train wrote', async () => {
    const out = join(dir, 'gen-adapter');
    await runCli(`train --model ${modelDir} --data ${join(dir, 'data.txt')} --out ${out} --steps 0 --seq 16`);
    const generate = `generate --model ${modelDir} --prompt hello --max-new-tokens 6 --adapter ${out}`;
    const first = await runCli(generate);
    expect(first.code).toBe(0);
    expect(first.stdout.startsWith('hello')).toBe(true);
    expect(first.stderr).toMatch(/\d+ tokens, stopped: (length|eos)/);
    expect((await runCli(generate)).stdout).toBe(first.stdout);
  });
});
