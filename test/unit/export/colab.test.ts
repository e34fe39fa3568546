// The Colab notebook: valid nbformat 4 JSON whose code cells compile (shell `!` lines aside), training a real
// Hub model in fp16 with the best configuration; the study's Hub model, the transfer's target, or for a demo /
// local model the family's Hub model, saying which.
import { describe, expect, it } from 'vitest';
import { exportBundle, EXPORT_PATHS } from '../../../src/engine/export/bundle.ts';
import { fabricatedContext } from './fixture.ts';
import { pyCompileError, python3Available, runPython } from './python.ts';

interface Cell {
  cell_type: 'markdown' | 'code';
  id: string;
  source: string[];
  outputs?: unknown[];
}

function notebookOf(ctx: ReturnType<typeof fabricatedContext>): {
  nb: Record<string, unknown>;
  cells: Cell[];
} {
  const f = exportBundle(ctx).find((x) => x.path === EXPORT_PATHS.colab)!;
  expect(f.mime).toBe('application/x-ipynb+json');
  const nb = JSON.parse(f.contents as string) as Record<string, unknown>;
  return { nb, cells: nb.cells as Cell[] };
}

const codeOf = (cells: Cell[]): string =>
  cells
    .filter((c) => c.cell_type === 'code')
    .map((c) => c.source.join(''))
    .join('\n\n');

describe('colab.ipynb', () => {
  it('is nbformat 4 with a T4 runtime, unique cell ids and code cells that compile', () => {
    const { nb, cells } = notebookOf(fabricatedContext());
    expect(nb).toMatchObject({
      nbformat: 4,
      nbformat_minor: 5,
      metadata: { accelerator: 'GPU', colab: { gpuType: 'T4' } },
    });
    expect(new Set(cells.map((c) => c.id)).size).toBe(cells.length);
    for (const c of cells) expect(c.source.slice(0, -1).every((l) => l.endsWith('\n'))).toBe(true);
    const code = cells.filter((c) => c.cell_type === 'code');
    expect(code.every((c) => Array.isArray(c.outputs) && c.outputs.length === 0)).toBe(true);
    if (python3Available) {
      // `!pip` is IPython, not Python: the install cell is checked as a shell line instead.
      const python = code.map((c) => c.source.join('')).filter((s) => !s.startsWith('!'));
      expect(pyCompileError(python.join('\n\n'), 'notebook.py')).toBeNull();
    }
    expect(code[0].source.join('')).toBe("!pip install -q 'transformers>=4.41' peft datasets accelerate");
  });

  it.skipIf(!python3Available)('trains the best configuration in fp16 on the study’s Hub model', () => {
    const ctx = fabricatedContext();
    const { cells } = notebookOf(ctx);
    const config = cells.find((c) => c.id === 'config')!.source.join('');
    const out = JSON.parse(
      runPython(`import json\n${config}\nprint(json.dumps({"model": MODEL_ID, "cfg": BEST_CONFIG}))`),
    ) as {
      model: string;
      cfg: Record<string, unknown>;
    };
    expect(out.model).toBe('HuggingFaceTB/SmolLM2-135M');
    expect(out.cfg).toMatchObject({
      lr: ctx.config.lr,
      r: ctx.config.r,
      alpha: ctx.config.alpha,
      mixed_precision: 'fp16',
      seq: 128,
    });
    expect(codeOf(cells)).toContain('"save_adapter": True');
  });

  it('names a Hub model of the family for a demo study, and the target of a transfer, saying why', () => {
    const base = fabricatedContext();
    const demo = notebookOf({ ...base, model: { ...base.model, id: './demo-model' } });
    expect(codeOf(demo.cells)).toContain('MODEL_ID = "HuggingFaceTB/SmolLM2-135M"');
    expect(demo.cells[0].source.join('')).toMatch(
      /\(\.\/demo-model\) is not on the Hub; HuggingFaceTB\/SmolLM2-135M is a Hub model of the same family/,
    );
    const moved = notebookOf({
      ...base,
      transfer: {
        target: { id: 'HuggingFaceTB/SmolLM2-360M', params: 361_821_120 },
        sourceParams: 134_515_008,
        lr: 'sqrt-params',
      },
    });
    expect(codeOf(moved.cells)).toContain('MODEL_ID = "HuggingFaceTB/SmolLM2-360M"');
    expect(moved.cells[0].source.join('')).toContain('(params_small / params_large)^0.5');
  });
});
