// The results dashboard in Chromium on a saved study (the demo log imported, with the runs a page records added to
// its storage, so no trial trains): the trial table sorts (mouse and keyboard) and filters, a trial's detail opens
// from its row and closes with Escape back to the row, the contour and the timeline draw; at a laptop's and a
// phone's size, with nothing wider than the window.
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadStudy, topQuantileTrials } from '../../src/engine/search/index.ts';
import { seriousViolations } from './axe.ts';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';
import { demoStudyHistory, demoStudyLog } from './demo-study.ts';

let app: App;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

const navStep = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

/** Distinct colours drawn in a chart's canvas: an empty chart has one or two. */
const chartColours = (page: Page, testid: string): Promise<number> =>
  page.getByTestId(testid).evaluate((el) => {
    const canvas = el.querySelector('canvas');
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx) return 0;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const seen = new Set<number>();
    for (let i = 0; i < data.length; i += 4 * 7)
      if (data[i + 3] > 0) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return seen.size;
  });

/** The chart's canvas as a PNG data URL: two drawings compare equal only when every pixel does. */
const chartPixels = (page: Page, testid: string): Promise<string> =>
  page.getByTestId(testid).evaluate((el) => el.querySelector('canvas')?.toDataURL() ?? '');

const pageOverflow = (page: Page) =>
  page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

/** The first column (trial numbers) of the rows shown, in order. */
const shownTrials = async (page: Page) =>
  (await page.getByTestId('trial-table').locator('tbody tr td:first-child').allTextContents()).map((t) =>
    Number.parseInt(t, 10),
  );
const objectives = async (page: Page) =>
  (await page.getByTestId('trial-table').locator('tbody tr td:nth-child(4)').allTextContents()).map((t) =>
    t === '—' ? NaN : Number(t),
  );

// Seed 6: 9 complete trials, 3 pruned (3, 4 and 11).
const LOG = demoStudyLog(12, 6);
const TELLS = LOG.split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { type: string; number: number; state: string; value?: number })
  .filter((e) => e.type === 'tell');
const PRUNED = TELLS.filter((e) => e.state === 'pruned').map((e) => e.number);
const SMALL_LR = LOG.split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as { type: string; number: number; params?: { lr: number } })
  .filter((e) => e.type === 'ask' && e.params!.lr < 0.001)
  .map((e) => e.number);
const COMPLETE = TELLS.filter((e) => e.state === 'complete').length;
// Trials in the top 10 % of the complete ones: 2 of 9, so PED-ANOVA's ranking comes with a caveat.
const DEMO = loadStudy(LOG).study;
const TOP = topQuantileTrials(DEMO.trials, DEMO.direction).length;
const BEST = TELLS.filter((e) => e.state === 'complete').sort((a, b) => a.value! - b.value!)[0].number;

