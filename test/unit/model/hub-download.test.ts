// hubModel() downloading for real through @huggingface/hub, over HTTP, from a fake Hub on 127.0.0.1
// (test/fixtures/fake-hub.ts): bytes, progress, the cache, tokens, a lying server and 404s.

import { afterEach, describe, expect, it, vi } from 'vitest';
import type { ModelFiles } from '../../../src/engine/checkpoint/byte-source.ts';
import { openModel } from '../../../src/engine/model/open.ts';
import type { HubProgress } from '../../../src/engine/model/sources.ts';
import { cacheStorageModelCache, hubModel, memoryModelCache } from '../../../src/engine/model/sources.ts';
import type { FakeHub, FakeHubOptions } from '../../fixtures/fake-hub.ts';
import { startFakeHub } from '../../fixtures/fake-hub.ts';
import { buildTinyModel } from '../../fixtures/tiny-models.ts';

const TOKEN = 'hf_fakeHubToken123';

let running: FakeHub[] = [];
async function fakeHub(opts: FakeHubOptions): Promise<FakeHub> {
  const hub = await startFakeHub(opts);
  running.push(hub);
  return hub;
}
afterEach(async () => {
  await Promise.all(running.map((h) => h.close()));
  running = [];
  vi.unstubAllGlobals();
});

const bytesOf = (data: Uint8Array | string) =>
  typeof data === 'string' ? new TextEncoder().encode(data) : data;

/** Every file of `files` read whole, by name. */
async function readAll(files: ModelFiles): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const name of files.names()) {
    const source = await files.open(name);
    out[name] = await source.read(0, source.size);
  }
  return out;
}

function expectSameFiles(got: Record<string, Uint8Array>, want: Record<string, Uint8Array | string>): void {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [name, data] of Object.entries(want)) {
    expect(Buffer.from(got[name]).equals(Buffer.from(bytesOf(data))), name).toBe(true);
  }
}

/** A Cache Storage in memory (Node has none), for cacheStorageModelCache(): open, match, put, delete. */
function memoryCacheStorage(): { storage: CacheStorage; urls(): string[] } {
  const caches = new Map<string, Map<string, { body: ArrayBuffer; headers: [string, string][] }>>();
  const all = () => [...caches.values()].flatMap((c) => [...c.keys()]);
  const storage = {
    async open(name: string) {
      const entries = caches.get(name) ?? new Map();
      caches.set(name, entries);
      return {
        async match(url: string) {
          const e = entries.get(String(url));
          return e ? new Response(e.body, { headers: e.headers }) : undefined;
        },
        async put(url: string, response: Response) {
          entries.set(String(url), { body: await response.arrayBuffer(), headers: [...response.headers] });
        },
        async delete(url: string) {
          return entries.delete(String(url));
        },
      };
    },
  };
  return { storage: storage as unknown as CacheStorage, urls: all };
}

/** A tiny Llama in two shards with an index, plus files a load must skip. */
function tinyRepo() {
  const model = buildTinyModel({ arch: 'llama', dtype: 'BF16', shards: 2 });
  const skipped = {
    'README.md': '# tiny',
    'pytorch_model.bin': new Uint8Array(300).fill(7),
    'onnx/model.onnx': new Uint8Array(100),
  };
  return { model, files: { ...model.files, ...skipped } };
}

