// The column flags of train, eval and tune on real files and a tiny model: a file with other column names reads
// exactly as the same data under the fixed names, and tune keeps the mapping in its plan and exports.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { runCli } from '../fixtures/cli.ts';
import { buildTinyModel, writeTinyModel } from '../fixtures/tiny-models.ts';

let dir: string;
let modelDir: string;
const rows = [
  ['good film', 'pos'],
  ['dull, slow', 'neg'],
  ['loved it', 'pos'],
  ['"meh" at best', 'neg'],
];
const csvCell = (s: string) => (/[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-columns-'));
  modelDir = await writeTinyModel(buildTinyModel({ arch: 'llama', dtype: 'F32' }), join(dir, 'model'));
  const lines = (header: string, cells: (r: string[], i: number) => string[]) =>
    [header, ...rows.map((r, i) => cells(r, i).map(csvCell).join(','))].join('\n') + '\n';
  await writeFile(
    join(dir, 'standard.csv'),
    lines('text,label', (r) => r),
  );
  await writeFile(
    join(dir, 'reviews.csv'),
    lines('id,sentiment,review', ([t, l], i) => [String(i), l, t]),
  );
  const qa = Array.from({ length: 12 }, (_, i) =>
    JSON.stringify({ question: `${i}+1=`, answer: `${i + 1}` }),
  );
  await writeFile(join(dir, 'qa.jsonl'), qa.join('\n') + '\n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('column flags', () => {
  it('eval: a CSV with other column names gives the loss of the same rows under text,label', async () => {
    const base = `eval --model ${modelDir} --seq 24 --json --precision f32`;
    const standard = await runCli(`${base} --data ${join(dir, 'standard.csv')}`);
    const mapped = await runCli(
      `${base} --data ${join(dir, 'reviews.csv')} --text-column review --label-column sentiment`,
    );
    expect(standard.code).toBe(0);
    expect(mapped.code).toBe(0);
    expect(JSON.parse(mapped.stdout)).toEqual(JSON.parse(standard.stdout));
    const unmapped = await runCli(`${base} --data ${join(dir, 'reviews.csv')}`);
    expect(unmapped.code).toBe(1);
    expect(unmapped.stderr).toContain("its columns: 'id', 'sentiment', 'review'");
  });

  it('train: trains on the mapped columns; a column the file lacks stops it before anything is written', async () => {
    const out = join(dir, 'train');
    const base = `train --model ${modelDir} --data ${join(dir, 'reviews.csv')} --seq 24 --r 2 --precision f32 --no-autotune`;
    const missing = await runCli(
      `${base} --text-column body --label-column sentiment --steps 2 --out ${out}`,
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      "reviews.csv: the text column 'body' is not in the file (its columns in its header: 'id', 'sentiment', 'review')",
    );
    const run = await runCli(`${base} --text-column review --label-column sentiment --steps 2 --out ${out}`);
    expect(run.code, run.stderr).toBe(0);
    const metrics = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    expect(metrics.map((l) => (JSON.parse(l) as { step?: number }).step)).toContain(2);
  });

  it('tune: the mapping is kept in the plan, read again by --resume and named by axolotl.yaml', async () => {
    const out = join(dir, 'tune');
    const run = await runCli(
      `tune --model ${modelDir} --data ${join(dir, 'qa.jsonl')} --prompt-column question --completion-column answer ` +
        `--preset lora-basic --seq 16 --batch 2 --steps 2 --r 2 --trials 1 --workers 1 --in-process --no-autotune --out ${out}`,
    );
    expect(run.code, run.stderr).toBe(0);
    const plan = JSON.parse((await readFile(join(out, 'study.jsonl'), 'utf8')).split('\n')[0]) as {
      plan?: { columns?: unknown };
    };
    expect(JSON.stringify(plan)).toContain('"columns":{"prompt":"question","completion":"answer"}');
    const axolotl = parseYaml(await readFile(join(out, 'axolotl.yaml'), 'utf8')) as {
      datasets: { type: Record<string, unknown> }[];
    };
    expect(axolotl.datasets[0].type).toMatchObject({ field_instruction: 'question', field_output: 'answer' });
    const resumed = await runCli(`tune --resume ${out} --trials 2`);
    expect(resumed.code, resumed.stderr).toBe(0);
  });
});
