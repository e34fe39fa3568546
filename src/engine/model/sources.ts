// Where a model's files come from, all presented as ModelFiles (name → random-access ByteSource):
//   hubModel()     a Hub repo at a revision, downloaded with @huggingface/hub, with byte progress, cached in
//                  Cache Storage when the host has it, so a second load needs no network;
//   localFiles()   File objects from a file picker or a dropped folder, matched by name;
//   src/node/files.ts nodeDirectoryFiles() for a directory in Node.
// Access tokens stay in memory: never written to the cache, to storage or into a message.

import { downloadFile, listFiles } from '@huggingface/hub';
import type { ByteSource, ModelFiles } from '../checkpoint/byte-source.ts';
import { blobSource, sourcesFiles } from '../checkpoint/byte-source.ts';

/** Files a model load needs from a repo root; everything else (ONNX exports, .bin, images) is skipped. */
export function isModelFile(path: string): boolean {
  if (path.includes('/')) return false;
  return (
    /^(config|generation_config|tokenizer|tokenizer_config|special_tokens_map)\.json$/.test(path) ||
    path === 'chat_template.jinja' ||
    /^model(-\d+-of-\d+)?\.safetensors$/.test(path) ||
    path === 'model.safetensors.index.json'
  );
}

// ───────────────────────────── local files ─────────────────────────────

/**
 * Files picked or dropped in the page. A dropped folder's files carry `webkitRelativePath`
 * ('SmolLM2-135M/config.json'): the top folder is stripped, so names match the repo layout.
 */
export function localFiles(files: Iterable<File>, label = 'local files'): ModelFiles {
  const sources: ByteSource[] = [];
  const seen = new Set<string>();
  for (const file of files) {
    const rel = file.webkitRelativePath;
    const name = rel && rel.includes('/') ? rel.slice(rel.indexOf('/') + 1) : file.name;
    if (seen.has(name)) throw new Error(`${label}: two files are named '${name}'`);
    seen.add(name);
    sources.push(blobSource(name, file));
  }
  return sourcesFiles(label, sources);
}

// ───────────────────────────── the Hub ─────────────────────────────

/** Persistent storage of downloaded files, keyed by repo, revision and path. */
export interface ModelCache {
  get(key: string): Promise<Blob | null>;
  /**
   * Stores the bytes of `body` and returns the stored copy (disk-backed where the host allows). Bytes that are
   * not `size` long are refused: it throws and keeps nothing under `key`.
   */
  put(key: string, body: Blob | ReadableStream<Uint8Array>, size: number): Promise<Blob>;
}

/** Cache Storage (page or worker, secure context), or null where the host has none (Node, http pages). */
export function cacheStorageModelCache(name = 'tunelab-models-v1'): ModelCache | null {
  const storage = (globalThis as { caches?: CacheStorage }).caches;
  if (!storage) return null;
  const url = (key: string) => `https://tunelab.invalid/${encodeURI(key)}`;
  return {
    async get(key) {
      const hit = await (await storage.open(name)).match(url(key));
      return hit ? hit.blob() : null;
    },
    async put(key, body, size) {
      const cache = await storage.open(name);
      const headers = { 'content-length': String(size), 'content-type': 'application/octet-stream' };
      await cache.put(url(key), new Response(body, { headers }));
      const stored = await cache.match(url(key));
      if (!stored) throw new Error(`model cache: ${key} was not stored (storage full?)`);
      const blob = await stored.blob();
      if (blob.size !== size) {
        await cache.delete(url(key));
        throw new Error(`model cache: ${key} has ${blob.size} bytes, expected ${size}`);
      }
      return blob;
    },
  };
}

/** An in-memory ModelCache (tests; a session that should not persist anything). */
export function memoryModelCache(): ModelCache & { keys(): string[] } {
  const entries = new Map<string, Blob>();
  return {
    keys: () => [...entries.keys()],
    async get(key) {
      return entries.get(key) ?? null;
    },
    async put(key, body, size) {
      const blob = body instanceof Blob ? body : await new Response(body).blob();
      if (blob.size !== size) throw new Error(`model cache: ${key} has ${blob.size} bytes, expected ${size}`);
      entries.set(key, blob);
      return blob;
    },
  };
}