describe('hubModel over HTTP from a fake Hub', () => {
  it('downloads every model file byte for byte, with progress up to the listed total', async () => {
    const { model, files } = tinyRepo();
    const hub = await fakeHub({ repo: 'org/tiny-llama', files, pageSize: 2 });
    const events: HubProgress[] = [];
    const cache = memoryModelCache();
    const loaded = await hubModel({
      repo: 'org/tiny-llama',
      hubUrl: hub.url,
      cache,
      onProgress: (p) => events.push({ ...p }),
    });

    expect(loaded.label).toBe('org/tiny-llama@main');
    expectSameFiles(await readAll(loaded), model.files);
    const opened = await openModel(loaded);
    expect(opened.spec.family).toBe('llama');
    expect(opened.spec.hidden).toBe(64);
    expect(opened.spec.layers).toBe(2);

    const total = Object.values(model.files).reduce((s, d) => s + bytesOf(d).byteLength, 0);
    expect(events.length).toBeGreaterThan(0);
    expect(events.every((e) => e.total === total)).toBe(true);
    for (let i = 1; i < events.length; i++) expect(events[i].loaded).toBeGreaterThan(events[i - 1].loaded);
    expect(events.at(-1)!.loaded).toBe(total);
    for (const [name, data] of Object.entries(model.files)) {
      const last = events.filter((e) => e.file === name).at(-1)!;
      expect(last.fileLoaded).toBe(bytesOf(data).byteLength);
      expect(last.fileTotal).toBe(bytesOf(data).byteLength);
    }

    // What the library asked for: the paged tree listing, then per model file a 1-byte probe and the body.
    const paths = hub.requests.map((r) => `${r.method} ${r.url}${r.range ? ` [${r.range}]` : ''}`);
    const tree = '/api/models/org/tiny-llama/tree/main?recursive=false&expand=false';
    const pages = Math.ceil(Object.keys(files).length / 2); // onnx/model.onnx lists as one directory
    expect(paths.slice(0, pages)).toEqual([
      `GET ${tree}`,
      ...Array.from({ length: pages - 1 }, (_, i) => `GET ${tree}&cursor=${2 * (i + 1)}`),
    ]);
    const downloads = paths.slice(pages);
    expect(downloads).toHaveLength(2 * Object.keys(model.files).length);
    for (const name of Object.keys(model.files)) {
      expect(downloads).toContain(`GET /org/tiny-llama/resolve/main/${name} [bytes=0-0]`);
      expect(downloads).toContain(`GET /org/tiny-llama/resolve/main/${name}`);
    }
    expect(paths.some((p) => /README|pytorch_model|onnx/.test(p))).toBe(false);
    expect(hub.requests.some((r) => r.authorization)).toBe(false);
  });

  it('without a cache, reads byte ranges as they are needed', async () => {
    const model = buildTinyModel({ arch: 'qwen2' });
    const hub = await fakeHub({ repo: 'org/tiny-qwen2', revision: 'v1.0', files: model.files });
    const loaded = await hubModel({ repo: 'org/tiny-qwen2', revision: 'v1.0', hubUrl: hub.url, cache: null });
    const opened = await openModel(loaded);
    expect(opened.spec.family).toBe('qwen2');
    expect(opened.spec.hidden).toBe(64);
    const weights = hub.requests.filter((r) => r.url.endsWith('/model.safetensors'));
    // The probe and the safetensors header: ranges only, never the whole file.
    expect(weights.every((r) => r.range)).toBe(true);
    expect(weights.some((r) => r.range !== 'bytes=0-0')).toBe(true);
    expectSameFiles(await readAll(loaded), model.files);
  });

  it('a second load with a cache makes no request and gives the same bytes', async () => {
    const { model, files } = tinyRepo();
    const hub = await fakeHub({ repo: 'org/tiny-llama', files });
    const cache = memoryModelCache();
    const first = await readAll(await hubModel({ repo: 'org/tiny-llama', hubUrl: hub.url, cache }));
    const requests = hub.requests.length;
    expect(requests).toBeGreaterThan(0);

    const second = await hubModel({ repo: 'org/tiny-llama', hubUrl: hub.url, cache });
    expect((await openModel(second)).spec.hidden).toBe(64);
    expectSameFiles(await readAll(second), model.files);
    expectSameFiles(first, model.files);
    expect(hub.requests.length).toBe(requests);
  });

  it('the default cache is Cache Storage where the host has it: the second load makes no request', async () => {
    const { storage, urls } = memoryCacheStorage();
    vi.stubGlobal('caches', storage);
    const model = buildTinyModel({ arch: 'gpt2' });
    const hub = await fakeHub({ repo: 'tiny-gpt2', files: model.files, token: TOKEN });
    await hubModel({ repo: 'tiny-gpt2', hubUrl: hub.url, accessToken: TOKEN }); // cache: the default
    const requests = hub.requests.length;
    expect(urls()).toContain('https://tunelab.invalid/tiny-gpt2@main/model.safetensors');
    expect(urls().some((u) => u.includes(TOKEN))).toBe(false);

    const second = await hubModel({ repo: 'tiny-gpt2', hubUrl: hub.url });
    expect(hub.requests.length).toBe(requests);
    expectSameFiles(await readAll(second), model.files);
    expect((await openModel(second)).spec.family).toBe('gpt2');
  });

  it('a private repo: 401 without the token, a clear error naming the repo; loads with it', async () => {
    const model = buildTinyModel({ arch: 'llama' });
    const hub = await fakeHub({ repo: 'org/private', files: model.files, token: TOKEN });
    await expect(hubModel({ repo: 'org/private', hubUrl: hub.url, cache: null })).rejects.toThrow(
      'org/private@main: cannot list the repo files (Invalid username or password.',
    );
    await expect(
      hubModel({ repo: 'org/private', hubUrl: hub.url, cache: null, accessToken: 'hf_wrong' }),
    ).rejects.toThrow('org/private@main: cannot list the repo files (Invalid username or password.');
    const before = hub.requests.length;

    const loaded = await hubModel({
      repo: 'org/private',
      hubUrl: hub.url,
      cache: memoryModelCache(),
      accessToken: TOKEN,
    });
    expectSameFiles(await readAll(loaded), model.files);
    const authorized = hub.requests.slice(before);
    expect(authorized.length).toBeGreaterThan(0);
    expect(authorized.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it('a gated repo lists to anyone, refuses files without the token; the token never reaches the CDN', async () => {
    const model = buildTinyModel({ arch: 'mistral' });
    const hub = await fakeHub({
      repo: 'org/gated',
      files: model.files,
      token: TOKEN,
      gated: true,
      cdn: true,
    });
    // The listing works, the first download fails: the Hub's words, wrapped with the repo and the file.
    await expect(hubModel({ repo: 'org/gated', hubUrl: hub.url, cache: null })).rejects.toThrow(
      /^org\/gated@main: cannot download config\.json \(Access to model org\/gated is restricted\. .*URL: http:\/\/127\.0\.0\.1:\d+\/org\/gated\/resolve\/main\//,
    );
    hub.requests.length = 0;

    const loaded = await hubModel({
      repo: 'org/gated',
      hubUrl: hub.url,
      cache: memoryModelCache(),
      accessToken: TOKEN,
    });
    expectSameFiles(await readAll(loaded), model.files);
    expect((await openModel(loaded)).spec.family).toBe('mistral');
    const toHub = hub.requests.filter((r) => r.server === 'hub');
    const toCdn = hub.requests.filter((r) => r.server === 'cdn');
    expect(toCdn.length).toBeGreaterThan(0);
    expect(toHub.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
    expect(toCdn.some((r) => r.authorization !== undefined)).toBe(false);
  });

  it("a token @huggingface/hub refuses (no 'hf_') fails before any request", async () => {
    const hub = await fakeHub({ repo: 'org/tiny', files: buildTinyModel({ arch: 'llama' }).files });
    await expect(
      hubModel({ repo: 'org/tiny', hubUrl: hub.url, cache: null, accessToken: 'not-a-hub-token' }),
    ).rejects.toThrow("org/tiny@main: cannot list the repo files (Your access token must start with 'hf_')");
    expect(hub.requests).toEqual([]);
  });

  it('a file shorter than the listing says is refused and not kept (memory cache)', async () => {
    const model = buildTinyModel({ arch: 'llama' });
    const listed = bytesOf(model.files['model.safetensors']).byteLength;
    const hub = await fakeHub({
      repo: 'org/liar',
      files: model.files,
      truncate: { 'model.safetensors': 1000 },
    });
    const cache = memoryModelCache();
    await expect(hubModel({ repo: 'org/liar', hubUrl: hub.url, cache })).rejects.toThrow(
      `org/liar@main: cannot download model.safetensors (model cache: org/liar@main/model.safetensors has 1000 bytes, expected ${listed})`,
    );
    expect(cache.keys().some((k) => k.endsWith('/model.safetensors'))).toBe(false);
    expect(cache.keys().some((k) => k.endsWith('.tunelab-listing.json'))).toBe(false);
  });

  it('a file shorter than the listing says is refused (Cache Storage), and the next load downloads again', async () => {
    const { storage } = memoryCacheStorage();
    vi.stubGlobal('caches', storage);
    const model = buildTinyModel({ arch: 'llama' });
    const listed = bytesOf(model.files['model.safetensors']).byteLength;
    const hub = await fakeHub({
      repo: 'org/liar',
      files: model.files,
      truncate: { 'model.safetensors': 1000 },
    });
    await expect(hubModel({ repo: 'org/liar', hubUrl: hub.url })).rejects.toThrow(
      `org/liar@main: cannot download model.safetensors (model cache: org/liar@main/model.safetensors has 1000 bytes, expected ${listed})`,
    );
    const cache = cacheStorageModelCache()!;
    expect(await cache.get('org/liar@main/.tunelab-listing.json')).toBeNull();
    const requests = hub.requests.length;
    await expect(hubModel({ repo: 'org/liar', hubUrl: hub.url })).rejects.toThrow('has 1000 bytes');
    expect(hub.requests.length).toBeGreaterThan(requests);
  });

  it('a file shorter than the listing says leaves nothing in Cache Storage', async () => {
    const { storage } = memoryCacheStorage();
    vi.stubGlobal('caches', storage);
    const model = buildTinyModel({ arch: 'llama' });
    const hub = await fakeHub({
      repo: 'org/liar',
      files: model.files,
      truncate: { 'model.safetensors': 1000 },
    });
    await hubModel({ repo: 'org/liar', hubUrl: hub.url }).catch(() => undefined);
    expect(await cacheStorageModelCache()!.get('org/liar@main/model.safetensors')).toBeNull();
  });

  it('a download failing after its probe rejects and caches neither the file nor the listing', async () => {
    const model = buildTinyModel({ arch: 'llama' });
    const hub = await fakeHub({ repo: 'org/broken', files: model.files, broken: ['tokenizer.json'] });
    const cache = memoryModelCache();
    const error = await hubModel({ repo: 'org/broken', hubUrl: hub.url, cache }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error instanceof Error ? error.message : String(error)).toMatch(
      /Api error with status 500\. URL: http:\/\/127\.0\.0\.1:\d+\/org\/broken\/resolve\/main\/tokenizer\.json/,
    );
    expect(
      cache.keys().some((k) => k.endsWith('/tokenizer.json') || k.endsWith('.tunelab-listing.json')),
    ).toBe(false);
  });

  it('a download failing after its probe rejects with an Error naming the repo and the file', async () => {
    const model = buildTinyModel({ arch: 'llama' });
    const hub = await fakeHub({ repo: 'org/broken', files: model.files, broken: ['tokenizer.json'] });
    const error = await hubModel({ repo: 'org/broken', hubUrl: hub.url, cache: memoryModelCache() }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toMatch(/^org\/broken@main: .*tokenizer\.json/);
  });

  it('without a cache, a range read that fails names the repo and the file', async () => {
    const model = buildTinyModel({ arch: 'llama' });
    const hub = await fakeHub({ repo: 'org/broken', files: model.files, broken: ['tokenizer.json'] });
    const files = await hubModel({ repo: 'org/broken', hubUrl: hub.url, cache: null });
    await expect(openModel(files)).rejects.toThrow(
      /^org\/broken@main: cannot download tokenizer\.json \(.*500/,
    );
  });

  it('without a cache, progress totals cover the whole load', async () => {
    const model = buildTinyModel({ arch: 'llama' });
    const hub = await fakeHub({ repo: 'org/tiny', files: model.files });
    const events: HubProgress[] = [];
    const loaded = await hubModel({
      repo: 'org/tiny',
      hubUrl: hub.url,
      cache: null,
      onProgress: (p) => events.push(p),
    });
    await openModel(loaded);
    const total = Object.values(model.files).reduce((s, d) => s + bytesOf(d).byteLength, 0);
    expect(events.length).toBeGreaterThan(1);
    expect(events.every((e) => e.total === total)).toBe(true);
  });

  it('an unknown revision or repo is a 404 with a clear error', async () => {
    const hub = await fakeHub({ repo: 'org/tiny', files: buildTinyModel({ arch: 'llama' }).files });
    await expect(
      hubModel({ repo: 'org/tiny', revision: 'nope', hubUrl: hub.url, cache: null }),
    ).rejects.toThrow(
      /^org\/tiny@nope: cannot list the repo files \(Invalid rev id: nope\. URL: http:\/\/127\.0\.0\.1:\d+\/api\/models\/org\/tiny\/tree\/nope/,
    );
    await expect(hubModel({ repo: 'org/missing', hubUrl: hub.url, cache: null })).rejects.toThrow(
      'org/missing@main: cannot list the repo files (Repository not found.',
    );
  });

  it('a repo without config.json is refused after the listing', async () => {
    const hub = await fakeHub({ repo: 'org/docs', files: { 'README.md': '# no model here' } });
    await expect(hubModel({ repo: 'org/docs', hubUrl: hub.url, cache: null })).rejects.toThrow(
      'org/docs@main: the repo has no config.json',
    );
    expect(hub.requests.map((r) => r.url)).toEqual([
      '/api/models/org/docs/tree/main?recursive=false&expand=false',
    ]);
  });
});
