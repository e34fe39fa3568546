// The Model step's ladder in Chromium: the supported models by size with their memory against the GPU memory
// the user gives (the offline demo model loads by itself; the ladder lists the Hub models to scale up to).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';

let app: App;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

describe('the model ladder in the page', () => {
  it('lists the models by family with a verdict that follows the GPU memory given', async () => {
    const page = await app.browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = watchErrors(page);
    await page.goto(app.url);
    const ladder = page.getByTestId('model-ladder');
    await ladder.waitFor({ timeout: 60_000 });
    const row = (id: string) => ladder.getByRole('row').filter({ hasText: id });
    const verdict = (id: string) => row(id).getByRole('cell').last().textContent();
    expect(await row('Qwen/Qwen3-0.6B').getByRole('cell').first().textContent()).toBe('Qwen3');
    expect(await row('HuggingFaceTB/SmolLM3-3B').count()).toBe(1);
    // SmolLM2-135M in f32 (SwiftShader has no shader-f16): 0.5 GB of weights alone.
    await page.getByLabel('GPU memory in GiB').fill('0.5');
    await expect.poll(() => verdict('HuggingFaceTB/SmolLM2-135M')).toBe('does not fit');
    await page.getByLabel('GPU memory in GiB').fill('4');
    await expect.poll(() => verdict('HuggingFaceTB/SmolLM2-135M')).toBe('fits');
    // Qwen3-4B's (V, C) embedding is one buffer past this adapter's binding limit, whatever the memory: said so.
    await page.getByLabel('GPU memory in GiB').fill('64');
    await expect.poll(() => verdict('Qwen/Qwen3-4B')).toBe('does not fit');
    expect(await row('Qwen/Qwen3-4B').getByRole('cell').last().getAttribute('title')).toMatch(/embed_tokens/);
    await ladder.screenshot({ path: `${ARTIFACTS}/model-ladder.png` });
    expect(errors).toEqual([]);
    await page.close();
  });
});
