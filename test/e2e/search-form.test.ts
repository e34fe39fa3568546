// The Search step refuses out-of-range values before Start, in Chromium: each message on the row or field at
// fault (the engine's rules, with the demo model's 256 positions), Start disabled until every one is fixed.
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

/** The text of the problem shown under a field (by the field's label), or '' when there is none. */
async function problemOf(page: Page, label: string): Promise<string> {
  return page.getByLabel(label, { exact: true }).evaluate((el) => {
    const id = el.getAttribute('aria-describedby');
    return id ? (document.getElementById(id)?.textContent ?? '') : '';
  });
}

describe('the Search step’s form in Chromium', () => {
  it('shows each bad value on its own row and starts only once all are fixed', async () => {
    const page = await app.browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    await page.goto(app.url);
    await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Next: data' }).click();
    await page.getByLabel('Sample dataset').selectOption('addition.jsonl');
    await page.getByTestId('data-summary').waitFor({ timeout: 30_000 });
    // The demo model has 256 positions.
    await page.getByLabel('Sequence length (tokens)').fill('100000');
    await page.getByLabel('Sequence length (tokens)').press('Tab'); // committed: the data is parsed again
    await expect
      .poll(() => page.getByTestId('data-summary').textContent())
      .toContain('sequence length of 100000');
    await page.getByRole('button', { name: 'Next: search space' }).click();
    const start = page.getByRole('button', { name: 'Start search' });

    await page.getByLabel('LoRA dropout: value').fill('1.5');
    await page.getByLabel('LoRA rank r: choices').fill('4, -2');
    await page.getByLabel('Learning rate: low').fill('-1');
    await page.getByLabel('Warmup ratio: value').fill('2');
    await page.getByLabel('Trials', { exact: true }).fill('0');
    await page.getByLabel('Parallel workers').fill('9');

    await expect.poll(() => problemOf(page, 'LoRA dropout: value')).toMatch(/< 1, got 1.5/);
    expect(await problemOf(page, 'LoRA rank r: choices')).toMatch(/whole number ≥ 1, got -2/);
    expect(await problemOf(page, 'LoRA alpha: multiple of r')).toBe(''); // r's error stays on r
    expect(await problemOf(page, 'Learning rate: low')).toMatch(/low > 0 \(got low=-1\)/);
    expect(await problemOf(page, 'Warmup ratio: value')).toMatch(/≤ 1, got 2/);
    expect(await problemOf(page, 'Trials')).toMatch(/whole number ≥ 1/);
    expect(await problemOf(page, 'Parallel workers')).toMatch(/from 1 to 8/);
    expect(
      await page
        .getByText("On the Data step: Sequence length: 100000 is longer than the model's 256")
        .count(),
    ).toBe(1);
    expect(await page.getByText('Fix the 7 problems marked above to start.').count()).toBe(1);
    expect(await start.isDisabled()).toBe(true);
    await page.screenshot({ path: `${ARTIFACTS}/search-form-problems.png`, fullPage: true });

    // PBT cannot move r mid-trial: the hint is on the pruner and on r, and names alpha, which follows r.
    await page.getByLabel('LoRA rank r: choices').fill('4, 8');
    await page.getByLabel('Early stopping').selectOption('pbt');
    await expect
      .poll(() => problemOf(page, 'Early stopping'))
      .toMatch(/not LoRA rank r: set it to fixed \(LoRA alpha/);
    expect(await problemOf(page, 'LoRA rank r: choices')).toMatch(/set it to fixed/);
    await page.getByLabel('LoRA rank r: how it is set').selectOption('fixed');
    await expect.poll(() => problemOf(page, 'Early stopping')).toBe('');

    // Fixed one by one, Start stays disabled until the last.
    await page.getByLabel('LoRA dropout: value').fill('0.1');
    await page.getByLabel('Learning rate: low').fill('1e-3');
    await page.getByLabel('Warmup ratio: value').fill('0.1');
    await page.getByLabel('Trials', { exact: true }).fill('3');
    await page.getByLabel('Parallel workers').fill('2');
    await expect.poll(() => page.getByText('Fix the problem marked above to start.').count()).toBe(1);
    expect(await start.isDisabled()).toBe(true);
    await page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name: 'Data' }).click();
    expect(await problemOf(page, 'Sequence length (tokens)')).toBe(
      "100000 is longer than the model's 256 positions",
    );
    await page.getByLabel('Sequence length (tokens)').fill('24');
    await page.getByLabel('Sequence length (tokens)').press('Tab');
    await expect
      .poll(() => page.getByTestId('data-summary').textContent())
      .toContain('sequence length of 24');
    await page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name: 'Search' }).click();
    await expect.poll(() => start.isDisabled()).toBe(false);
    // Beyond this GPU's buffers (checked once the sequence length is valid): the engine's memory estimate.
    await page.getByLabel('Batch size: value').fill('1000000');
    await expect
      .poll(() => problemOf(page, 'Batch size: value'))
      .toMatch(
        /^at batch 1000000 \(sequence 24\) the .* needs [\d.]+ GiB in one buffer; the device's max\w+ is /,
      );
    expect(await start.isDisabled()).toBe(true);
    await page.getByLabel('Batch size: value').fill('4');
    await expect.poll(() => start.isDisabled()).toBe(false);
    expect(await page.getByRole('alert').count()).toBe(0);
    expect(errors).toEqual([]);
    await page.close();
  });
});
