// The Node cache of tuned kernel choices: a record round-trips through the file, another adapter's or version's
// record is ignored, a corrupt file is ignored with a warning (and replaced by the next save), writes are atomic.
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KernelTuning, TUNING_VERSION } from '../../../src/engine/gpu/tuning.ts';
import {
  loadTuningCache,
  saveTuningCache,
  tuningCacheDir,
  tuningCachePath,
} from '../../../src/node/tuning-cache.ts';

let dir: string;
let path: string;
let warnings: string[];
const warn = (m: string) => warnings.push(m);
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-tuning-'));
  path = join(dir, 'nested', 'tuning.json');
  warnings = [];
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function tuned(adapter: string): KernelTuning {
  const t = new KernelTuning(adapter);
  t.set('matmul', 'kk:f16f16f16:1024x1024x1024', 't128x64', 0.125);
  t.set('matmul', 'mn:f32f16f32:16x1024x1024', 'generic');
  t.tunedAt = '2026-12-01T10:00:00.000Z';
  return t;
}

describe('tuning cache file', () => {
  it('round-trips a record (choices, times, date), creating the folder', async () => {
    const a = tuned('nvidia / ampere / RTX 3060');
    await saveTuningCache(a, path, warn);
    const back = new KernelTuning('nvidia / ampere / RTX 3060');
    expect(await loadTuningCache(back, path, warn)).toBe(true);
    expect(back.toRecord()).toEqual(a.toRecord());
    expect(back.ms('matmul', 'kk:f16f16f16:1024x1024x1024')).toBe(0.125);
    expect(warnings).toEqual([]);
    expect(await readdir(join(dir, 'nested'))).toEqual(['tuning.json']); // no temporary file left
  });

  it('keeps each adapter’s record; another adapter’s is never loaded', async () => {
    await saveTuningCache(tuned('card A'), path, warn);
    const b = new KernelTuning('card B');
    b.set('matmul', 'kk:f32f32f32:64x64x64', 't32x32');
    await saveTuningCache(b, path, warn);
    const other = new KernelTuning('card C');
    expect(await loadTuningCache(other, path, warn)).toBe(false);
    expect(other.size).toBe(0);
    const a = new KernelTuning('card A');
    expect(await loadTuningCache(a, path, warn)).toBe(true);
    expect(a.get('matmul', 'kk:f16f16f16:1024x1024x1024')).toBe('t128x64');
    const b2 = new KernelTuning('card B');
    expect(await loadTuningCache(b2, path, warn)).toBe(true);
    expect(b2.entries()).toEqual(b.entries());
  });

  it('ignores a record of another TUNING_VERSION, and one filed under the wrong adapter', async () => {
    const stale = { ...tuned('card A').toRecord(), version: TUNING_VERSION - 1 };
    const misfiled = tuned('card B').toRecord();
    const flat = join(dir, 'tuning.json');
    await writeFile(flat, JSON.stringify({ records: { 'card A': stale, 'card C': misfiled } }));
    const a = new KernelTuning('card A');
    a.set('matmul', 'x', 'generic');
    expect(await loadTuningCache(a, flat, warn)).toBe(false);
    expect(a.entries()).toEqual([['matmul/x', 'generic']]); // untouched
    expect(await loadTuningCache(new KernelTuning('card C'), flat, warn)).toBe(false);
  });

  it('a missing file loads nothing, silently', async () => {
    expect(await loadTuningCache(new KernelTuning('card A'), path, warn)).toBe(false);
    expect(warnings).toEqual([]);
  });

  it.each([
    ['not JSON', '{"records": {"card A": '],
    ['JSON without records', '[1, 2]'],
    ['records not an object', '{"records": "card A"}'],
    [
      'a record of the wrong shape',
      '{"records": {"card A": {"version": 1, "adapter": "card A", "choices": 3}}}',
    ],
  ])('a corrupt file (%s) is ignored with a warning and replaced by the next save', async (_, text) => {
    const flat = join(dir, 'tuning.json');
    await writeFile(flat, text);
    const a = new KernelTuning('card A');
    expect(await loadTuningCache(a, flat, warn)).toBe(false);
    expect(a.size).toBe(0);
    const structural = !text.includes('"choices": 3');
    expect(warnings.length).toBe(structural ? 1 : 0); // a bad record is refused by KernelTuning.load itself
    if (structural) expect(warnings[0]).toMatch(/tuning\.json is corrupt/);
    await saveTuningCache(tuned('card A'), flat, warn);
    expect(await loadTuningCache(new KernelTuning('card A'), flat, warn)).toBe(true);
    expect(JSON.parse(await readFile(flat, 'utf8')).records['card A'].choices).toBeDefined();
  });
});

describe('where the cache lives', () => {
  it('TUNELAB_CACHE_DIR, else $XDG_CACHE_HOME/tunelab, else ~/.cache/tunelab', () => {
    expect(tuningCacheDir({ TUNELAB_CACHE_DIR: '/x/y', XDG_CACHE_HOME: '/c' })).toBe('/x/y');
    expect(tuningCacheDir({ XDG_CACHE_HOME: '/c' })).toBe('/c/tunelab');
    expect(tuningCacheDir({})).toBe(join(homedir(), '.cache', 'tunelab'));
    expect(tuningCachePath({ TUNELAB_CACHE_DIR: '/x' })).toBe('/x/tuning.json');
  });
});