export interface HubProgress {
  /** File being downloaded. */
  file: string;
  fileLoaded: number;
  fileTotal: number;
  /** Over all files of this load (cached files count as loaded). */
  loaded: number;
  total: number;
}

export interface HubModelOptions {
  /** 'owner/name' (or a legacy single name such as 'gpt2'). */
  repo: string;
  /** Branch, tag or commit hash; default 'main'. */
  revision?: string;
  /** Hub access token for gated or private repos; held in memory for this load only. */
  accessToken?: string;
  hubUrl?: string;
  /** Default: Cache Storage where available, else none (Node reads ranges straight from the Hub). */
  cache?: ModelCache | null;
  onProgress?: (p: HubProgress) => void;
  /** Injected fetch (a proxy, a test that must prove no request is made). */
  fetch?: typeof fetch;
}

const REPO_ID = /^(?:[A-Za-z0-9][\w.-]{0,95}\/)?[A-Za-z0-9][\w.-]{0,95}$/;

/** Checks the arguments of a Hub load; throws naming the argument. */
export function checkHubOptions(opts: HubModelOptions): void {
  if (typeof opts.repo !== 'string' || !REPO_ID.test(opts.repo) || opts.repo.includes('..')) {
    throw new Error(`repo: '${String(opts.repo)}' is not a Hub repo id like 'HuggingFaceTB/SmolLM2-135M'`);
  }
  const rev = opts.revision ?? 'main';
  if (
    typeof rev !== 'string' ||
    rev.length === 0 ||
    rev.length > 256 ||
    rev.includes('..') ||
    /[\s~^:?*[\\]/.test(rev)
  ) {
    throw new Error(`revision: '${String(rev)}' is not a branch, tag or commit hash`);
  }
  if (
    opts.accessToken !== undefined &&
    (typeof opts.accessToken !== 'string' || !/^\S+$/.test(opts.accessToken))
  ) {
    throw new Error('accessToken: must be a non-empty string without spaces');
  }
}

interface Listing {
  files: { path: string; size: number }[];
}

const listingKey = (repo: string, revision: string) => `${repo}@${revision}/.tunelab-listing.json`;
const fileKey = (repo: string, revision: string, path: string) => `${repo}@${revision}/${path}`;

/** Wraps a byte stream to report its progress. */
function counting(
  stream: ReadableStream<Uint8Array>,
  onBytes: (n: number) => void,
): ReadableStream<Uint8Array> {
  return stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        onBytes(chunk.byteLength);
        controller.enqueue(chunk);
      },
    }),
  );
}

async function cachedListing(cache: ModelCache, repo: string, revision: string): Promise<Listing | null> {
  const blob = await cache.get(listingKey(repo, revision));
  if (!blob) return null;
  try {
    const listing = JSON.parse(await blob.text()) as Listing;
    for (const f of listing.files) {
      const hit = await cache.get(fileKey(repo, revision, f.path));
      if (!hit || hit.size !== f.size) return null;
    }
    return listing;
  } catch {
    return null;
  }
}

/**
 * A Hub model's files. With a cache, every file is downloaded once (with progress) and later loads of the
 * same repo@revision are served from it without any request; without one, files are read by HTTP range
 * requests as tensors are needed.
 */
