// The worker pool in a real browser: two dedicated module Workers, each with its own WebGPU device
// (SwiftShader in headless Chromium: the f32 path), run a 2-trial study driven from the page.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, watchErrors, type App } from './browser.ts';

let app: App;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

describe('the trial worker pool in Chromium', () => {
  it('runs a 2-trial study on 2 Workers and reports both trials complete', async () => {
    const page = await app.browser.newPage();
    const errors = watchErrors(page);
    await page.goto(`${app.url}test/e2e/pages/pool.html`);
    const handle = await page.waitForFunction(() => (window as { poolResult?: unknown }).poolResult, null, {
      timeout: 150_000,
      polling: 500,
    });
    const result = (await handle.jsonValue()) as {
      states?: string[];
      values?: number[];
      workers?: string[];
      adapters?: string[];
      error?: string;
    };
    console.log(`pool in Chromium: ${JSON.stringify(result)}\n${await page.locator('#log').textContent()}`);
    expect(result.error).toBeUndefined();
    expect(result.states).toEqual(['complete', 'complete']);
    expect(result.values!.every((v) => Number.isFinite(v))).toBe(true);
    expect(result.workers!.sort()).toEqual(['0', '1']);
    expect(result.adapters!.length).toBeGreaterThan(0);
    expect(errors).toEqual([]);
    await page.close();
  });
});
