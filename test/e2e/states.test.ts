// The page says what happened where it used to stay silent or confuse (issue 19, item 7), in Chromium: empty
// uploads and pastes, the sample menu after an upload, a failed Hub download with a model already loaded,
// the grid's points, the sequence-length wording, focus after Next, the favicon, the sidebar's progress, the
// caveat on importance from few trials.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';
import { demoStudyLog } from './demo-study.ts';

let app: App;
let page: Page;
let errors: string[];
beforeAll(async () => {
  app = await startApp();
  page = await app.browser.newPage({ viewport: { width: 1280, height: 800 } });
  errors = watchErrors(page);
  // Nothing beyond the page's own server answers: a Hub download fails at once, as offline.
  await page.route(
    (url) => url.hostname !== '127.0.0.1',
    (route) => route.abort('internetdisconnected'),
  );
  await page.goto(app.url);
  await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
});
afterAll(async () => {
  await page?.close();
  await app?.close();
});

const focusedText = () => page.evaluate(() => document.activeElement?.textContent?.trim() ?? '');
const navStep = (name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

describe('states the page explains', () => {
  it('keeps the loaded model after a failed Hub download and says which it is', async () => {
    expect((await page.request.get(`${app.url}favicon.svg`)).status()).toBe(200);
    await page.getByLabel('Hugging Face Hub').check();
    await page.getByLabel('Repo id').fill('someone/missing-model');
    await page.getByRole('button', { name: 'Download and open' }).click();
    const error = page.getByTestId('model-error');
    await error.waitFor({ timeout: 30_000 });
    expect(await error.textContent()).toMatch(
      /The model loaded before, Demo model \(tiny Llama trained on the samples, offline\), is still the one in use\./,
    );
    expect(await navStep('Data').isDisabled()).toBe(false);
    await page.screenshot({ path: `${ARTIFACTS}/states-hub-failed.png` });
  });

  it('moves focus to the new step’s heading after Next', async () => {
    await page.getByLabel('Built-in demo model (offline)').check();
    await page.getByRole('button', { name: 'Next: data' }).click();
    await expect.poll(focusedText).toBe('2 · Data');
  });

  it('says so when an upload or a paste is empty, and clears the sample menu', async () => {
    const sample = page.getByLabel('Sample dataset');
    await sample.selectOption('addition.jsonl');
    await page.getByTestId('data-summary').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('data-summary').textContent()).toContain(
      '(none longer than the sequence length of 24, cut to fit)',
    );
    await page.getByLabel('Or upload (.txt, .jsonl, .csv)').setInputFiles({
      name: 'empty.txt',
      mimeType: 'text/plain',
      buffer: Buffer.from(''),
    });
    await expect
      .poll(() => page.getByRole('alert').textContent())
      .toBe('empty.txt is empty: there is nothing to train on.');
    expect(await sample.inputValue()).toBe('');
    expect(await page.getByTestId('data-summary').count()).toBe(0);

    await page.getByText('Or paste text').click();
    await page.getByLabel('Contents').fill('   \n');
    await page.getByRole('button', { name: 'Use pasted text' }).click();
    await expect
      .poll(() => page.getByRole('alert').textContent())
      .toBe('Nothing was pasted: paste the rows or text to train on first.');

    await page.getByLabel('File name (its extension picks the format)').fill('fables.txt');
    await page.getByLabel('Contents').fill('The fox and the grapes. '.repeat(40));
    await page.getByRole('button', { name: 'Use pasted text' }).click();
    await page.getByTestId('data-summary').waitFor();
    expect(await page.getByTestId('data-summary').textContent()).toMatch(/Format\s*text/);
  });

  it('shows the grid sampler’s points and their number', async () => {
    await page.getByRole('button', { name: 'Next: search space' }).click();
    await expect.poll(focusedText).toBe('3 · Search');
    await page.getByLabel('Sampler').selectOption('grid');
    const grid = page.getByTestId('grid-summary');
    // The quick preset: lr on a log range (5 values) × r in {4, 8}.
    expect(await grid.textContent()).toMatch(
      /The grid has 10 points:\s*lr\s*0\.001, 0\.00234, 0\.00548, 0\.0128, 0\.03\s*r\s*4, 8/,
    );
    expect(await grid.textContent()).toContain('3 trials visit 3 of them');
    await page.getByLabel('Trials', { exact: true }).fill('12');
    await expect.poll(() => grid.textContent()).toContain('revisit points: 10 trials are enough');
    await page.getByLabel('Sampler').selectOption('tpe');
    expect(await grid.count()).toBe(0);
  });

  it('shows the open study’s trials done in the sidebar, and no internal names in messages', async () => {
    await page.getByLabel('Import a study log (.jsonl)').setInputFiles({
      name: 'demo-study.jsonl',
      mimeType: 'application/jsonl',
      buffer: Buffer.from(demoStudyLog()),
    });
    await page.getByTestId('best-card').waitFor({ timeout: 30_000 });
    expect(await focusedText()).toBe('5 · Results');
    expect(await page.locator('aside').textContent()).toContain('finished · 12 of 12 trials done');
    await page.getByTestId('chart-importance').waitFor();
    expect(await page.getByTestId('importance-caveat').count()).toBe(0);

    // Importance from 5 trials comes with a caveat.
    await page.getByLabel('Import a study log (.jsonl)').setInputFiles({
      name: 'small.jsonl',
      mimeType: 'application/jsonl',
      buffer: Buffer.from(demoStudyLog(5)),
    });
    await expect
      .poll(async () =>
        (await page.getByTestId('importance-caveat').textContent())?.replace(/\s+/g, ' ').trim(),
      )
      .toBe('From 5 finished trials only: with fewer than about 10 the ranking is mostly noise.');

    await page.getByLabel('Import a study log (.jsonl)').setInputFiles({
      name: 'empty.jsonl',
      mimeType: 'application/jsonl',
      buffer: Buffer.from('\n'),
    });
    await expect
      .poll(() => page.getByRole('status').first().textContent())
      .toMatch(/^empty\.jsonl was not imported/);
    const notice = (await page.getByRole('status').first().textContent()) ?? '';
    console.log(`empty log: ${notice}`);
    expect(notice).not.toMatch(/[a-z]+[A-Z][a-zA-Z]*: /); // no loadStudy:, parseDataset: ...
    expect(errors).toEqual([]);
  });
});