export async function hubModel(opts: HubModelOptions): Promise<ModelFiles> {
  checkHubOptions(opts);
  const { repo, accessToken, hubUrl } = opts;
  const revision = opts.revision ?? 'main';
  const label = `${repo}@${revision}`;
  const cache = opts.cache === undefined ? cacheStorageModelCache() : opts.cache;
  const hub = { repo, revision, hubUrl, fetch: opts.fetch, ...(accessToken ? { accessToken } : {}) };

  if (cache) {
    const listing = await cachedListing(cache, repo, revision);
    if (listing) {
      const sources = await Promise.all(
        listing.files.map(async (f) =>
          blobSource(f.path, (await cache.get(fileKey(repo, revision, f.path)))!),
        ),
      );
      return sourcesFiles(label, sources);
    }
  }

  const files: { path: string; size: number }[] = [];
  try {
    for await (const entry of listFiles({ ...hub, recursive: false })) {
      if (entry.type === 'file' && isModelFile(entry.path)) {
        files.push({ path: entry.path, size: entry.lfs?.size ?? entry.size });
      }
    }
  } catch (e) {
    throw new Error(`${label}: cannot list the repo files (${(e as Error).message})`);
  }
  if (!files.some((f) => f.path === 'config.json')) throw new Error(`${label}: the repo has no config.json`);
  const progress = { loaded: 0, total: files.reduce((s, f) => s + f.size, 0) };
  const sources: ByteSource[] = [];
  for (const f of files) {
    try {
      const blob = await downloadFile({ ...hub, path: f.path });
      if (!blob) throw new Error('listed but not served');
      if (!cache) {
        const source = failuresNamed(blobSource(f.path, blob), label);
        sources.push(progressSource(source, f.size, progress, opts.onProgress));
        continue;
      }
      let fileLoaded = 0;
      const stream = counting(blob.stream(), (n) => {
        fileLoaded += n;
        progress.loaded += n;
        opts.onProgress?.({ file: f.path, fileLoaded, fileTotal: f.size, ...progress });
      });
      // put() refuses bytes that are not the listed size, keeping nothing.
      sources.push(blobSource(f.path, await cache.put(fileKey(repo, revision, f.path), stream, f.size)));
    } catch (e) {
      throw downloadError(label, f.path, e);
    }
  }
  if (cache) {
    // Written last: a listing in the cache means every file it names is there.
    const text = JSON.stringify({ files } satisfies Listing);
    await cache.put(listingKey(repo, revision), new Blob([text]), new Blob([text]).size);
  }
  return sourcesFiles(label, sources);
}

/** @huggingface/hub aborts a failed download's stream with the message alone (a string): name what failed. */
function downloadError(label: string, path: string, e: unknown): Error {
  return new Error(`${label}: cannot download ${path} (${e instanceof Error ? e.message : String(e)})`);
}

/** Range reads from the Hub (no cache) fail with the repo and the file named, as a cached download does. */
function failuresNamed(source: ByteSource, label: string): ByteSource {
  return {
    name: source.name,
    size: source.size,
    read: (offset, length) =>
      source.read(offset, length).catch((e: unknown) => {
        throw downloadError(label, source.name, e);
      }),
  };
}

/**
 * A source that reports the bytes read through it (the no-cache path reads ranges on demand), per file and
 * over the whole load (`progress`, shared by the load's sources); re-reads count until the file size.
 */
function progressSource(
  source: ByteSource,
  fileTotal: number,
  progress: { loaded: number; total: number },
  onProgress?: (p: HubProgress) => void,
): ByteSource {
  if (!onProgress) return source;
  let fileLoaded = 0;
  return {
    name: source.name,
    size: source.size,
    read: async (offset, length) => {
      const bytes = await source.read(offset, length);
      const added = Math.min(length, fileTotal - fileLoaded);
      fileLoaded += added;
      progress.loaded += added;
      onProgress({ file: source.name, fileLoaded, fileTotal, ...progress });
      return bytes;
    },
  };
}

/** Puts files into a cache as a Hub load would (seeding an offline cache, and tests of the cached path). */
export async function seedModelCache(
  cache: ModelCache,
  repo: string,
  revision: string,
  files: ReadonlyMap<string, Blob>,
): Promise<void> {
  const list: { path: string; size: number }[] = [];
  for (const [path, blob] of files) {
    await cache.put(fileKey(repo, revision, path), blob, blob.size);
    list.push({ path, size: blob.size });
  }
  const text = JSON.stringify({ files: list } satisfies Listing);
  await cache.put(listingKey(repo, revision), new Blob([text]), new Blob([text]).size);
}
