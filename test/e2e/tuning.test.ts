// Kernel autotuning in the page (Chromium, SwiftShader: it has 'timestamp-query'): the Model step tunes the
// demo model's shape classes on the page's device and shows what it picked; a reload loads the choices from
// IndexedDB; an adapter without timestamps says so and keeps the default kernels; a database of the version
// before the tuning store upgrades without losing its studies.
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

const tuningText = (page: Page) => page.getByTestId('kernel-tuning').textContent();

async function openDemo(page: Page): Promise<void> {
  await page.goto(app.url);
  await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
}

describe('kernel autotuning in the Model step', () => {
  it('times the demo model’s shape classes, shows the picks, and loads them from IndexedDB after a reload', async () => {
    const context = await app.browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await openDemo(page);
    await expect
      .poll(() => tuningText(page), { timeout: 120_000, interval: 500 })
      .toMatch(/Tuned for google \/ swiftshader: [1-9]\d* shape class/);
    expect(await tuningText(page)).not.toMatch(/loaded from cache/);
    await page.getByText('What was picked').click();
    const rows = page.getByRole('table', { name: 'Kernel choices' }).locator('tbody tr');
    const cells = await Promise.all((await rows.all()).map((r) => r.locator('td').allTextContents()));
    expect(cells.length).toBeGreaterThan(3);
    for (const [shapeClass] of cells) expect(shapeClass).toMatch(/^[mk][nk]:f32f32f32:\d+x\d+x\d+$/);
    // The classes timed carry the variant picked and its milliseconds; the others say why they have none.
    const timed = cells.filter(([, , variant]) => !variant.includes('('));
    expect(timed.length).toBeGreaterThan(0);
    for (const [, , variant, ms] of timed) {
      expect(variant).toMatch(/^(generic|t\d+x\d+)$/);
      expect(Number(ms)).toBeGreaterThanOrEqual(0);
    }
    for (const [, , variant] of cells.filter((c) => !timed.includes(c)))
      expect(variant).toMatch(/\((default|the only variant)\)$/);
    await page.screenshot({ path: `${ARTIFACTS}/tuning-1-tuned.png` });

    await page.reload();
    await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
    await expect
      .poll(() => tuningText(page), { timeout: 120_000, interval: 500 })
      .toMatch(/Tuned for google \/ swiftshader: \d+ shape class(es)?, (\d+ )?loaded from cache \(/);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('an adapter without timestamp queries says so and keeps the default kernels', async () => {
    const context = await app.browser.newContext();
    // Hide the feature from the page before the app asks for its adapter: the device is then created without it.
    await context.addInitScript(() => {
      const own = Object.getOwnPropertyDescriptor(GPUAdapter.prototype, 'features')!;
      Object.defineProperty(GPUAdapter.prototype, 'features', {
        get(this: GPUAdapter) {
          const all = own.get!.call(this) as GPUSupportedFeatures;
          return new Set([...all].filter((f) => f !== 'timestamp-query'));
        },
      });
    });
    const page = await context.newPage();
    const errors = watchErrors(page);
    await openDemo(page);
    await expect
      .poll(() => tuningText(page), { timeout: 60_000, interval: 500 })
      .toMatch(/No GPU timestamps .*timestamp-query.*: default kernels/);
    expect(errors).toEqual([]);
    await context.close();
  });

  it('a version-1 database (before the tuning store) upgrades and keeps its studies', async () => {
    const context = await app.browser.newContext();
    const page = await context.newPage();
    const errors = watchErrors(page);
    // A static file of the same origin, so the old database is made without the app running.
    await page.goto(`${app.url}samples/aesop.txt`);
    await page.evaluate(
      () =>
        new Promise<void>((resolve, reject) => {
          const open = indexedDB.open('tunelab', 1);
          open.onupgradeneeded = () => {
            const d = open.result;
            d.createObjectStore('studies', { keyPath: 'id' });
            d.createObjectStore('events', { autoIncrement: true }).createIndex('study', 'study');
            d.createObjectStore('files', { keyPath: ['study', 'name'] });
            const now = Date.now();
            // Written through the version-change transaction, which is still open here.
            open.transaction!.objectStore('studies').put({
              id: 'study-old',
              name: 'An old study',
              created: now,
              updated: now,
              status: 'finished',
              model: { kind: 'demo', label: 'Demo model' },
              dataFile: 'addition.jsonl',
              settings: {},
              trials: 0,
              bestValue: null,
              bestTrial: null,
            });
          };
          open.onsuccess = () => {
            open.result.close();
            resolve();
          };
          open.onerror = () => reject(open.error);
        }),
    );
    await openDemo(page);
    await page.getByRole('button', { name: 'Open study An old study' }).waitFor({ timeout: 30_000 });
    await expect
      .poll(() => tuningText(page), { timeout: 120_000, interval: 500 })
      .toMatch(/Tuned for google \/ swiftshader: [1-9]/);
    const stores = await page.evaluate(
      () =>
        new Promise<string[]>((resolve, reject) => {
          const open = indexedDB.open('tunelab');
          open.onsuccess = () => {
            const names = [...open.result.objectStoreNames];
            open.result.close();
            resolve(names);
          };
          open.onerror = () => reject(open.error);
        }),
    );
    expect(stores.sort()).toEqual(['events', 'files', 'studies', 'tuning']);
    expect(errors).toEqual([]);
    await context.close();
  });
});
