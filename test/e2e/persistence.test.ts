// The page's IndexedDB persistence in real Chromium: a study-log import is stored whole or not at all (a bad
// line, a full disk), shows its progress, and a 12,000-trial log imports with the page responsive.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeFinishedStudyLog as makeStudyLog } from '../fixtures/study-logs.ts';
import { startApp, watchErrors, type App } from './browser.ts';
import type { ImportOutcome } from './pages/persistence.ts';

interface Persistence {
  importLog(text: string, name: string): Promise<ImportOutcome>;
  stored(): Promise<{ name: string; trials: number; events: number }[]>;
  makeStudyLog(trials: number, seed?: number): string;
  injectWriteError(writes: number): void;
}
declare const window: Window & { persistence: Persistence };

let app: App;
let page: Page;
let errors: string[];
beforeAll(async () => {
  app = await startApp();
  page = await app.browser.newPage();
  errors = watchErrors(page);
  await page.goto(`${app.url}test/e2e/pages/persistence.html`);
  await page.waitForFunction(() => 'persistence' in window);
  // One study already stored: a failed import must leave it exactly as it was.
  const first = await page.evaluate(() =>
    window.persistence.importLog(window.persistence.makeStudyLog(5), 'first.jsonl'),
  );
  expect(first.notice).toBe('Imported first.jsonl.');
});
afterAll(async () => {
  await page?.close();
  await app?.close();
});

const BEFORE = [{ name: 'Imported: first.jsonl', trials: 5, events: 26 }];

describe('importing a study log in Chromium', () => {
  it('stores nothing of a log with a bad line in the middle, and names the line and field', async () => {
    const outcome = await page.evaluate(() => {
      const lines = window.persistence.makeStudyLog(3000).split('\n');
      lines[9000] = lines[9000].replace(/"value":[^,}]+/, '"value":"0.5"'); // a report or tell, line 9001
      return window.persistence.importLog(lines.join('\n'), 'bad.jsonl');
    });
    expect(outcome.notice).toMatch(/^bad\.jsonl was not imported: line 9001: (report|tell) event: .*value/);
    expect(outcome.notice).toContain('Nothing of it was stored.');
    expect(await page.evaluate(() => window.persistence.stored())).toEqual(BEFORE);
  });

  it('stores nothing of a log when the disk fills up halfway through it', async () => {
    const outcome = await page.evaluate(() => {
      window.persistence.injectWriteError(8); // the study, then 7 of its 16 rows of events
      return window.persistence.importLog(window.persistence.makeStudyLog(3000), 'full.jsonl');
    });
    expect(outcome.notice).toMatch(
      /^full\.jsonl was not imported: the browser's storage for this page is full/,
    );
    expect(outcome.notice).toContain('delete studies you no longer need');
    expect(await page.evaluate(() => window.persistence.stored())).toEqual(BEFORE);
  });

  it('imports 12,000 trials whole, showing progress while the page keeps drawing', async () => {
    const outcome = await page.evaluate(() =>
      window.persistence.importLog(window.persistence.makeStudyLog(12_000), 'big.jsonl'),
    );
    console.log(
      `12,000-trial import in Chromium: ${(outcome.ms / 1000).toFixed(1)} s, longest frame ` +
        `${outcome.longestFrameMs.toFixed(0)} ms, progress ${JSON.stringify(outcome.progress)}`,
    );
    expect(outcome.notice).toBe('Imported big.jsonl.');
    expect(outcome.progress.reading).toBeGreaterThan(0);
    expect(outcome.progress.saving).toBeGreaterThan(0);
    expect(outcome.progress.lastSaving).toMatch(/^\d+\/60001$/);
    expect(await page.evaluate(() => window.persistence.stored())).toContainEqual({
      name: 'Imported: big.jsonl',
      trials: 12_000,
      events: 60_001,
    });
    expect(errors).toEqual([]);
  });

  it('shows the import progress in the Studies list of the page, then the imported study', async () => {
    const playground = await app.browser.newPage({ viewport: { width: 1280, height: 800 } });
    const pageErrors = watchErrors(playground);
    await playground.goto(app.url);
    const input = playground.getByLabel('Import a study log (.jsonl)');
    await input.setInputFiles({
      name: 'ui.jsonl',
      mimeType: 'application/jsonl',
      buffer: Buffer.from(makeStudyLog(12_000, 2)),
    });
    const progress = playground.getByTestId('import-progress');
    await progress.waitFor({ timeout: 30_000 });
    expect((await progress.textContent())?.replace(/\s+/g, ' ')).toMatch(
      /(Reading line|Storing event) [\d,]+ of [\d,]+…/,
    );
    expect(await input.isDisabled()).toBe(true);
    await playground.getByText('Imported ui.jsonl.').waitFor({ timeout: 60_000 });
    await playground.getByRole('button', { name: 'Open study Imported: ui.jsonl' }).waitFor();
    expect(await progress.count()).toBe(0);
    expect(pageErrors).toEqual([]);
    await playground.close();
  });
});
