// pushAdapter() for real through @huggingface/hub, over HTTP, to the fake Hub on 127.0.0.1
// (test/fixtures/fake-hub.ts): create, preupload, LFS batch and upload, the NDJSON commit; then the files read
// back through the same fake Hub's download path. Errors: 401, 403, an invalid name, an unreachable Hub, a
// failed commit or LFS upload (nothing half-pushed), and the token in no error and not in the card.

import { downloadFile } from '@huggingface/hub';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import {
  ALL_LINEAR,
  resolveTargets,
  type LoraConfig,
  type LoraModelShape,
} from '../../../src/engine/lora/config.ts';
import { initLoraParams, loraLayout } from '../../../src/engine/lora/init.ts';
import { exportPeftAdapter } from '../../../src/engine/lora/peft.ts';
import {
  HubPushError,
  modelCard,
  pushAdapter,
  repoNameProblem,
  type HubPushInput,
  type ModelCardInput,
} from '../../../src/engine/export/hub-push.ts';
import type { FakeHub, FakeHubOptions } from '../../fixtures/fake-hub.ts';
import { startFakeHub } from '../../fixtures/fake-hub.ts';

const WRITE_TOKEN = 'hf_writeSecret0123456789';
const READ_TOKEN = 'hf_readOnlySecret0123456789';
const REPO = 'alice/smollm2-lora';

let running: FakeHub[] = [];
async function fakeHub(opts: Partial<FakeHubOptions> = {}): Promise<FakeHub> {
  const hub = await startFakeHub({
    repo: REPO,
    files: {},
    missing: true,
    writeToken: WRITE_TOKEN,
    readOnlyToken: READ_TOKEN,
    ...opts,
  });
  running.push(hub);
  return hub;
}
afterEach(async () => {
  await Promise.all(running.map((h) => h.close()));
  running = [];
});

/** A real PEFT adapter of a tiny Llama, as the trainer exports it. */
function adapter(): HubPushInput['files'] {
  const shape: LoraModelShape = {
    family: 'llama',
    hidden: 24,
    ffn: 40,
    heads: 4,
    kvHeads: 2,
    headDim: 6,
    layers: 2,
  };
  const config: LoraConfig = { r: 4, alpha: 8, dropout: 0.05, targets: ALL_LINEAR, rslora: false };
  const layout = loraLayout(resolveTargets(config, shape), config.r);
  const files = exportPeftAdapter(config, shape, layout, initLoraParams(layout, 7), {
    baseModel: 'HuggingFaceTB/SmolLM2-135M',
  });
  return {
    'adapter_config.json': new TextEncoder().encode(files['adapter_config.json']),
    'adapter_model.safetensors': files['adapter_model.safetensors'],
  };
}

const CARD: ModelCardInput = {
  baseModel: 'HuggingFaceTB/SmolLM2-135M',
  dataset: 'addition.jsonl',
  hyperparameters: {
    'lora.r': 4,
    'lora.alpha': 8,
    'lora.targets': 'all-linear',
    lr: 0.0002,
    schedule: 'cosine',
  },
  metrics: [{ name: 'eval_loss', value: 1.23456789, step: 40 }],
  tunelabVersion: '0.1.0',
};

function input(hub: FakeHub, over: Partial<HubPushInput> = {}): HubPushInput {
  return { repo: REPO, token: WRITE_TOKEN, files: adapter(), card: CARD, hubUrl: hub.url, ...over };
}

/** The front matter of a model card, parsed as YAML. */
function frontMatter(card: string): Record<string, unknown> {
  const m = /^---\n([\s\S]*?)\n---\n/.exec(card);
  if (!m) throw new Error('no front matter');
  return parseYaml(m[1]) as Record<string, unknown>;
}

async function rejection(promise: Promise<unknown>): Promise<HubPushError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HubPushError);
  return error as HubPushError;
}

async function readBack(hub: FakeHub, path: string): Promise<Uint8Array | null> {
  const blob = await downloadFile({ repo: REPO, path, hubUrl: hub.url });
  return blob ? new Uint8Array(await blob.arrayBuffer()) : null;
}

