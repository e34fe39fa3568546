// Real headless Chromium (Debian's, never a downloaded one) against the app served by Vite on loopback.
// Chromium's WebGPU here is SwiftShader (a CPU fallback adapter without shader-f16: the f32 path).
import { mkdirSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { createServer, type ViteDevServer } from 'vite';

export const ARTIFACTS = 'test-results/e2e';

const CHROMIUM_ARGS = [
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];

export interface App {
  url: string;
  browser: Browser;
  close(): Promise<void>;
}

export async function startApp(): Promise<App> {
  const server: ViteDevServer = await createServer({
    configFile: 'vite.config.ts',
    logLevel: 'warn',
    server: { host: '127.0.0.1', port: 0, strictPort: false, hmr: false },
  });
  await server.listen();
  const address = server.httpServer?.address();
  if (!address || typeof address === 'string') throw new Error('vite did not report a port');
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: CHROMIUM_ARGS,
  });
  mkdirSync(ARTIFACTS, { recursive: true });
  return {
    url: `http://127.0.0.1:${address.port}/`,
    browser,
    async close() {
      await browser.close();
      await server.close();
    },
  };
}

/** Opens the app, waits for the default model, picks the addition sample dataset and goes to the Search step. */
export async function openSearchStep(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
  await page.getByRole('button', { name: 'Next: data' }).click();
  await page.getByLabel('Sample dataset').selectOption('addition.jsonl');
  await page.getByTestId('data-summary').waitFor({ timeout: 30_000 });
  await page.getByRole('button', { name: 'Next: search space' }).click();
}

/** On the Search step: the run's size (and early stopping, when given), then Start search. */
export async function startSearch(
  page: Page,
  run: { trials: number; steps: number; workers: number; earlyStopping?: string },
): Promise<void> {
  await page.getByLabel('Trials', { exact: true }).fill(String(run.trials));
  await page.getByLabel('Steps per trial').fill(String(run.steps));
  await page.getByLabel('Parallel workers').fill(String(run.workers));
  if (run.earlyStopping) await page.getByLabel('Early stopping').selectOption(run.earlyStopping);
  await page.getByRole('button', { name: 'Start search' }).click();
}

/**
 * On the Search step: only the batch size searched, on a grid over 1 and 8, at learning rate 3e-3 and rank 8.
 * There batch 8 reaches the lower loss but holds more activations (≈ 6.4 MiB against ≈ 2.4 MiB for batch 1 on
 * the demo model), so the two trade off; at 3e-2 the loss rises and batch 1 would dominate.
 */
export async function searchBatchGrid(page: Page): Promise<void> {
  await page.getByLabel('Learning rate: how it is set').selectOption('fixed');
  await page.getByLabel('Learning rate: value').fill('3e-3');
  await page.getByLabel('LoRA rank r: how it is set').selectOption('fixed');
  await page.getByLabel('LoRA rank r: value').fill('8');
  await page.getByLabel('Batch size: how it is set').selectOption('choices');
  await page.getByLabel('Batch size: choices').fill('1, 8');
  await page.getByLabel('Sampler').selectOption('grid');
}

/** Fails the test on uncaught page errors, which otherwise only show up as a timeout. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  return errors;
}
