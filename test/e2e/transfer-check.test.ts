// The Results step's "Check on <larger model>" panel in Chromium: a study on a tiny Llama (imported as its log,
// the tiny Llama loaded from picked files, the addition sample as data), its top 3 configurations re-run on a
// wider, deeper tiny Llama with the same tokenizer picked as a folder; τ-b, the verdict and the plot shown.
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStudy } from '../../src/engine/search/index.ts';
import { StudyPlan } from '../../src/engine/tune/plan.ts';
import { buildTinyModel, writeTinyModel } from '../fixtures/tiny-models.ts';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';

let app: App;
const dir = mkdtempSync(join(tmpdir(), 'tunelab-transfer-e2e-'));
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A finished 4-trial study over four learning rates, 2 steps each (values made up for the small model). */
function studyLog(): string {
  const plan = StudyPlan.create(
    {
      space: { lr: { type: 'categorical', choices: [3e-2, 1e-2, 1e-3, 1e-7] } },
      fixed: { steps: 2, batch: 2, seq: 16, r: 2, targets: 'q_proj,v_proj' },
      sampler: 'grid',
      trials: 4,
      valRatio: 0.1,
    },
    { family: 'llama' },
  );
  const study = createStudy(plan.studyOptions());
  for (let i = 0; i < 4; i++) {
    const trial = study.ask();
    const value = 4 + Math.abs(Math.log10(trial.params.lr as number) + 2);
    trial.report(plan.evalEvery, value);
    study.tell(trial, value);
  }
  return study.log();
}

const step = (page: import('playwright-core').Page, name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

// A trial worker compiles every pipeline for the larger model before its first step: on a loaded 2-core machine
// the whole test has taken over three minutes, so its timeout is wide (timings are never asserted).
describe('the transfer check in Chromium', { timeout: 480_000 }, () => {
  it('re-runs the top 3 configurations on a larger tiny Llama and shows τ-b, the verdict and the plot', async () => {
    const small = await writeTinyModel(buildTinyModel({ arch: 'llama', seed: 1 }), join(dir, 'small'));
    const wide = { hidden: 128, heads: 4, kvHeads: 2, layers: 3, ffn: 192 };
    const large = await writeTinyModel(
      buildTinyModel({ arch: 'llama', seed: 2, dims: wide }),
      join(dir, 'large'),
    );

    const page = await app.browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(app.url);
    await page.getByTestId('model-summary').waitFor({ timeout: 60_000 }); // the demo, first
    await page.getByLabel('Files on this computer').check();
    await page.getByLabel('Pick files').setInputFiles(readdirSync(small).map((name) => join(small, name)));
    await expect
      .poll(() => page.getByTestId('model-summary').textContent(), { timeout: 30_000 })
      .toMatch(/LlamaForCausalLM[\s\S]*64/);
    await page.getByRole('button', { name: 'Next: data' }).click();
    await page.getByLabel('Sample dataset').selectOption('addition.jsonl');
    await page.getByTestId('data-summary').waitFor({ timeout: 30_000 });

    await page.getByLabel('Import a study log (.jsonl)').setInputFiles({
      name: 'small.jsonl',
      mimeType: 'application/jsonl',
      buffer: Buffer.from(studyLog()),
    });
    await page.getByText('Imported small.jsonl.').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Open study Imported: small.jsonl' }).click();
    await step(page, 'Results').click();

    await page.getByLabel('Larger model folder').setInputFiles(large);
    await page.getByLabel('Configurations').fill('3');
    await page.getByLabel('Within (%)').fill('10');
    await page.getByRole('button', { name: 'Check on large' }).click();
    const verdict = page.getByTestId('transfer-verdict');
    await verdict.waitFor({ timeout: 420_000 });
    expect(await verdict.textContent()).toMatch(
      /Kendall τ-b (-?\d\.\d\d|undefined); this model's best \(trial \d\)/,
    );
    const rows = page.getByRole('table', { name: 'Transfer check' }).locator('tbody tr');
    expect(await rows.count()).toBe(3);
    for (const cell of await rows.locator('td:nth-child(3)').allTextContents())
      expect(Number(cell)).toBeGreaterThan(0);
    expect(await page.getByRole('img', { name: /against large/ }).count()).toBe(1);
    await page.screenshot({ path: `${ARTIFACTS}/transfer-check.png`, fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });
});