describe('pushAdapter', () => {
  it('creates the repo and commits the adapter and card; every file reads back byte for byte', async () => {
    const hub = await fakeHub();
    const files = adapter();
    const result = await pushAdapter(input(hub, { files, private: true }));

    expect(result).toMatchObject({ repo: REPO, created: true });
    expect(result.commitOid).toMatch(/^[0-9a-f]{40}$/);
    expect(result.files).toEqual(['adapter_config.json', 'adapter_model.safetensors', 'README.md']);
    expect(hub.repoState()).toEqual({ exists: true, private: true });
    expect(hub.commits).toEqual(['Upload LoRA adapter with tunelab']);
    // The weights went through git-lfs (batch, then a PUT of the bytes), the config and card inline.
    const paths = hub.requests.map((r) => `${r.method} ${new URL(r.url, hub.url).pathname}`);
    expect(paths).toEqual([
      'POST /api/repos/create',
      `POST /api/models/${REPO}/preupload/main`,
      `POST /${REPO}.git/info/lfs/objects/batch`,
      expect.stringMatching(/^PUT \/lfs-upload\/[0-9a-f]{64}$/),
      `POST /api/models/${REPO}/commit/main`,
    ]);

    for (const [name, bytes] of Object.entries(files)) {
      expect(Buffer.from((await readBack(hub, name))!).equals(Buffer.from(bytes)), name).toBe(true);
    }
    const card = new TextDecoder().decode((await readBack(hub, 'README.md'))!);
    expect(card).toBe(modelCard(CARD));
  });

  it('pushes again to an existing repo (409 on create) and replaces the files', async () => {
    const hub = await fakeHub();
    await pushAdapter(input(hub));
    const second = adapter();
    second['adapter_config.json'] = new TextEncoder().encode('{"r": 8}');
    const result = await pushAdapter(input(hub, { files: second, title: 'second' }));
    expect(result.created).toBe(false);
    expect(hub.commits).toEqual(['Upload LoRA adapter with tunelab', 'second']);
    expect(new TextDecoder().decode((await readBack(hub, 'adapter_config.json'))!)).toBe('{"r": 8}');
    // The weights did not change: the LFS batch found the object stored and nothing was uploaded again.
    expect(hub.requests.filter((r) => r.method === 'PUT')).toHaveLength(1);
  });

  it('a token the Hub does not know is a 401 naming the step; nothing is created', async () => {
    const hub = await fakeHub();
    const error = await rejection(pushAdapter(input(hub, { token: 'hf_unknownToken999' })));
    expect(error).toMatchObject({ problem: 'bad-token', status: 401, step: 'create the repo' });
    expect(error.message).toMatch(
      /could not create the repo for alice\/smollm2-lora: the Hub refused the token/,
    );
    expect(hub.repoState().exists).toBe(false);
  });

  it('a token without write access is a 403 naming the repo; nothing is committed', async () => {
    const hub = await fakeHub({ missing: false });
    const error = await rejection(pushAdapter(input(hub, { token: READ_TOKEN })));
    expect(error).toMatchObject({ problem: 'forbidden', status: 403, step: 'create the repo' });
    expect(error.message).toMatch(/alice\/smollm2-lora: the token has no write access there \(403/);
    expect(hub.commits).toEqual([]);
  });

  it("a repo under someone else's namespace is a 403", async () => {
    const hub = await fakeHub();
    const error = await rejection(pushAdapter(input(hub, { repo: 'bob/other' })));
    expect(error).toMatchObject({ problem: 'forbidden', status: 403 });
    expect(error.message).toContain('bob/other');
  });

  it.each([
    ['no-slash', /expected 'owner\/name'/],
    ['a/b/c', /expected 'owner\/name'/],
    ['/name', /the owner in '\/name' is empty/],
    ['alice/', /the name in 'alice\/' is empty/],
    ['alice/my model', /the name 'my model'/],
    ['alice/-lead', /not start or end with '-' or '.'/],
    ['alice/a..b', /'\.\.'/],
    [`alice/${'x'.repeat(97)}`, /longer than 96 characters/],
  ])('an invalid repo name %j is refused before any request', async (repo, why) => {
    const hub = await fakeHub();
    const error = await rejection(pushAdapter(input(hub, { repo })));
    expect(error.problem).toBe('invalid-repo');
    expect(error.message).toMatch(why);
    expect(hub.requests).toEqual([]);
  });

  it('a token that is not an hf_ token, or a missing adapter file, is refused before any request', async () => {
    const hub = await fakeHub();
    for (const token of ['', 'secret-not-hf', 'hf_ with space']) {
      const error = await rejection(pushAdapter(input(hub, { token })));
      expect(error.problem).toBe('invalid-token');
      if (token) expect(error.message).not.toContain(token);
    }
    const files = adapter();
    files['adapter_model.safetensors'] = new Uint8Array(0);
    const error = await rejection(pushAdapter(input(hub, { files })));
    expect(error).toMatchObject({ problem: 'invalid-adapter' });
    expect(error.message).toContain('adapter_model.safetensors');
    expect(hub.requests).toEqual([]);
  });

  it('an unreachable Hub is a network error naming the address', async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address() as { port: number };
        s.close(() => resolve(port));
      });
    });
    const hubUrl = `http://127.0.0.1:${port}`;
    const error = await rejection(
      pushAdapter({ repo: REPO, token: WRITE_TOKEN, files: adapter(), card: CARD, hubUrl }),
    );
    expect(error).toMatchObject({ problem: 'network', step: 'create the repo' });
    expect(error.message).toContain(`the Hub at ${hubUrl} could not be reached (ECONNREFUSED)`);
  });

  it.each(['commit', 'lfs-upload'] as const)(
    'a failed %s rejects and leaves no file on the Hub (nothing half-pushed is reported done)',
    async (failWrite) => {
      const hub = await fakeHub({ failWrite });
      const error = await rejection(pushAdapter(input(hub)));
      expect(error).toMatchObject({ problem: 'hub', status: 500, step: 'upload the files' });
      expect(error.message).toMatch(
        /could not upload the files for alice\/smollm2-lora: .*the repo was created but holds nothing from this push/,
      );
      expect(hub.commits).toEqual([]);
      for (const name of ['adapter_config.json', 'adapter_model.safetensors', 'README.md']) {
        expect(await readBack(hub, name)).toBeNull();
      }
    },
  );

  it('the token is in no error message, no card, and only in Authorization headers', async () => {
    const hub = await fakeHub();
    const errors: HubPushError[] = [];
    // 401 and 403 from the Hub, a failed commit, each carrying a token the Hub might echo.
    for (const token of ['hf_unknownToken999', READ_TOKEN]) {
      errors.push(await rejection(pushAdapter(input(hub, { token }))));
    }
    const failing = await fakeHub({ failWrite: 'commit' });
    errors.push(await rejection(pushAdapter(input(failing))));
    for (const [error, token] of [
      [errors[0], 'hf_unknownToken999'],
      [errors[1], READ_TOKEN],
      [errors[2], WRITE_TOKEN],
    ] as const) {
      expect(error.message).not.toContain(token);
      expect(error.stack ?? '').not.toContain(token);
      expect(JSON.stringify({ ...error })).not.toContain(token);
    }
    await pushAdapter(input(hub));
    const card = new TextDecoder().decode((await readBack(hub, 'README.md'))!);
    expect(card).not.toContain(WRITE_TOKEN);
    for (const r of [...hub.requests, ...failing.requests]) {
      const { authorization, ...rest } = r;
      expect(JSON.stringify(rest)).not.toMatch(/hf_/);
      if (r.url.startsWith('/lfs-upload/')) expect(authorization).toBeUndefined();
    }
  });
});

