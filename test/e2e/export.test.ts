// The Export step in Chromium for an imported study (no search to run): its exports state the study's plan
// (sampler, PBT, objective and direction), the target-GPU choice sets fp16/bf16, and the "Scale up" fields
// carry the best configuration to a larger model with the rule written into the files.
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createStudy } from '../../src/engine/search/index.ts';
import { StudyPlan } from '../../src/engine/tune/plan.ts';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';

let app: App;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

/** A finished GP + PBT study maximising accuracy, as its log (plan included) leaves the page or the CLI. */
function studyLog(): { log: string; bestLr: number } {
  const plan = StudyPlan.create(
    {
      space: {
        lr: { type: 'float', low: 1e-4, high: 1e-2, log: true },
        loraplus_lr_ratio: { type: 'float', low: 1, high: 32, log: true },
      },
      fixed: { steps: 12, batch: 4, accum: 2, r: 8 },
      sampler: 'gp',
      pruner: 'pbt',
      objective: 'accuracy',
      trials: 4,
      valRatio: 0.1,
    },
    { family: 'llama' },
  );
  const study = createStudy(plan.studyOptions());
  for (let i = 0; i < 4; i++) {
    const trial = study.ask();
    const value = 1 / (1 + (Math.log10(trial.params.lr as number) + 3) ** 2);
    trial.report(plan.evalEvery, value / 2);
    study.tell(trial, value);
  }
  return { log: study.log(), bestLr: study.bestTrial!.params.lr as number };
}

const step = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

describe('the Export step in Chromium', () => {
  it("exports an imported study's plan, the target GPU's precision and a transfer to a larger model", async () => {
    const page = await app.browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    const errors = watchErrors(page);
    await page.goto(app.url);
    const { log, bestLr } = studyLog();
    await page.getByLabel('Import a study log (.jsonl)').setInputFiles({
      name: 'gp-pbt.jsonl',
      mimeType: 'application/jsonl',
      buffer: Buffer.from(log),
    });
    await page.getByText('Imported gp-pbt.jsonl.').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Open study Imported: gp-pbt.jsonl' }).click();
    await step(page, 'Export').click();
    const save = async (name: string) => {
      const [dl] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: `Download ${name}` }).click(),
      ]);
      const path = `${ARTIFACTS}/export-${name.replaceAll('/', '_')}`;
      await dl.saveAs(path);
      return readFileSync(path, 'utf8');
    };

    const best = JSON.parse(await save('best-config.json')) as Record<string, Record<string, unknown>>;
    expect(best.study).toMatchObject({
      sampler: 'gp',
      pruner: 'pbt',
      objective: 'accuracy',
      direction: 'maximize',
    });
    expect(best.metrics).toMatchObject({ objective: 'accuracy', direction: 'maximize' });
    const optuna = await save('optuna_search.py');
    expect(optuna).toContain('DIRECTION = "maximize"');
    expect(optuna).toContain('SAMPLER = "gp"');

    // Unknown GPU, precision auto: fp16 AMP; the target-GPU choice makes it bf16.
    expect(JSON.parse(await save('hf/training_args.json'))).toMatchObject({ fp16: true, bf16: false });
    await page.getByLabel('Target GPU').selectOption('bf16');
    expect(JSON.parse(await save('hf/training_args.json'))).toMatchObject({ fp16: false, bf16: true });

    // Scale up: 135M → 360M with the √ rule, micro-batch 2 on the target (accumulation 4 keeps 8 per step).
    await page.getByLabel('Model (Hub id or path)').fill('HuggingFaceTB/SmolLM2-360M');
    await page.getByLabel('Parameters', { exact: true }).fill('360M');
    await page.getByLabel("Parameters of the study's model").fill('135M');
    await page.getByRole('combobox', { name: /^Learning rate/ }).selectOption('sqrt-params');
    await page.getByLabel('Micro-batch on its GPU').fill('2');
    const lr = bestLr * Math.sqrt(135 / 360);
    const args = JSON.parse(await save('hf/training_args.json')) as Record<string, number>;
    expect(args.learning_rate).toBeCloseTo(lr, 15);
    expect([args.per_device_train_batch_size, args.gradient_accumulation_steps]).toEqual([2, 4]);
    const axolotl = await save('axolotl.yaml');
    expect(parseYaml(axolotl)).toMatchObject({
      base_model: 'HuggingFaceTB/SmolLM2-360M',
      micro_batch_size: 2,
    });
    expect(axolotl).toContain('(params_small / params_large)^0.5');
    const script = await save('optuna_search.py');
    expect(script).toContain('MODEL_ID = "HuggingFaceTB/SmolLM2-360M"');
    expect(script).toMatch(/FIRST_POINTS = \[\{.*\}, \{.*\}, \{.*\}\]/);
    await page.screenshot({ path: `${ARTIFACTS}/export-scale-up.png`, fullPage: true });

    // A micro-batch that does not divide the examples per step is explained, naming the field.
    await page.getByLabel('Micro-batch on its GPU').fill('3');
    await expect
      .poll(() => page.getByRole('alert').first().textContent())
      .toMatch(/batch.*divides the study's 8 examples/);
    expect(errors).toEqual([]);
    await page.close();
  });
});
