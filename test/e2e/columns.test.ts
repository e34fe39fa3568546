// Column mapping on the Data step, in Chromium: a CSV whose columns are not text,label is refused naming the
// columns it has, then mapped with the step's labelled selects; the preview shows the mapped text, and the
// mapping is saved with the study: the search trains on it and axolotl.yaml names the file's columns.
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { ARTIFACTS, startApp, startSearch, watchErrors, type App } from './browser.ts';

let app: App;
let page: Page;
let errors: string[];
beforeAll(async () => {
  app = await startApp();
  page = await app.browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
  errors = watchErrors(page);
  await page.goto(app.url);
  await page.getByTestId('model-summary').waitFor({ timeout: 120_000 });
  await page.getByRole('button', { name: 'Next: data' }).click();
});
afterAll(async () => {
  await page?.close();
  await app?.close();
});

const step = (name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

// Names no usual one: the step cannot guess them, the person maps them.
const ROWS = Array.from({ length: 12 }, (_, i) => `${i},${i % 2 ? 'odd' : 'even'},number ${i} is`);
const CSV = `row_id,verdict,remark\n${ROWS.join('\n')}\n`;

describe('the Data step maps columns', () => {
  it('refuses unknown columns naming them, then maps them with the selects; the preview shows the mapped text', async () => {
    await page.getByLabel('Or upload (.txt, .jsonl, .csv)').setInputFiles({
      name: 'numbers.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(CSV),
    });
    await expect
      .poll(() => page.getByRole('alert').textContent(), { timeout: 30_000 })
      .toContain("its columns: 'row_id', 'verdict', 'remark'");
    const mapping = page.getByTestId('column-mapping');
    expect(await mapping.textContent()).toContain('Found in numbers.csv: row_id, verdict, remark');

    await page.getByLabel('Task').selectOption('classification');
    await page.getByLabel('Text column').selectOption('remark');
    await page.getByLabel('Label column').selectOption('verdict');
    await expect
      .poll(async () => (await page.getByTestId('data-summary').textContent()) ?? '', { timeout: 30_000 })
      .toMatch(/classification \(classes: even, odd\)/);
    expect(await page.getByLabel('Text column').inputValue()).toBe('remark');
    expect(await page.getByLabel('Label column').inputValue()).toBe('verdict');
    // The first example is row 0: its prompt is the remark, the label word is what the loss is on.
    const first = page.getByRole('list', { name: 'Tokenised examples' }).locator('li').first();
    const tokens = (await first.locator('.tok').allTextContents()).join('');
    const trained = (await first.locator('.tok.response').allTextContents()).join('');
    expect(tokens).toContain('number 0 is⏎Label:');
    expect(trained).toContain(' even');
    expect(tokens).not.toContain('row_id');
    await page.screenshot({ path: `${ARTIFACTS}/columns-mapped.png`, fullPage: true });

    // Choosing the label's column for the text swaps the two.
    await page.getByLabel('Text column').selectOption('verdict');
    // Polled: the swap lands once the page has re-rendered (CI once read the select before it had).
    await expect.poll(() => page.getByLabel('Label column').inputValue()).toBe('remark');
    await page.getByLabel('Text column').selectOption('remark');
    await expect
      .poll(async () => (await page.getByTestId('data-summary').textContent()) ?? '', { timeout: 30_000 })
      .toMatch(/classes: even, odd/);
  });

  it('saves the mapping with the study: a search trains on it and axolotl.yaml names the columns', async () => {
    await page.getByRole('button', { name: 'Next: search space' }).click();
    await startSearch(page, { trials: 1, steps: 2, workers: 1 });
    await expect
      .poll(() => page.getByTestId('run-phase').textContent(), { timeout: 240_000 })
      .toBe('Finished');
    await step('Export').click();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download axolotl.yaml' }).click(),
    ]);
    const path = `${ARTIFACTS}/columns-axolotl.yaml`;
    await download.saveAs(path);
    const yaml = parseYaml(readFileSync(path, 'utf8')) as { datasets: { type: Record<string, unknown> }[] };
    expect(yaml.datasets[0].type).toMatchObject({ field_instruction: 'remark', field_output: 'verdict' });
    expect(errors).toEqual([]);
  });
});