describe('the results dashboard', () => {
  for (const size of [
    { name: 'laptop', width: 1280, height: 800 },
    { name: 'phone', width: 390, height: 844 },
  ])
    it(`sorts, filters, opens a trial and draws the contour and timeline at ${size.width} px`, async () => {
      const page = await app.browser.newPage({ viewport: { width: size.width, height: size.height } });
      const errors = watchErrors(page);
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console: ${m.text()}`);
      });
      const shot = (name: string) =>
        page.screenshot({ path: `${ARTIFACTS}/results-${size.name}-${name}.png`, fullPage: true });
      await page.goto(app.url);
      await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
      await page.getByLabel('Import a study log (.jsonl)').setInputFiles({
        name: 'demo-study.jsonl',
        mimeType: 'application/jsonl',
        buffer: Buffer.from(LOG),
      });
      await page.getByTestId('best-card').waitFor({ timeout: 30_000 });
      // An imported log has no run times: the timeline says so; the contour needs none.
      await page.getByTestId('timeline-empty').waitFor();
      await expect.poll(() => chartColours(page, 'chart-contour'), { timeout: 15_000 }).toBeGreaterThan(8);

      // The runs a page records, stored with the study as the page stores them; reopened, the timeline draws.
      const history = JSON.stringify(demoStudyHistory(LOG));
      await page.evaluate(
        `import('/src/ui/lib/db.ts').then(async (db) => {
           const [study] = await db.listStudies();
           await db.putFile(study.id, 'history', ${JSON.stringify(history)});
         })`,
      );
      await page.reload();
      await page.getByRole('button', { name: 'Open study Imported: demo-study.jsonl' }).click();
      await expect.poll(() => page.getByTestId('run-phase').textContent()).toBe('Finished');

      // Sorting: by objective with the mouse (aria-sort follows), by number with the keyboard.
      const table = page.getByTestId('trial-table');
      expect(await shownTrials(page)).toEqual([...Array(12).keys()]);
      const objectiveHeader = table.getByRole('columnheader', { name: 'Objective' });
      await objectiveHeader.getByRole('button').click();
      expect(await objectiveHeader.getAttribute('aria-sort')).toBe('ascending');
      const ascending = await objectives(page);
      const values = ascending.filter((v) => !Number.isNaN(v));
      expect(values).toEqual([...values].sort((a, b) => a - b));
      expect(ascending.slice(values.length).every(Number.isNaN)).toBe(true); // pruned last
      expect((await shownTrials(page))[0]).toBe(BEST);
      await objectiveHeader.getByRole('button').click();
      expect(await objectiveHeader.getAttribute('aria-sort')).toBe('descending');
      const numberHeader = table.getByRole('columnheader', { name: '#' });
      await numberHeader.getByRole('button').focus();
      await page.keyboard.press('Enter');
      await page.keyboard.press('Enter');
      expect(await numberHeader.getAttribute('aria-sort')).toBe('descending');
      expect(await objectiveHeader.getAttribute('aria-sort')).toBe('none');
      expect(await shownTrials(page)).toEqual([...Array(12).keys()].reverse());

      // Filtering: by state, then by a parameter; a bad comparison is explained.
      for (const state of ['complete', 'infeasible', 'failed', 'running', 'paused'])
        await page.getByRole('checkbox', { name: new RegExp(`^${state} `) }).uncheck();
      expect((await shownTrials(page)).sort((a, b) => a - b)).toEqual(PRUNED);
      expect(await page.getByTestId('trial-count').textContent()).toContain(`Showing ${PRUNED.length} of 12`);
      await page.getByRole('checkbox', { name: /^complete / }).check();
      await page.getByLabel('Filter by parameters').fill('lr<0.001');
      expect((await shownTrials(page)).sort((a, b) => a - b)).toEqual(SMALL_LR);
      await page.getByLabel('Filter by parameters').fill('lr<abc');
      expect(await page.getByRole('alert').filter({ hasText: 'lr<abc' }).textContent()).toContain(
        'expected a number after <',
      );
      await page.getByLabel('Filter by parameters').fill('');
      await shot('run-filtered');
      expect(await seriousViolations(page)).toEqual([]);

      // The best trial's detail from the keyboard; Escape closes it and focus is back on its row.
      const bestButton = table.getByRole('button', { name: `${BEST} (details)`, exact: true });
      await bestButton.focus();
      await page.keyboard.press('Enter');
      const detail = page.getByTestId('trial-detail');
      await detail.waitFor();
      expect(await detail.getByRole('heading').first().textContent()).toBe(`Trial ${BEST} · complete`);
      expect(await page.getByTestId('trial-ending').textContent()).toMatch(
        /^Finished its 40 steps: validation loss/,
      );
      expect(await page.getByTestId('trial-log').textContent()).toMatch(
        /asked: lr=.*step 10: objective.*told: complete/,
      );
      // The fixture pauses trial 2 and resumes it later on the other worker; with seed 6 it is also the best.
      expect(BEST).toBe(2);
      const runs = await detail.getByRole('listitem').allTextContents();
      expect(runs[0]).toMatch(
        /^Started on worker \d, ran [\d.]+ s, paused at step 20 with its checkpoint stored\.$/,
      );
      expect(runs[1]).toMatch(
        /^Resumed from the checkpoint at step 20 on worker 2, ran 15 s, complete at step 40\.$/,
      );
      await expect.poll(() => chartColours(page, 'chart-trial'), { timeout: 10_000 }).toBeGreaterThan(4);
      expect(await pageOverflow(page)).toBeLessThanOrEqual(0);
      await shot('detail');
      expect(await seriousViolations(page)).toEqual([]);
      await page.keyboard.press('Escape');
      await detail.waitFor({ state: 'detached' });
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe(`${BEST} (details)`);

      // A click anywhere on a pruned trial's row: why it ended, by which pruner.
      await table
        .locator('tbody tr')
        .filter({ has: page.getByRole('button', { name: `${PRUNED[0]} (details)`, exact: true }) })
        .locator('td.params')
        .click();
      expect(await page.getByTestId('trial-ending').textContent()).toMatch(
        /^Pruned at step \d+ by the median pruner/,
      );
      await detail.getByRole('button', { name: 'Close' }).click();
      await detail.waitFor({ state: 'detached' });

      // Results: the timeline of the recorded runs (a pause among them) and the contour, each with its legend.
      await navStep(page, 'Results').click();
      await expect.poll(() => chartColours(page, 'chart-timeline'), { timeout: 15_000 }).toBeGreaterThan(4);
      await expect.poll(() => chartColours(page, 'chart-contour'), { timeout: 15_000 }).toBeGreaterThan(8);
      await page.getByLabel('Contour y axis').selectOption({ index: 0 });
      await page.getByLabel('Contour x axis').selectOption({ index: 1 });
      await expect.poll(() => chartColours(page, 'chart-contour'), { timeout: 15_000 }).toBeGreaterThan(8);
      // Under 10 finished trials the importance ranking carries its caveat.
      expect(await page.getByTestId('importance-caveat').count()).toBe(COMPLETE < 10 ? 1 : 0);
      // Importance over the whole space (fANOVA, the default), then among the top 10 % (PED-ANOVA): another
      // chart, named for its method, with its own caveat; back to fANOVA with the arrow keys.
      const wholeSpace = page.getByRole('radio', { name: 'whole space (fANOVA)' });
      const topTrials = page.getByRole('radio', { name: 'top 10 % (PED-ANOVA)' });
      const importanceChart = page.getByTestId('chart-importance');
      expect(await wholeSpace.isChecked()).toBe(true);
      expect(await importanceChart.getAttribute('aria-label')).toBe(
        'Parameter importance, whole space (fANOVA)',
      );
      await expect.poll(() => chartColours(page, 'chart-importance'), { timeout: 15_000 }).toBeGreaterThan(2);
      const fanovaPixels = await chartPixels(page, 'chart-importance');
      await topTrials.check();
      await expect
        .poll(() => importanceChart.getAttribute('aria-label'))
        .toBe('Parameter importance, top 10 % (PED-ANOVA)');
      await expect.poll(() => chartColours(page, 'chart-importance'), { timeout: 15_000 }).toBeGreaterThan(2);
      expect(await chartPixels(page, 'chart-importance')).not.toBe(fanovaPixels);
      expect(await page.getByTestId('importance-caveat').textContent()).toBe(
        `The top 10 % holds only ${TOP} trials: with fewer than about 5 the ranking is mostly noise.`,
      );
      expect(await pageOverflow(page)).toBeLessThanOrEqual(0);
      await shot('importance-top');
      expect(await seriousViolations(page)).toEqual([]);
      await topTrials.focus();
      await page.keyboard.press('ArrowLeft');
      expect(await wholeSpace.isChecked()).toBe(true);
      await expect.poll(() => chartPixels(page, 'chart-importance')).toBe(fanovaPixels);
      expect(await pageOverflow(page)).toBeLessThanOrEqual(0);
      await shot('results');
      expect(await seriousViolations(page)).toEqual([]);
      expect(errors).toEqual([]);
      await page.close();
    }, 180_000);
});
