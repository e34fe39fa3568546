// Without WebGPU the page still shows stored studies: an imported study log's Results and Export, and a saved
// study reopened from the Studies list after a reload. Nothing that trains or generates can be opened.
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';
import { demoStudyLog } from './demo-study.ts';

let app: App;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

const navStep = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

describe('the playground without WebGPU', () => {
  it('shows an imported study’s Results and Export, and reopens it after a reload', async () => {
    const context = await app.browser.newContext({ acceptDownloads: true });
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
    });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await page.goto(app.url);
    await page.getByText('WebGPU is not available here').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('view-only').textContent()).toContain(
      'Saved studies can still be looked at',
    );
    for (const step of ['Data', 'Search', 'Run', 'Results', 'Export', 'Try'])
      expect(await navStep(page, step).isDisabled()).toBe(true);

    await page.getByLabel('Import a study log (.jsonl)').setInputFiles({
      name: 'demo-study.jsonl',
      mimeType: 'application/jsonl',
      buffer: Buffer.from(demoStudyLog()),
    });
    await page.getByTestId('best-card').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('best-card').textContent()).toMatch(/Best trial: #\d+/);
    await page.getByTestId('chart-history').locator('canvas').waitFor();
    for (const step of ['Data', 'Search', 'Try']) expect(await navStep(page, step).isDisabled()).toBe(true);

    await navStep(page, 'Export').click();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download best-config.json' }).click(),
    ]);
    await download.saveAs(`${ARTIFACTS}/no-webgpu-best-config.json`);
    const config = JSON.parse(readFileSync(`${ARTIFACTS}/no-webgpu-best-config.json`, 'utf8')) as {
      hyperparameters: { lr: unknown };
    };
    expect(config.hyperparameters.lr).toBeTypeOf('number');

    // The study is stored: after a reload it opens from the Studies list, still without WebGPU.
    await page.reload();
    await page.getByText('WebGPU is not available here').waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Open study Imported: demo-study.jsonl' }).click();
    await expect.poll(() => page.getByTestId('run-phase').textContent()).toBe('Finished');
    expect(await page.getByTestId('trial-table').locator('tbody tr').count()).toBe(12);
    await navStep(page, 'Results').click();
    await page.getByTestId('chart-parallel').locator('canvas').waitFor();
    await page.screenshot({ path: `${ARTIFACTS}/no-webgpu-results.png`, fullPage: true });
    expect(errors).toEqual([]);
    await context.close();
  });
});
