// A constrained search in the page, end to end in headless Chromium: the Search step's Constraints field
// becomes the plan's bound, every trial is told its constraint value, and the trial list marks the trials
// that break it as infeasible (none of them is the best). In the first study the bound asks for more
// training tokens per second than any machine gives, so whichever parameters the sampler draws, every trial
// is infeasible; in the second a peak-memory bound splits the trials, and the one exported is the feasible
// one although the infeasible one scores better.
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ARTIFACTS,
  openSearchStep,
  searchBatchGrid,
  startApp,
  startSearch,
  watchErrors,
  type App,
} from './browser.ts';

let app: App;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

type StoredTell = { type: string; number: number; state?: string; value?: number; constraints?: number[] };

const step = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

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
    await openSearchStep(page, app.url);

    const constraints = page.getByLabel(/^Constraints/);
    await constraints.fill('tokens_per_second>=fast');
    // The problem shows under the Constraints field, which points at it.
    await expect
      .poll(() => page.locator('#constraints-problem').textContent())
      .toMatch(/^'tokens_per_second>=fast': the bound 'fast' is not a number/);
    expect(await constraints.getAttribute('aria-describedby')).toBe('constraints-problem');
    expect(await page.getByRole('button', { name: 'Start search' }).isDisabled()).toBe(true);
    await constraints.fill('tokens_per_second>=1e12');
    await startSearch(page, { trials: 2, steps: 3, workers: 1, earlyStopping: 'none' });

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

  it('exports the best feasible trial when a better-scoring one breaks a peak-memory bound', async () => {
    const page = await app.browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const errors = watchErrors(page);
    await openSearchStep(page, app.url);
    // Batch 1 against batch 8 (searchBatchGrid): batch 8 reaches the lower loss but holds more activations, so
    // a 4 MB bound makes the better-scoring trial the infeasible one.
    await searchBatchGrid(page);
    await page.getByLabel(/^Constraints/).fill('peak_memory<=4000000');
    await startSearch(page, { trials: 2, steps: 3, workers: 1, earlyStopping: 'none' });
    await expect
      .poll(() => page.getByTestId('run-phase').textContent(), { timeout: 300_000, interval: 500 })
      .toBe('Finished');

    const told = await storedTells(page);
    expect(told).toHaveLength(2);
    const feasible = told.filter((t) => t.constraints![0] <= 0);
    const broken = told.filter((t) => t.constraints![0] > 0);
    expect(feasible, 'batch 1 keeps the 4 MB bound').toHaveLength(1);
    expect(broken, 'batch 8 breaks it').toHaveLength(1);
    // The infeasible trial scores better: the choice below is made by feasibility, not by the loss.
    expect(broken[0].value!).toBeLessThan(feasible[0].value!);
    const keptTrial = feasible[0].number;
    await expect
      .poll(() => page.getByTestId('best-line').textContent())
      .toMatch(new RegExp(`Best so far: trial ${keptTrial},`));

    await step(page, 'Export').click();
    expect(await page.getByTestId('export-trial').textContent()).toMatch(
      new RegExp(`Exporting trial #${keptTrial}, the best feasible trial \\(validation loss\\s+[\\d.]+\\)`),
    );
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download best-config.json' }).click(),
    ]);
    const path = `${ARTIFACTS}/constraints-best-config.json`;
    await dl.saveAs(path);
    expect((JSON.parse(readFileSync(path, 'utf8')) as { trial: number }).trial).toBe(keptTrial);
    expect(errors).toEqual([]);
    await page.close();
  }, 500_000);
});
