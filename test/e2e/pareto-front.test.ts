// A two-objective search in the page, end to end in headless Chromium: the Search step's second objective
// (peak GPU memory, which the batch size sets) makes a multi-objective study, Results draws its Pareto front, a
// front trial is chosen from its row's button (by keyboard) and then by a click on its point in the chart, and
// the Export step exports the trial clicked (best-config.json names it).
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

const step = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

type FrontPoint = [x: number, y: number, trial: number];

/**
 * Where to click on the front chart for a front point other than `chosen`'s: its page pixel, and the trials drawn
 * there. Read from the page's own ECharts instance: the dev server serves charts.ts at its source path, so
 * importing it in the page reaches the module the app loaded (the import is a string: vitest rewrites an
 * `import()` written in a function passed to the page).
 */
async function frontPointAwayFrom(page: Page, chosen: number) {
  const chart = page.getByTestId('chart-pareto');
  await chart.scrollIntoViewIfNeeded();
  const charts = await page.evaluateHandle<typeof import('../../src/ui/lib/charts.ts')>(
    `import('/src/ui/lib/charts.ts')`,
  );
  return chart.evaluate(
    (el, [{ echarts }, chosen]) => {
      const instance = echarts.getInstanceByDom(el as HTMLElement)!;
      const series = instance.getOption().series as { name: string; data: FrontPoint[] }[];
      const front = series.find((s) => s.name === 'Pareto front')!.data;
      const at = front.find((p) => p[2] === chosen)!;
      const point = front.find((p) => p[0] !== at[0] || p[1] !== at[1]);
      if (!point) return null;
      const [x, y] = instance.convertToPixel({ seriesName: 'Pareto front' }, [point[0], point[1]]);
      const box = el.getBoundingClientRect();
      const trials = front.filter((p) => p[0] === point[0] && p[1] === point[1]).map((p) => p[2]);
      return { x: box.left + x, y: box.top + y, trials };
    },
    [charts, chosen] as const,
  );
}

describe('a multi-objective search in Chromium', () => {
  it('draws the Pareto front, and the front trial clicked is the one exported', async () => {
    const page = await app.browser.newPage({ viewport: { width: 1280, height: 900 }, acceptDownloads: true });
    const errors = watchErrors(page);
    await openSearchStep(page, app.url);

    await page.getByLabel(/^Second objective/).selectOption('peak_memory');
    // The form's default early stopping cannot run with two objectives: said under it, and Start waits.
    await expect
      .poll(() => page.locator('#pruner-problem').textContent())
      .toMatch(/a multi-objective study neither prunes nor runs PBT/);
    expect(await page.getByRole('button', { name: 'Start search' }).isDisabled()).toBe(true);
    await page.getByLabel('Early stopping').selectOption('none');
    // Batch 1 against batch 8 (searchBatchGrid), each visited twice by four trials: a trial is a deterministic
    // function of its parameters and seed, so each point's two trials tie, and both points are on the front (the
    // larger batch reaches the lower loss but holds more activations): a click on the chart chooses between them.
    await searchBatchGrid(page);
    await startSearch(page, { trials: 4, steps: 3, workers: 1 });
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
    // Chosen from the keyboard: the other trial's row button, focused and pressed.
    const other = numbers.find((n) => n !== defaultPick)!;
    await page.getByTestId(`front-row-${other}`).getByRole('button', { name: 'choose' }).press('Enter');
    await expect
      .poll(() => page.getByTestId('front-picked').textContent())
      .toBe(`Chosen for export: trial #${other}.`);
    expect(
      await page.getByTestId(`front-row-${other}`).getByRole('button').getAttribute('aria-pressed'),
    ).toBe('true');

    // Chosen with the mouse: a real click at the pixel of a front point away from the chosen one chooses a trial
    // drawn there (tied trials share a point).
    const target = await frontPointAwayFrom(page, other);
    expect(target, 'every front point lies on the chosen one').not.toBeNull();
    await page.mouse.click(target!.x, target!.y);
    await expect
      .poll(async () => Number((await page.getByTestId('front-picked').textContent())!.match(/#(\d+)/)![1]))
      .not.toBe(other);
    const clicked = Number((await page.getByTestId('front-picked').textContent())!.match(/#(\d+)/)![1]);
    expect(target!.trials).toContain(clicked);
    expect(
      await page.getByTestId(`front-row-${clicked}`).getByRole('button').getAttribute('aria-pressed'),
    ).toBe('true');
    await page.screenshot({ path: `${ARTIFACTS}/pareto-front.png`, fullPage: true });

    await step(page, 'Export').click();
    expect(await page.getByTestId('export-trial').textContent()).toMatch(
      new RegExp(`Exporting trial #${clicked} `),
    );
    const [dl] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download best-config.json' }).click(),
    ]);
    const path = `${ARTIFACTS}/pareto-best-config.json`;
    await dl.saveAs(path);
    const config = JSON.parse(readFileSync(path, 'utf8')) as { trial: number };
    expect(config.trial).toBe(clicked);
    // The chosen trial's own adapter comes with it.
    expect(
      await page.getByRole('button', { name: 'Download adapter/adapter_model.safetensors' }).count(),
    ).toBe(1);
    expect(errors).toEqual([]);
    await page.close();
  }, 500_000);
});
