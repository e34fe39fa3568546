// `tunelab push` against the fake Hub (test/fixtures/fake-hub.ts), over HTTP: an adapter folder as `tunelab
// train` writes it, pushed with its card, read back; bad flags and folders refused before any request.

import { downloadFile } from '@huggingface/hub';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { version } from '../../../package.json';
import { resolveTargets, type LoraConfig, type LoraModelShape } from '../../../src/engine/lora/config.ts';
import { initLoraParams, loraLayout } from '../../../src/engine/lora/init.ts';
import { exportPeftAdapter } from '../../../src/engine/lora/peft.ts';
import { runCli } from '../../fixtures/cli.ts';
import type { FakeHub } from '../../fixtures/fake-hub.ts';
import { startFakeHub } from '../../fixtures/fake-hub.ts';

const TOKEN = 'hf_cliWriteToken42';
const REPO = 'alice/tiny-lora';

let dir: string;
let hub: FakeHub;
let adapterBytes: Record<string, Uint8Array>;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-push-'));
  const shape: LoraModelShape = {
    family: 'llama',
    hidden: 16,
    ffn: 32,
    heads: 2,
    kvHeads: 2,
    headDim: 8,
    layers: 1,
  };
  const lora: LoraConfig = { r: 2, alpha: 4, dropout: 0, targets: ['q_proj', 'v_proj'], rslora: false };
  const layout = loraLayout(resolveTargets(lora, shape), lora.r);
  const files = exportPeftAdapter(lora, shape, layout, initLoraParams(layout, 3), {
    baseModel: 'HuggingFaceTB/SmolLM2-135M',
  });
  adapterBytes = {
    'adapter_config.json': new TextEncoder().encode(files['adapter_config.json']),
    'adapter_model.safetensors': files['adapter_model.safetensors'],
  };
  for (const [name, bytes] of Object.entries(adapterBytes)) await writeFile(join(dir, name), bytes);
  // As `tunelab train` writes them.
  const args = {
    lora: { ...lora, targets: ['q_proj', 'v_proj'] },
    optimizer: 'adamw',
    lr: 0.0003,
    batch: 2,
    stepsDone: 20,
  };
  await writeFile(join(dir, 'training_args.json'), JSON.stringify(args, null, 2));
  const metrics = [
    { type: 'step', step: 10, loss: 2.5, lr: 0.0003 },
    { type: 'eval', step: 10, valLoss: 2.25, perplexity: 9.4877 },
    { type: 'step', step: 20, loss: 2.0, lr: 0.0003 },
    { type: 'eval', step: 20, valLoss: 1.75, perplexity: 5.7546 },
  ];
  await writeFile(join(dir, 'metrics.jsonl'), metrics.map((m) => JSON.stringify(m)).join('\n') + '\n');

  hub = await startFakeHub({
    repo: REPO,
    files: {},
    missing: true,
    writeToken: TOKEN,
    readOnlyToken: 'hf_readOnly1',
  });
  vi.stubEnv('HF_ENDPOINT', hub.url);
  vi.stubEnv('MY_HUB_TOKEN', TOKEN);
});
afterEach(async () => {
  vi.unstubAllEnvs();
  await hub.close();
  await rm(dir, { recursive: true, force: true });
});

async function readBack(path: string): Promise<Uint8Array> {
  const blob = await downloadFile({ repo: REPO, path, hubUrl: hub.url });
  if (!blob) throw new Error(`${path} is not on the fake Hub`);
  return new Uint8Array(await blob.arrayBuffer());
}

