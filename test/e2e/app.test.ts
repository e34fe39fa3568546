// The playground end to end in headless Chromium (SwiftShader WebGPU, f32): the demo model, a sample
// dataset, a 3-trial search on 2 workers with a reload in the middle, every chart, the exports.
import { copyFileSync, readFileSync } from 'node:fs';
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

const shot = (page: Page, name: string) => page.screenshot({ path: `${ARTIFACTS}/app-${name}.png` });
const step = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

/** Distinct colours drawn in a chart's canvas: an empty chart has one or two. */
async function chartColours(page: Page, testid: string): Promise<number> {
  return page.getByTestId(testid).evaluate((el) => {
    const canvas = el.querySelector('canvas');
    if (!canvas) return 0;
    const ctx = canvas.getContext('2d');
    if (!ctx) return 0;
    const { data } = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const seen = new Set<number>();
    for (let i = 0; i < data.length; i += 4 * 7)
      if (data[i + 3] > 0) seen.add((data[i] << 16) | (data[i + 1] << 8) | data[i + 2]);
    return seen.size;
  });
}

describe('the playground in Chromium', () => {
  it('searches 3 trials on 2 workers over a reload, shows every chart and exports the best adapter', async () => {
    const page = await app.browser.newPage({ viewport: { width: 1280, height: 800 }, acceptDownloads: true });
    const errors = watchErrors(page);
    await page.goto(app.url);

    // Model: the offline demo loads by itself.
    const summary = page.getByTestId('model-summary');
    await summary.waitFor({ timeout: 60_000 });
    expect(await summary.textContent()).toContain('LlamaForCausalLM');
    expect(await page.getByText('demo', { exact: true }).count()).toBeGreaterThan(0);
    await expect.poll(() => page.getByTestId('memory-estimate').textContent()).toContain('Fits this GPU');
    await shot(page, '1-model');

    // Data: the addition sample, tokenised, with the completion tokens highlighted.
    await page.getByRole('button', { name: 'Next: data' }).click();
    await page.getByLabel('Sample dataset').selectOption('addition.jsonl');
    await page.getByTestId('data-summary').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('data-summary').textContent()).toMatch(
      /prompt-completion[\s\S]*216 training · 24 validation/,
    );
    expect(await page.locator('.tok.response').count()).toBeGreaterThan(0);
    await shot(page, '2-data');

    // Search: an invalid range is explained next to its parameter, then fixed.
    await page.getByRole('button', { name: 'Next: search space' }).click();
    await page.getByLabel('Learning rate: low').fill('0.5');
    await page.getByLabel('Learning rate: high').fill('0.1');
    await expect.poll(() => page.getByRole('alert').first().textContent()).toMatch(/low < high/);
    expect(await page.getByRole('button', { name: 'Start search' }).isDisabled()).toBe(true);
    await page.getByLabel('Learning rate: low').fill('1e-3');
    await page.getByLabel('Learning rate: high').fill('3e-2');
    await page.getByLabel('Trials', { exact: true }).fill('3');
    await page.getByLabel('Steps per trial').fill('5');
    await page.getByLabel('Evaluate every (steps, 0 = auto)').fill('3');
    await page.getByLabel('Parallel workers').fill('2');
    await page.getByLabel('Early stopping').selectOption('none');
    await shot(page, '3-search');
    await page.getByRole('button', { name: 'Start search' }).click();

    // Run: until a trial completes, Results and Export say why they are disabled.
    await page.getByTestId('results-hint').waitFor({ timeout: 30_000 });
    expect(await page.getByTestId('results-hint').textContent()).toMatch(/No trial has completed yet/);
    expect(await step(page, 'Results').isDisabled()).toBe(true);
    expect(await step(page, 'Export').getAttribute('title')).toMatch(
      /Results and Export open when the first/,
    );
    // Wait for the first finished trial, then reload mid-study.
    await page.getByTestId('best-line').waitFor({ timeout: 120_000 });
    const before = (await page.getByTestId('trial-table').textContent()) ?? '';
    console.log(`before reload: ${before.replace(/\s+/g, ' ').slice(0, 300)}`);
    await page.reload();
    await expect
      .poll(() => page.getByTestId('run-phase').textContent(), { timeout: 60_000 })
      .toMatch(/Running|Loading|Finished/);
    await expect
      .poll(() => page.getByTestId('run-phase').textContent(), { timeout: 150_000 })
      .toBe('Finished');
    // The trials the reload interrupted continued (from their last checkpoint) rather than being asked again.
    const rows = page.getByTestId('trial-table').locator('tbody tr');
    expect(await rows.and(page.locator('.complete')).count()).toBe(3);
    const table = (await page.getByTestId('trial-table').textContent()) ?? '';
    console.log(`after: ${table.replace(/\s+/g, ' ')}`);
    expect(table).not.toMatch(/running|failed/);
    expect(await rows.count()).toBe(3);
    expect(table).toMatch(/resumed from step \d+/);
    expect(await chartColours(page, 'chart-loss')).toBeGreaterThan(4);
    await shot(page, '4-run');
    copyFileSync(`${ARTIFACTS}/app-4-run.png`, 'docs/dashboard.png');

    // Results: every chart draws something.
    await step(page, 'Results').click();
    for (const id of [
      'chart-history',
      'chart-parallel',
      'chart-importance',
      'chart-slice',
      'chart-intermediate',
      'chart-contour',
      'chart-timeline', // the runs this page recorded, before and after the reload
    ]) {
      await page.getByTestId(id).waitFor({ timeout: 10_000 });
      await expect.poll(() => chartColours(page, id), { timeout: 10_000 }).toBeGreaterThan(4);
    }
    expect(await page.getByTestId('best-card').textContent()).toContain('Best trial');
    await page.screenshot({ path: `${ARTIFACTS}/app-5-results.png`, fullPage: true });

    // Export: the best config parses as JSON, the adapter as safetensors with LoRA tensors.
    await step(page, 'Export').click();
    const save = async (name: string) => {
      const [dl] = await Promise.all([
        page.waitForEvent('download'),
        page.getByRole('button', { name: `Download ${name}` }).click(),
      ]);
      const path = `${ARTIFACTS}/${name.replaceAll('/', '_')}`;
      await dl.saveAs(path);
      return readFileSync(path);
    };
    const config = JSON.parse((await save('best-config.json')).toString('utf8')) as {
      hyperparameters: Record<string, unknown>;
      model: { id: string };
      study: { sampler: string; pruner: string };
    };
    expect(config.hyperparameters.lr).toBeTypeOf('number');
    // The demo is named as a local folder whose files come with the export.
    expect(config.model.id).toBe('./demo-model');
    const demoConfig = JSON.parse((await save('demo-model/config.json')).toString('utf8')) as {
      architectures: string[];
    };
    expect(demoConfig.architectures).toEqual(['LlamaForCausalLM']);
    const trainingArgs = JSON.parse((await save('hf/training_args.json')).toString('utf8')) as {
      learning_rate: number;
      fp16: boolean;
      bf16: boolean;
    };
    expect(trainingArgs.learning_rate).toBe(config.hyperparameters.lr);
    // SwiftShader has no shader-f16: the trials trained in f32, and the exports say so until a target GPU is chosen.
    expect([trainingArgs.fp16, trainingArgs.bf16]).toEqual([false, false]);
    await page.getByLabel('Target GPU').selectOption('bf16');
    const bf16Args = JSON.parse((await save('hf/training_args.json')).toString('utf8')) as { bf16: boolean };
    expect(bf16Args.bf16).toBe(true);
    // Every trial's duration is in trials.csv.
    const csv = (await save('trials.csv')).toString('utf8').trim().split('\r\n');
    const durationColumn = csv[0].split(',').indexOf('duration');
    for (const row of csv.slice(1)) expect(Number(row.split(',')[durationColumn])).toBeGreaterThan(0);
    expect((await save('axolotl.yaml')).toString('utf8')).toMatch(/^adapter: lora$/m);
    expect((await save('optuna_search.py')).toString('utf8')).toContain('import optuna');
    const adapterConfig = JSON.parse((await save('adapter/adapter_config.json')).toString('utf8')) as {
      peft_type: string;
      r: number;
    };
    expect(adapterConfig.peft_type).toBe('LORA');
    const weights = await save('adapter/adapter_model.safetensors');
    const headerLength = Number(weights.readBigUInt64LE(0));
    const header = JSON.parse(weights.subarray(8, 8 + headerLength).toString('utf8')) as Record<
      string,
      { shape: number[] }
    >;
    const loraKeys = Object.keys(header).filter((k) => k.includes('lora_A'));
    expect(loraKeys.length).toBeGreaterThan(0);
    expect(header[loraKeys[0]].shape[0]).toBe(adapterConfig.r);
    const [zipDownload] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Download everything as a zip' }).click(),
    ]);
    await zipDownload.saveAs(`${ARTIFACTS}/tunelab-best.zip`);
    const zip = readFileSync(`${ARTIFACTS}/tunelab-best.zip`);
    expect(zip.readUInt32LE(0)).toBe(0x04034b50);
    // Entries in the end-of-central-directory record: 12 exports and the demo model's 5 files.
    expect(zip.readUInt16LE(zip.length - 22 + 10)).toBe(17);
    await shot(page, '6-export');

    // Try: the base model and base + best adapter, side by side.
    await step(page, 'Try').click();
    await page.getByRole('button', { name: 'Generate' }).click();
    // Polls the outcome with any error shown, so a failure says what the page said.
    const outcome = async () =>
      `${await page.getByTestId('try-tuned-info').textContent()}${(await page.getByRole('alert').allTextContents()).join(' | ')}`;
    await expect.poll(outcome, { timeout: 60_000 }).toMatch(/^\d+ tokens? · [^|]*$/);
    expect(await page.getByTestId('try-base-info').textContent()).toMatch(/\d+ tokens? · /);
    expect(await page.getByTestId('try-tuned').textContent()).not.toContain('No adapter yet');
    await shot(page, '7-try');
    expect(errors).toEqual([]);
    await page.close();
  });
});
