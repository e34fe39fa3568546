// A two-objective search in the page, end to end in headless Chromium: the Search step's second objective
// (peak GPU memory, which the batch size sets) makes a multi-objective study, Results draws its Pareto front, a
// click chooses a front trial, and the Export step exports that trial (best-config.json names it).
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';

let app: App;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

const step = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

describe('a multi-objective search in Chromium', () => {
  it('draws the Pareto front, and the front trial clicked is the one exported', async () => {
    const page = await app.browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const errors = watchErrors(page);
    await page.goto(app.url);
    await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Next: data' }).click();
    await page.getByLabel('Sample dataset').selectOption('addition.jsonl');
    await page.getByTestId('data-summary').waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Next: search space' }).click();

    await page.getByLabel(/^Second objective/).selectOption('peak_memory');
    // The form's default early stopping cannot run with two objectives: said under it, and Start waits.
    await expect
      .poll(() => page.locator('#pruner-problem').textContent())
      .toMatch(/a multi-objective study neither prunes nor runs PBT/);
    expect(await page.getByRole('button', { name: 'Start search' }).isDisabled()).toBe(true);
    await page.getByLabel('Early stopping').selectOption('none');
    // Only the batch size is searched, on a grid of two points that four trials visit twice each: a trial is a
    // deterministic function of its parameters and seed, so each point's two trials tie and are on the front
    // together (a larger batch holds more activations; which one has the lower loss does not matter here).
    await page.getByLabel('Learning rate: how it is set').selectOption('fixed');
    await page.getByLabel('Learning rate: value').fill('3e-2');
    await page.getByLabel('LoRA rank r: how it is set').selectOption('fixed');
    await page.getByLabel('LoRA rank r: value').fill('8');
    await page.getByLabel('Batch size: how it is set').selectOption('choices');
    await page.getByLabel('Batch size: choices').fill('1, 8');
    await page.getByLabel('Sampler').selectOption('grid');
    await page.getByLabel('Trials', { exact: true }).fill('4');
    await page.getByLabel('Steps per trial').fill('3');
    await page.getByLabel('Parallel workers').fill('1');
    await page.getByRole('button', { name: 'Start search' }).click();
    await expect
      .poll(() => page.getByTestId('run-phase').textContent(), { timeout: 300_000, interval: 500 })
      .toBe('Finished');

    await step(page, 'Results').click();
    const front = page.getByTestId('pareto-front');
    await front.waitFor();
    // The chart is drawn: ECharts' canvas inside the figure, with pixels on it.
    const inked = await page
      .getByTestId('chart-pareto')
      .locator('canvas')
      .first()
      .evaluate((c: HTMLCanvasElement) => {
        const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) n++;
        return n;
      });
    expect(inked).toBeGreaterThan(1000);
    const rows = front.locator('tbody tr');
    expect(await rows.count()).toBeGreaterThanOrEqual(2);
    const numbers = await rows.evaluateAll((trs) =>
      trs.map((tr) => Number(tr.getAttribute('data-testid')!.slice(10))),
    );
    const defaultPick = Number((await page.getByTestId('front-picked').textContent())!.match(/#(\d+)/)![1]);
    expect(numbers).toContain(defaultPick);
    const other = numbers.find((n) => n !== defaultPick)!;
    await page.getByTestId(`front-row-${other}`).getByRole('button', { name: 'choose' }).click();
    await expect
      .poll(() => page.getByTestId('front-picked').textContent())
      .toBe(`Chosen for export: trial #${other}.`);
    expect(
      await page.getByTestId(`front-row-${other}`).getByRole('button').getAttribute('aria-pressed'),
    ).toBe('true');
    await page.screenshot({ path: `${ARTIFACTS}/pareto-front.png`, fullPage: true });

    await step(page, 'Export').click();
    expect(await page.getByTestId('export-trial').textContent()).toMatch(
      new RegExp(`Exporting trial #${other} `),
    );
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download best-config.json' }).click(),
    ]);
    const path = `${ARTIFACTS}/pareto-best-config.json`;
    await dl.saveAs(path);
    const config = JSON.parse(readFileSync(path, 'utf8')) as { trial: number };
    expect(config.trial).toBe(other);
    // The chosen trial's own adapter comes with it.
    expect(
      await page.getByRole('button', { name: 'Download adapter/adapter_model.safetensors' }).count(),
    ).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  }, 500_000);
});
