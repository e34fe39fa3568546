// A ~5 MB upload is parsed and tokenised in a Worker: the Data step shows how far it is, and the page's main
// thread never blocks for long (no long task over 200 ms, measured with a PerformanceObserver for 'longtask').
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';

let app: App;
let page: Page;
let errors: string[];
beforeAll(async () => {
  app = await startApp();
  page = await app.browser.newPage({ viewport: { width: 1280, height: 800 } });
  errors = watchErrors(page);
  page.on('console', (m) => {
    if (m.text().startsWith('longtask')) console.log(m.text());
  });
  await page.goto(app.url);
  await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
  await page.getByRole('button', { name: 'Next: data' }).click();
});
afterAll(async () => {
  await page?.close();
  await app?.close();
});

/** About `bytes` of prompt → completion rows (sums written out in words, so rows differ). */
function bigJsonl(bytes: number): string {
  const rows: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const a = (i * 7919) % 1000;
    const b = (i * 104729) % 1000;
    const row = JSON.stringify({
      prompt: `What is ${a} plus ${b}? `,
      completion: `${a + b}, since ${a} + ${b} = ${a + b}.`,
    });
    rows.push(row);
    size += row.length + 1;
  }
  return rows.join('\n') + '\n';
}

/** Starts recording the page's long tasks; `longTasks()` reads them. */
async function watchLongTasks(): Promise<void> {
  await page.evaluate(() => {
    const w = window as unknown as { longTasks: number[] };
    w.longTasks = [];
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        w.longTasks.push(e.duration);
        console.log(
          `longtask ${Math.round(e.duration)} ms at ${Math.round(e.startTime)} (${document.querySelector('[data-testid=data-progress]')?.textContent ?? 'no progress'})`,
        );
      }
    }).observe({ type: 'longtask' });
  });
}
const longTasks = () => page.evaluate(() => (window as unknown as { longTasks: number[] }).longTasks);

describe('a big upload', () => {
  it('shows its tokenising progress and keeps the page responsive', async () => {
    // A file on disk, as a person picks it (a buffer would cross the DevTools protocol into the page's thread).
    const dir = mkdtempSync(join(tmpdir(), 'tunelab-big-'));
    const file = join(dir, 'big.jsonl');
    const text = bigJsonl(5 * 1024 * 1024);
    writeFileSync(file, text);
    await watchLongTasks();
    const start = Date.now();
    await page.getByLabel('Or upload (.txt, .jsonl, .csv)').setInputFiles(file);
    const seen = new Set<string>();
    const progress = page.getByTestId('data-progress');
    const summary = page.getByTestId('data-summary');
    while ((await summary.count()) === 0) {
      const shown = await progress.textContent({ timeout: 1000 }).catch(() => null);
      if (shown) seen.add(shown.trim());
      const alerts = await page.getByRole('alert').allTextContents();
      if (alerts.length > 0 || Date.now() - start > 170_000)
        throw new Error(`no summary: ${alerts.join(' | ') || 'after 170 s'}; saw ${[...seen].join(' | ')}`);
      await page.waitForTimeout(100);
    }
    rmSync(dir, { recursive: true });
    const tasks = await longTasks();
    console.log(
      `5 MB JSONL (${text.split('\n').length - 1} rows): parsed in ${((Date.now() - start) / 1000).toFixed(1)} s; ` +
        `progress shown: ${[...seen].join(' | ')}; long tasks (ms): ${tasks.map(Math.round).join(', ') || 'none'}`,
    );
    const percents = [...seen]
      .map((s) => /(\d+)%/.exec(s)?.[1])
      .filter((p) => p !== undefined)
      .map(Number);
    expect(percents.some((p) => p > 0 && p < 100)).toBe(true);
    expect(Math.max(0, ...tasks)).toBeLessThan(200);
    expect(await summary.textContent()).toMatch(/prompt-completion/);
    await page.screenshot({ path: `${ARTIFACTS}/big-data.png` });
    expect(errors).toEqual([]);
  });
});
