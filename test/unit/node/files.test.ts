// writeFileAtomic / writeFilesAtomic on the real filesystem: a failed write (a full disk on a small tmpfs, a
// rename refused, a folder missing) leaves the previous files whole and no temporary file behind.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileAtomic, writeFilesAtomic } from '../../../src/node/files.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-files-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A 64 KiB tmpfs at `path`; false where this process may not mount one (not root, a container without it). */
function mountTinyTmpfs(path: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', path], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

describe('writeFileAtomic', () => {
  it('replaces a file with the new contents, leaving no temporary file', async () => {
    const path = join(dir, 'a.json');
    await writeFile(path, 'old');
    await writeFileAtomic(path, 'new');
    expect(await readFile(path, 'utf8')).toBe('new');
    await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    expect([...(await readFile(path))]).toEqual([1, 2, 3]);
    expect(await readdir(dir)).toEqual(['a.json']);
  });

  it('a full disk leaves the previous file whole and no temporary file (a real 64 KiB tmpfs)', async (ctx) => {
    const disk = join(dir, 'tmpfs');
    await mkdir(disk);
    if (!mountTinyTmpfs(disk)) ctx.skip();
    try {
      const path = join(disk, 'adapter_model.safetensors');
      const previous = new Uint8Array(40 * 1024).fill(7);
      await writeFileAtomic(path, previous);
      const bigger = new Uint8Array(48 * 1024).fill(9);
      await expect(writeFileAtomic(path, bigger)).rejects.toMatchObject({ code: 'ENOSPC' });
      expect(new Uint8Array(await readFile(path))).toEqual(previous);
      expect(await readdir(disk)).toEqual(['adapter_model.safetensors']);
    } finally {
      execFileSync('umount', [disk]);
    }
  });

  it('a refused rename (the target is a folder) removes the temporary file and keeps the folder', async () => {
    const target = join(dir, 'taken');
    await mkdir(target);
    await writeFile(join(target, 'inside'), 'kept');
    await expect(writeFileAtomic(target, 'x')).rejects.toThrow();
    expect(await readFile(join(target, 'inside'), 'utf8')).toBe('kept');
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('writeFilesAtomic', () => {
  it('writes all files or none: a failing second file leaves the first one as it was', async () => {
    const first = join(dir, 'adapter_config.json');
    await writeFile(first, 'old config');
    const missing = join(dir, 'no-such-folder', 'adapter_model.safetensors');
    await expect(
      writeFilesAtomic([
        { path: first, contents: 'new config' },
        { path: missing, contents: 'weights' },
      ]),
    ).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(first, 'utf8')).toBe('old config');
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});
