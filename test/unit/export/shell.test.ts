// Every shell line the exports print is quoted: bash parses each (in an empty folder, globs that match nothing
// failing, unset variables failing) and must hand the command exactly the words the export meant, whatever the
// model id holds.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { exportBundle, EXPORT_PATHS, type ExportFile } from '../../../src/engine/export/bundle.ts';
import { shellLine, shellQuote } from '../../../src/engine/export/shell.ts';
import { fabricatedContext } from './fixture.ts';

const dir = mkdtempSync(join(tmpdir(), 'tunelab-shell-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The words bash gives a command written as `line` (NUL-separated by printf). */
function bashWords(line: string): string[] {
  const script = `shopt -s failglob; set -u; words() { printf '%s\\0' "$@"; }; words ${line}`;
  const r = spawnSync('bash', ['--norc', '--noprofile', '-c', script], { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bash refused ${line}: ${r.stderr}`);
  return r.stdout.split('\0').slice(0, -1);
}

const NASTY_IDS = [
  'HuggingFaceTB/SmolLM2-135M',
  './my model (copy)',
  "./it's $HOME; rm -rf / `id` *",
  './tab\there "and" back\\slash',
  './new\nline',
  './ünïcode — ok',
];

describe('shellQuote', () => {
  it.each(NASTY_IDS)('bash reads %j back as one word', (id) => {
    expect(bashWords(shellQuote(id))).toEqual([id]);
    expect(bashWords(shellLine(['python', 'x.py', '--model', id]))).toEqual([
      'python',
      'x.py',
      '--model',
      id,
    ]);
  });

  it('leaves plain words alone', () => {
    expect(shellLine(['pip', 'install', 'peft', 'train.jsonl', '--trials', '20'])).toBe(
      'pip install peft train.jsonl --trials 20',
    );
    expect(shellQuote('transformers>=4.41')).toBe("'transformers>=4.41'");
    expect(shellQuote('')).toBe("''");
  });
});

/** The shell lines of an export: the scripts' usage block and the axolotl run line. */
function shellLines(files: ExportFile[]): { path: string; line: string }[] {
  const out: { path: string; line: string }[] = [];
  for (const f of files) {
    if (typeof f.contents !== 'string') continue;
    const lines = f.contents.split('\n');
    const usage = lines.indexOf('# Usage (shell):');
    if (usage >= 0)
      for (const l of lines.slice(usage + 1)) {
        if (!l.startsWith('#   ')) break;
        out.push({ path: f.path, line: l.slice(4) });
      }
    for (const l of lines) if (l.startsWith('# Run: ')) out.push({ path: f.path, line: l.slice(7) });
    // The notebook's shell cells: IPython runs a code cell's `!` line in a shell.
    if (f.path.endsWith('.ipynb'))
      for (const cell of (JSON.parse(f.contents) as { cells: { cell_type: string; source: string[] }[] })
        .cells)
        if (cell.cell_type === 'code' && cell.source.join('').startsWith('!'))
          out.push({ path: f.path, line: cell.source.join('').slice(1) });
  }
  return out;
}

describe('the shell lines of every export', () => {
  it.each(NASTY_IDS)('parse to the meant words with model %j', (id) => {
    const ctx = fabricatedContext();
    const files = exportBundle({ ...ctx, model: { ...ctx.model, id } });
    const lines = shellLines(files);
    expect(lines.map((l) => l.path).sort()).toEqual(
      [
        EXPORT_PATHS.axolotl,
        EXPORT_PATHS.colab,
        EXPORT_PATHS.optuna,
        EXPORT_PATHS.optuna,
        EXPORT_PATHS.rayTune,
        EXPORT_PATHS.rayTune,
      ].sort(),
    );
    for (const { path, line } of lines) {
      const words = bashWords(line);
      if (words[0] === 'python')
        expect(words, path).toEqual([
          'python',
          path,
          '--model',
          id,
          '--data',
          'train.jsonl',
          '--trials',
          '20',
        ]);
      else if (words[0] === 'pip' && path === EXPORT_PATHS.colab)
        expect(words, path).toEqual([
          'pip',
          'install',
          '-q',
          'transformers>=4.41',
          'peft',
          'datasets',
          'accelerate',
        ]);
      else if (words[0] === 'pip') {
        expect(words.slice(0, 3), path).toEqual(['pip', 'install', 'transformers>=4.41']);
        expect(words, path).toContain('optuna>=3.6');
      } else expect(words, path).toEqual(['axolotl', 'train', 'axolotl.yaml']);
    }
  });
});