describe('tunelab push', () => {
  it('pushes the adapter and a card made from the folder; the files read back byte for byte', async () => {
    const result = await runCli(
      `push --adapter ${dir} --repo ${REPO} --private --token-env MY_HUB_TOKEN --dataset addition.jsonl`,
    );
    expect(result.stderr).toBe(`pushing ${dir} to ${REPO} on ${hub.url}\n`);
    expect(result.stdout).toMatch(
      /^created alice\/tiny-lora: committed adapter_config\.json, adapter_model\.safetensors, README\.md \([0-9a-f]{7}\) http:\/\/127\.0\.0\.1:\d+\/alice\/tiny-lora\/commit\/[0-9a-f]{40}\n$/,
    );
    expect(result.code).toBe(0);
    expect(hub.repoState()).toEqual({ exists: true, private: true });
    for (const [name, bytes] of Object.entries(adapterBytes)) {
      expect(Buffer.from(await readBack(name)).equals(Buffer.from(bytes)), name).toBe(true);
    }
    const card = new TextDecoder().decode(await readBack('README.md'));
    const meta = parseYaml(/^---\n([\s\S]*?)\n---\n/.exec(card)![1]) as Record<string, unknown>;
    expect(meta).toMatchObject({ library_name: 'peft', base_model: 'HuggingFaceTB/SmolLM2-135M' });
    expect(card).toContain(`fine-tuned with tunelab ${version} on \`addition.jsonl\`.`);
    for (const row of [
      '| lora.r | 2 |',
      '| lora.targets | q_proj, v_proj |',
      '| lr | 0.0003 |',
      '| stepsDone | 20 |',
    ])
      expect(card).toContain(row);
    // The last evaluation, not the first.
    expect(card).toContain('| eval_loss | 1.75 | 20 |');
    expect(card).toContain('| perplexity | 5.7546 | 20 |');
    expect(card).not.toContain(TOKEN);
  });

  it('HF_TOKEN by default; --base-model names a base the folder does not', async () => {
    vi.stubEnv('HF_TOKEN', TOKEN);
    const result = await runCli(`push --adapter ${dir} --repo ${REPO} --base-model org/other-base`);
    expect(result.code).toBe(0);
    expect(hub.repoState().private).toBe(false);
    expect(new TextDecoder().decode(await readBack('README.md'))).toContain('base_model: org/other-base');
  });

  it('a token the Hub refuses: exit 1, the step and the repo named, the token nowhere in the output', async () => {
    vi.stubEnv('MY_HUB_TOKEN', 'hf_wrongToken777');
    const result = await runCli(`push --adapter ${dir} --repo ${REPO} --token-env MY_HUB_TOKEN`);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /tunelab push: could not create the repo for alice\/tiny-lora: the Hub refused the token \(401/,
    );
    expect(result.stderr + result.stdout).not.toContain('hf_wrongToken777');
    expect(hub.repoState().exists).toBe(false);
  });

  it('a token without write access: exit 1 with a 403 message', async () => {
    vi.stubEnv('MY_HUB_TOKEN', 'hf_readOnly1');
    const result = await runCli(`push --adapter ${dir} --repo ${REPO} --token-env MY_HUB_TOKEN`);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('the token has no write access there (403');
    expect(result.stderr).not.toContain('hf_readOnly1');
  });

  it.each([
    [
      'an unset token variable',
      `--repo ${REPO} --token-env NOT_SET_ANYWHERE`,
      '--token-env: the environment variable NOT_SET_ANYWHERE is not set',
    ],
    ['a token flag', `--repo ${REPO} --token ${TOKEN}`, "Unknown option '--token'"],
    [
      'a bad variable name',
      `--repo ${REPO} --token-env 1-X`,
      "--token-env: expected the name of an environment variable, got '1-X'",
    ],
    [
      'an invalid repo',
      '--repo just-a-name --token-env MY_HUB_TOKEN',
      "--repo: expected 'owner/name', got 'just-a-name'",
    ],
    ['no --repo', '--token-env MY_HUB_TOKEN', '--repo is required'],
  ])('%s is a usage error (exit 2) before any request', async (_, flags, message) => {
    const result = await runCli(`push --adapter ${dir} ${flags}`);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n\n')[0]).toContain(message);
    expect(result.stderr).not.toContain(TOKEN);
    expect(hub.requests).toEqual([]);
  });

  it.each([
    ['no weights', 'adapter_model.safetensors', null, 'adapter_model.safetensors: no such file'],
    [
      'weights that are not safetensors',
      'adapter_model.safetensors',
      'not safetensors at all',
      'adapter_model.safetensors: header length',
    ],
    [
      'a config that is not JSON',
      'adapter_config.json',
      '{"peft_type": ',
      'adapter_config.json: not valid JSON',
    ],
    [
      'a config that is not LoRA',
      'adapter_config.json',
      '{"peft_type": "IA3"}',
      'expected a PEFT LoRA config',
    ],
    [
      'a config without a base model',
      'adapter_config.json',
      '{"peft_type": "LORA"}',
      'base_model_name_or_path is missing',
    ],
    [
      'a bad metrics line',
      'metrics.jsonl',
      '{"type": "eval"}\n[1, 2]\n',
      'metrics.jsonl:2: expected a JSON object',
    ],
  ])(
    'an adapter folder with %s is refused naming the file, before any request',
    async (_, file, contents, message) => {
      if (contents === null) await rm(join(dir, file));
      else await writeFile(join(dir, file), contents);
      const result = await runCli(`push --adapter ${dir} --repo ${REPO} --token-env MY_HUB_TOKEN`);
      expect(result.code).toBe(2);
      expect(result.stderr.split('\n\n')[0]).toContain(`tunelab push: --adapter: ${join(dir, file)}`);
      expect(result.stderr).toContain(message);
      expect(hub.requests).toEqual([]);
    },
  );

  it('an --adapter that is not a folder is refused', async () => {
    const result = await runCli(
      `push --adapter ${join(dir, 'nope')} --repo ${REPO} --token-env MY_HUB_TOKEN`,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`--adapter: '${join(dir, 'nope')}' is not a directory`);
  });
});
