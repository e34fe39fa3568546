// The models a Hub load stored in Cache Storage (src/engine/model/sources.ts), grouped by repo@revision,
// for the Model step's list with delete. Keys are https://tunelab.invalid/<repo>@<revision>/<path>.

export const MODEL_CACHE = 'tunelab-models-v1';

export interface CachedModel {
  /** 'owner/name@revision' */
  key: string;
  files: number;
  bytes: number;
}

const keyPath = (req: Request) => decodeURI(new URL(req.url).pathname.slice(1));

export async function listCachedModels(): Promise<CachedModel[]> {
  if (typeof caches === 'undefined') return [];
  const cache = await caches.open(MODEL_CACHE);
  const groups = new Map<string, CachedModel>();
  for (const req of await cache.keys()) {
    const path = keyPath(req);
    const key = path.slice(0, path.lastIndexOf('/'));
    const g = groups.get(key) ?? { key, files: 0, bytes: 0 };
    const res = await cache.match(req);
    g.files += 1;
    g.bytes += Number(res?.headers.get('content-length') ?? 0);
    groups.set(key, g);
  }
  return [...groups.values()];
}

export async function deleteCachedModel(key: string): Promise<void> {
  const cache = await caches.open(MODEL_CACHE);
  for (const req of await cache.keys()) if (keyPath(req).startsWith(`${key}/`)) await cache.delete(req);
}

/** A file shipped with the page (public/), resolved against the page so any static host and base path work. */
export function assetUrl(path: string): string {
  return new URL(path, document.baseURI).href;
}
