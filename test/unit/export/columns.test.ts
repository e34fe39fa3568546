// The study's column mapping reaches every export that names dataset fields: axolotl's dataset entry, TRL's text
// field, best-config.json (with a note on what TRL must rename) and the scripts' COLUMNS, whose renames are run in
// Python on the file's column names.
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { exportBundle, EXPORT_PATHS, type ExportFile } from '../../../src/engine/export/bundle.ts';
import { planExportContext } from '../../../src/engine/export/context.ts';
import { BODY } from '../../../src/engine/export/python.ts';
import { createStudy } from '../../../src/engine/search/index.ts';
import type { ColumnMapping } from '../../../src/engine/train/columns.ts';
import type { DatasetFormat } from '../../../src/engine/train/data.ts';
import { PlanError, StudyPlan } from '../../../src/engine/tune/plan.ts';
import { python3Available, runPython } from './python.ts';

function exportsOf(format: DatasetFormat, columns?: ColumnMapping): ExportFile[] {
  const plan = StudyPlan.create(
    {
      space: { lr: { type: 'float', low: 1e-5, high: 1e-2, log: true } },
      fixed: { steps: 8 },
      trials: 2,
      valRatio: 0.1,
      ...(columns ? { columns } : {}),
    },
    { family: 'llama' },
  );
  const study = createStudy(plan.studyOptions());
  for (let i = 0; i < 2; i++) study.tell(study.ask(), 1 + i);
  return exportBundle(
    planExportContext(plan, {
      study,
      model: { id: 'HuggingFaceTB/SmolLM2-135M', revision: 'main', family: 'llama' },
      dataset: { fingerprint: 'sha256:0', name: 'train.csv', format },
      tunelabVersion: '0.1.0',
      date: '2025-01-02T03:04:05.000Z',
    }),
  );
}

const text = (files: ExportFile[], path: string): string => {
  const f = files.find((x) => x.path === path)!;
  return typeof f.contents === 'string' ? f.contents : new TextDecoder().decode(f.contents);
};
const axolotlDataset = (files: ExportFile[]) =>
  (parseYaml(text(files, EXPORT_PATHS.axolotl)) as { datasets: Record<string, unknown>[] }).datasets[0];
const bestConfig = (files: ExportFile[]) =>
  JSON.parse(text(files, EXPORT_PATHS.bestConfig)) as { dataset: { columns?: unknown }; notes: string[] };
const columnsLine = (source: string) => source.split('\n').find((l) => l.startsWith('COLUMNS = '))!;

describe('exports follow the study column mapping', () => {
  it('the plan keeps every column of the task, a left-out role under its standard name', () => {
    const plan = StudyPlan.create(
      {
        space: { lr: { type: 'float', low: 1e-5, high: 1e-2, log: true } },
        trials: 1,
        valRatio: 0.1,
        columns: { label: 'sentiment' },
      },
      { family: 'llama' },
    );
    expect(plan.spec.columns).toEqual({ text: 'text', label: 'sentiment' });
    expect(StudyPlan.create(plan.toJSON(), { family: 'llama' }).spec.columns).toEqual(plan.spec.columns);
    expect(() =>
      StudyPlan.create(
        {
          space: { lr: { type: 'float', low: 1e-5, high: 1e-2, log: true } },
          trials: 1,
          valRatio: 0.1,
          columns: { text: 'a', messages: 'b' },
        },
        { family: 'llama' },
      ),
    ).toThrow(
      new PlanError(
        'columns',
        'column mapping: text: a chat mapping has messages columns only; drop the text column',
      ),
    );
  });

  it('axolotl dataset fields, TRL text field and best-config.json name the mapped columns', () => {
    const cls = exportsOf('classification', { text: 'review', label: 'sentiment' });
    expect(axolotlDataset(cls).type).toMatchObject({
      field_instruction: 'review',
      field_output: 'sentiment',
    });
    expect(bestConfig(cls).dataset.columns).toEqual({ text: 'review', label: 'sentiment' });
    expect(bestConfig(cls).notes.join('\n')).toContain(
      "rename 'review' to 'text', 'sentiment' to 'label' for TRL",
    );

    const pc = exportsOf('prompt-completion', { prompt: 'question', completion: 'answer' });
    expect(axolotlDataset(pc).type).toMatchObject({ field_instruction: 'question', field_output: 'answer' });

    const chat = exportsOf('chat', { messages: 'conversation' });
    expect(axolotlDataset(chat).field_messages).toBe('conversation');

    const txt = exportsOf('text', { text: 'body' });
    expect(axolotlDataset(txt).field).toBe('body');
    expect(JSON.parse(text(txt, EXPORT_PATHS.sftConfig)).dataset_text_field).toBe('body');
    expect(bestConfig(txt).notes.join('\n')).not.toContain('rename');
  });

  it('without a mapping, the fixed names as before and an empty COLUMNS', () => {
    const files = exportsOf('classification');
    expect(axolotlDataset(files).type).toMatchObject({ field_instruction: 'text', field_output: 'label' });
    expect(bestConfig(files).dataset.columns).toBeUndefined();
    expect(columnsLine(text(files, EXPORT_PATHS.optuna))).toMatch(/^COLUMNS = \{\}/);
  });

  it('the Optuna, Ray Tune and Colab scripts carry COLUMNS', () => {
    const files = exportsOf('classification', { text: 'review', label: 'sentiment' });
    const expected = /^COLUMNS = \{"text": "review", "label": "sentiment"\}/;
    expect(columnsLine(text(files, EXPORT_PATHS.optuna))).toMatch(expected);
    expect(columnsLine(text(files, EXPORT_PATHS.rayTune))).toMatch(expected);
    const notebook = JSON.parse(text(files, EXPORT_PATHS.colab)) as {
      cells: { source: string | string[] }[];
    };
    const sources = notebook.cells.map((c) => (Array.isArray(c.source) ? c.source.join('') : c.source));
    expect(columnsLine(sources.join('\n'))).toMatch(expected);
  });

  it.skipIf(!python3Available)('column_renames gives the file columns the names the formats read', () => {
    const fn = BODY.slice(BODY.indexOf('def column_renames'), BODY.indexOf('def read_rows'));
    const run = (columns: ColumnMapping, names: string[]) =>
      JSON.parse(
        runPython(
          `import json\nCOLUMNS = ${JSON.stringify(columns)}\n${fn}\nprint(json.dumps(column_renames(${JSON.stringify(names)})))`,
        ),
      ) as [Record<string, string>, string[]];
    expect(run({ text: 'review', label: 'sentiment' }, ['id', 'review', 'sentiment'])).toEqual([
      { review: 'text', sentiment: 'label' },
      [],
    ]);
    // An unmapped column that holds a role's name gives way to the mapped one.
    expect(run({ text: 'body', label: 'label' }, ['text', 'body', 'label'])).toEqual([
      { body: 'text' },
      ['text'],
    ]);
    expect(run({}, ['text', 'label'])).toEqual([{}, []]);
  });
});
