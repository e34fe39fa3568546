// Node side of model loading: a file on disk as a random-access ByteSource, and a model directory as
// ModelFiles. Each read opens, reads and closes, so nothing holds a descriptor between tensors.

import { open, readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { ByteSource, ModelFiles } from '../engine/checkpoint/byte-source.ts';
import { sourcesFiles } from '../engine/checkpoint/byte-source.ts';

export async function nodeFileSource(path: string, name = path): Promise<ByteSource> {
  const { size } = await stat(path);
  return {
    name,
    size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) {
        throw new RangeError(
          `${name}: read of ${length} bytes at ${offset} runs past the end (${size} bytes)`,
        );
      }
      const out = new Uint8Array(length);
      const handle = await open(path, 'r');
      try {
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(out, done, length - done, offset + done);
          if (bytesRead === 0) throw new Error(`${name}: file ended at ${offset + done} of ${size} bytes`);
          done += bytesRead;
        }
      } finally {
        await handle.close();
      }
      return out;
    },
  };
}

/** Every file under `dir` (recursively), named by its path relative to `dir` with '/' separators. */
export async function nodeDirectoryFiles(dir: string): Promise<ModelFiles> {
  let entries;
  try {
    entries = await readdir(dir, { recursive: true, withFileTypes: true });
  } catch (e) {
    throw new Error(`${dir}: cannot read the model directory (${(e as Error).message})`);
  }
  const sources: ByteSource[] = [];
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath ?? entry.path, entry.name);
    sources.push(await nodeFileSource(full, relative(dir, full).split(sep).join('/')));
  }
  return sourcesFiles(dir, sources);
}
