// The setup of the GPU tests that run `tunelab tune` on a tiny model: a temporary directory holding a tiny Llama
// checkpoint, addition prompts to fine-tune it on and a search space for `--space`, made before a test file's
// tests and removed after them.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { SpaceSpec } from '../../src/engine/search/index.ts';
import { buildTinyModel, writeTinyModel } from '../fixtures/tiny-models.ts';

export interface TuneWorkspace {
  /** The temporary directory; the tests write their outputs below it. */
  dir: string;
  /** A tiny Llama checkpoint in HF layout (`buildTinyModel({ arch: 'llama' })`). */
  modelDir: string;
  /** Prompt/completion rows of two-number sums (`additionPrompts`), as JSONL. */
  dataFile: string;
  /** The search space, as `--space` reads it. */
  spaceFile: string;
}

/** `count` JSONL rows `{"prompt": "a+b=", "completion": "c"}`, a and b below 50, the same for every call. */
export function additionPrompts(count: number): string {
  const rows = Array.from({ length: count }, (_, i) => {
    const a = (i * 7) % 50;
    const b = (i * 13) % 50;
    return JSON.stringify({ prompt: `${a}+${b}=`, completion: `${a + b}` });
  });
  return rows.join('\n');
}

/**
 * Registers the hooks that make a workspace (in a directory named `tunelab-<name>-…`) before the calling file's
 * tests and remove it after them. The fields are set once the beforeAll hook has run.
 */
export function useTuneWorkspace(name: string, space: SpaceSpec, rows = 48): TuneWorkspace {
  const workspace: TuneWorkspace = { dir: '', modelDir: '', dataFile: '', spaceFile: '' };
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), `tunelab-${name}-`));
    workspace.dir = dir;
    workspace.modelDir = await writeTinyModel(buildTinyModel({ arch: 'llama' }), join(dir, 'model'));
    workspace.dataFile = join(dir, 'add.jsonl');
    await writeFile(workspace.dataFile, additionPrompts(rows));
    workspace.spaceFile = join(dir, 'space.json');
    await writeFile(workspace.spaceFile, JSON.stringify(space));
  });
  afterAll(async () => {
    if (workspace.dir) await rm(workspace.dir, { recursive: true, force: true });
  });
  return workspace;
}
