import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';

let app: App;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

describe('the tunelab shell in Chromium', () => {
  it('shows the adapter and passes the matmul self-test in the page and in a Worker', async () => {
    const page = await app.browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    await page.goto(app.url);
    await expect
      .poll(() => page.getByTestId('adapter').textContent(), { timeout: 60_000 })
      .toMatch(/swiftshader|\w+/);
    await expect.poll(() => page.getByTestId('f16').textContent()).toMatch(/^(yes|no)/);

    await page.getByRole('button', { name: 'Run GPU self-test' }).click();
    const pageRow = page.getByTestId('selftest-page');
    const workerRow = page.getByTestId('selftest-worker');
    await workerRow.waitFor({ timeout: 120_000 });
    const pageText = (await pageRow.textContent()) ?? '';
    const workerText = (await workerRow.textContent()) ?? '';
    console.log(`self-test in Chromium — page: ${pageText} | worker: ${workerText}`);
    expect(pageText).toContain('passed');
    expect(workerText).toContain('passed');
    expect(await page.getByRole('alert').count()).toBe(0);
    await page.screenshot({ path: `${ARTIFACTS}/selftest.png`, fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  });

  it('explains what to do when the browser has no WebGPU', async () => {
    const page = await app.browser.newPage();
    await page.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined });
    });
    await page.goto(app.url);
    const alert = page.getByRole('alert');
    await alert.waitFor({ timeout: 30_000 });
    const text = (await alert.textContent()) ?? '';
    expect(text).toContain('WebGPU is not available here');
    expect(text).toMatch(/Chrome\/Edge 113\+/);
    await page.screenshot({ path: `${ARTIFACTS}/no-webgpu.png` });
    await page.close();
  });
});
