// A constrained search in the page, end to end in headless Chromium: the Search step's Constraints field
// becomes the plan's bound, every trial is told its constraint value, and the trial list marks the trials
// that break it as infeasible (none of them is the best). The bound asks for more training tokens per
// second than any machine gives, so whichever parameters the sampler draws, every trial is infeasible.
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

type StoredTell = { type: string; state?: string; constraints?: number[] };

/** The tell events of the page's studies as stored in IndexedDB. */
function storedTells(page: Page): Promise<StoredTell[]> {
  return page.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('tunelab');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const all = open.result.transaction('events').objectStore('events').getAll();
          all.onerror = () => reject(all.error);
          all.onsuccess = () => {
            open.result.close();
            // A row holds one event, or an import's batch of them (src/ui/lib/db.ts).
            type Row = { event: StoredTell } | { events: StoredTell[] };
            const events = (all.result as Row[]).flatMap((r) => ('events' in r ? r.events : [r.event]));
            resolve(events.filter((e) => e.type === 'tell'));
          };
        };
      }),
  );
}

describe('a constrained search in Chromium', () => {
  it('marks the trials that break the bound infeasible and keeps their constraint values', async () => {
    const page = await app.browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    await page.goto(app.url);
    await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
    await page.getByRole('button', { name: 'Next: data' }).click();
    await page.getByLabel('Sample dataset').selectOption('addition.jsonl');
    await page.getByTestId('data-summary').waitFor({ timeout: 30_000 });
    await page.getByRole('button', { name: 'Next: search space' }).click();

    const constraints = page.getByLabel(/^Constraints/);
    await constraints.fill('tokens_per_second>=fast');
    // The problem shows under the Constraints field, which points at it.
    await expect
      .poll(() => page.locator('#constraints-problem').textContent())
      .toMatch(/^'tokens_per_second>=fast': the bound 'fast' is not a number/);
    expect(await constraints.getAttribute('aria-describedby')).toBe('constraints-problem');
    expect(await page.getByRole('button', { name: 'Start search' }).isDisabled()).toBe(true);
    await constraints.fill('tokens_per_second>=1e12');
    await page.getByLabel('Trials', { exact: true }).fill('2');
    await page.getByLabel('Steps per trial').fill('3');
    await page.getByLabel('Parallel workers').fill('1');
    await page.getByLabel('Early stopping').selectOption('none');
    await page.getByRole('button', { name: 'Start search' }).click();

    await expect
      .poll(() => page.getByTestId('run-phase').textContent(), { timeout: 240_000, interval: 500 })
      .toBe('Finished');
    const rows = page.getByTestId('trial-table').locator('tbody tr');
    expect(await rows.count()).toBe(2);
    for (const row of await rows.all()) {
      expect(await row.getAttribute('class')).toMatch(/\binfeasible\b/);
      expect(await row.locator('td').nth(1).textContent()).toMatch(/^infeasible/);
    }
    expect(await page.getByTestId('best-line').count()).toBe(0);
    await page.screenshot({ path: `${ARTIFACTS}/constraints-run.png`, fullPage: true });

    const tells = await storedTells(page);
    expect(tells).toHaveLength(2);
    for (const t of tells) {
      expect(t.state).toBe('complete');
      expect(t.constraints).toHaveLength(1);
      expect(t.constraints![0]).toBeGreaterThan(1e11); // 1e12 − tokens/s
    }
    expect(errors).toEqual([]);
    await page.close();
  }, 400_000);
});
