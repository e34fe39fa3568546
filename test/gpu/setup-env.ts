// Runs before every GPU test file: an empty kernel-tuning cache of its own, so a CLI run in a test never reads
// or writes the user's ~/.cache/tunelab (src/node/tuning-cache.ts), and no file sees another's choices.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';

const dir = mkdtempSync(join(tmpdir(), 'tunelab-cache-'));
process.env.TUNELAB_CACHE_DIR = dir;
afterAll(() => rmSync(dir, { recursive: true, force: true }));
