// Compiles Python text with `python3 -m py_compile` (syntax only); undefined when python3 is absent.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const python3Available = spawnSync('python3', ['--version']).status === 0;
if (!python3Available) console.warn('python3 not found: Python exports are not compiled');

/** PyYAML (what axolotl reads its config with), for the YAML round trips. */
export const pyYamlAvailable = python3Available && spawnSync('python3', ['-c', 'import yaml']).status === 0;

/** null when the source compiles, else python's error text. */
export function pyCompileError(source: string, name = 'script.py'): string | null {
  const dir = mkdtempSync(join(tmpdir(), 'tunelab-py-'));
  try {
    const file = join(dir, name);
    writeFileSync(file, source);
    const r = spawnSync('python3', ['-m', 'py_compile', file], { encoding: 'utf8' });
    return r.status === 0 ? null : `${r.stderr}${r.stdout}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs a Python snippet, returning stdout (throws with stderr on failure). */
export function runPython(source: string): string {
  const r = spawnSync('python3', ['-c', source], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}
