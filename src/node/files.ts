// Node file helpers: a file on disk as a random-access ByteSource and a model directory as ModelFiles (each
// read opens, reads and closes, so nothing holds a descriptor between tensors); and writeFileAtomic, which
// every output of the CLI goes through.

import { randomBytes } from 'node:crypto';
import { open, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
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

export interface OutputFile {
  path: string;
  contents: string | Uint8Array;
}

/**
 * Writes `contents` to `path` as a whole or not at all: into a temporary file in the same folder (so the rename
 * stays on one filesystem), flushed to disk, then renamed over `path`. A failure (a full disk, a crash) leaves
 * the previous file as it was, and no temporary file behind.
 */
export async function writeFileAtomic(path: string, contents: string | Uint8Array): Promise<void> {
  await writeFilesAtomic([{ path, contents }]);
}

/**
 * writeFileAtomic for files that belong together (an adapter's config and weights): every temporary file is
 * written before the first rename, so a failed write leaves all the previous files as they were.
 */
export async function writeFilesAtomic(files: readonly OutputFile[]): Promise<void> {
  const temps: string[] = [];
  try {
    for (const file of files) {
      const temp = tempNameFor(file.path);
      temps.push(temp);
      await writeDurably(temp, file.contents);
    }
    for (const [i, file] of files.entries()) {
      await rename(temps[i], file.path);
      temps[i] = '';
    }
  } catch (error) {
    await Promise.all(temps.filter((t) => t !== '').map((t) => rm(t, { force: true })));
    throw error;
  }
}

/** A hidden name next to `path`, unique to this process and call. */
export const tempNameFor = (path: string): string =>
  join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);

async function writeDurably(path: string, contents: string | Uint8Array): Promise<void> {
  const handle = await open(path, 'wx');
  try {
    await handle.writeFile(contents);
    await handle.sync();
  } finally {
    await handle.close();
  }
}
