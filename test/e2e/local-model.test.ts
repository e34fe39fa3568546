// A checkpoint from local files in Chromium: a tiny GPT-2 written to disk in Hugging Face layout, picked with
// the file input, loaded, and generating text in the Try step — greedy, so the text must be exactly the f64
// reference's greedy continuation, token for token (the tiny model's logits are far from ties; the test checks that too).
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openModel } from '../../src/engine/model/open.ts';
import { buildTinyModel, tinyModelFiles, writeTinyModel } from '../fixtures/tiny-models.ts';
import { transformerForwardRef } from '../reference/transformer.ts';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';

let app: App;
const dir = mkdtempSync(join(tmpdir(), 'tunelab-local-'));
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
  rmSync(dir, { recursive: true, force: true });
});

const PROMPT = 'hello world';
const NEW_TOKENS = 8;

/** Greedy continuation by the f64 reference: argmax of a full forward over the growing sequence. */
async function referenceGreedy(
  tiny: ReturnType<typeof buildTinyModel>,
): Promise<{ ids: number[]; text: string }> {
  const opened = await openModel(tinyModelFiles(tiny));
  const eos = new Set([
    ...opened.spec.eosTokenIds,
    ...(opened.tokenizer.eosTokenId === null ? [] : [opened.tokenizer.eosTokenId]),
  ]);
  const seq = opened.tokenizer.encode(PROMPT, { addSpecialTokens: true });
  const generated: number[] = [];
  const V = opened.spec.vocab;
  while (generated.length < NEW_TOKENS) {
    const logits = transformerForwardRef(opened.spec, tiny.tensors, seq, 1, seq.length);
    const last = logits.subarray((seq.length - 1) * V, seq.length * V);
    const order = [...last.keys()].sort((a, b) => last[b] - last[a]);
    // A near-tie could flip in f32: make sure the reference's choice is unambiguous.
    expect(last[order[0]] - last[order[1]]).toBeGreaterThan(1e-4);
    if (eos.has(order[0])) break;
    generated.push(order[0]);
    seq.push(order[0]);
  }
  return { ids: generated, text: opened.tokenizer.decode(generated) };
}

describe('a local checkpoint in Chromium', () => {
  it('loads a tiny GPT-2 from picked files and generates its greedy continuation in Try', async () => {
    const tiny = buildTinyModel({ arch: 'gpt2', dtype: 'F32', seed: 11 });
    await writeTinyModel(tiny, dir);
    const expected = await referenceGreedy(tiny);
    expect(expected.ids.length).toBeGreaterThan(0);

    const page = await app.browser.newPage({ viewport: { width: 1280, height: 800 } });
    const errors = watchErrors(page);
    await page.goto(app.url);
    await page.getByTestId('model-summary').waitFor({ timeout: 60_000 }); // the demo, first
    await page.getByLabel('Files on this computer').check();
    await page.getByLabel('Pick files').setInputFiles(readdirSync(dir).map((name) => join(dir, name)));
    await expect
      .poll(() => page.getByTestId('model-summary').textContent(), { timeout: 30_000 })
      .toContain('GPT2LMHeadModel');

    await page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name: 'Try' }).click();
    await page.getByLabel('Prompt').fill(PROMPT);
    await page.getByLabel('Tokens to generate').fill(String(NEW_TOKENS));
    await page.getByLabel('Temperature (0 = greedy)').fill('0');
    await page.getByRole('button', { name: 'Generate' }).click();
    await expect
      .poll(() => page.getByTestId('try-base-info').textContent(), { timeout: 60_000 })
      .toMatch(/tokens? · /);
    expect(await page.getByTestId('try-base').textContent()).toBe(expected.text);
    expect(await page.getByTestId('try-base-ids').textContent()).toBe(expected.ids.join(' '));
    await page.screenshot({ path: `${ARTIFACTS}/local-model-try.png` });
    expect(errors).toEqual([]);
    await page.close();
  });
});