describe('modelCard', () => {
  it('front matter the Hub reads: library_name peft, base_model, tags; the body names what was used', () => {
    const card = modelCard(CARD);
    expect(frontMatter(card)).toEqual({
      library_name: 'peft',
      base_model: 'HuggingFaceTB/SmolLM2-135M',
      tags: ['peft', 'lora', 'tunelab', 'base_model:adapter:HuggingFaceTB/SmolLM2-135M'],
      pipeline_tag: 'text-generation',
    });
    expect(card).toContain('fine-tuned with tunelab 0.1.0 on `addition.jsonl`.');
    expect(card).toContain('| lora.r | 4 |');
    expect(card).toContain('| lr | 0.0002 |');
    expect(card).toContain('| lora.targets | all-linear |');
    expect(card).toContain('| eval_loss | 1.23457 | 40 |');
    expect(card).toContain('AutoModelForCausalLM.from_pretrained("HuggingFaceTB/SmolLM2-135M")');
  });

  it('a local base model stays out of the metadata (the Hub refuses a base_model that is no model id)', () => {
    const card = modelCard({ ...CARD, baseModel: './runs/SmolLM2-135M', dataset: undefined, metrics: [] });
    const meta = frontMatter(card);
    expect(meta.base_model).toBeUndefined();
    expect(meta.tags).toEqual(['peft', 'lora', 'tunelab']);
    expect(card).toContain('`./runs/SmolLM2-135M` (a local model folder)');
    expect(card).toContain('fine-tuned with tunelab 0.1.0.');
    expect(card).toContain('No evaluation was recorded.');
  });

  it('a dataset or value with a pipe or newline keeps the table whole', () => {
    const card = modelCard({ ...CARD, hyperparameters: { 'odd|name': 'a\nb' } });
    expect(card).toContain('| odd\\|name | a b |');
  });
});

describe('repoNameProblem', () => {
  it('accepts the names the Hub allows', () => {
    for (const ok of ['alice/x', 'HuggingFaceTB/SmolLM2-135M', 'a-b/c_d.e', 'org1/model.v2'])
      expect(repoNameProblem(ok), ok).toBeNull();
  });
});
