// The Export step's "Push to the Hub" form in real Chromium, pushing through @huggingface/hub in the page to the
// fake Hub (test/fixtures/fake-hub.ts, answering CORS as the Hub does): the form's checks, a push whose files
// read back byte for byte, a refused token shown without the token, and the token kept nowhere in the page.
import type { Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { downloadFile } from '@huggingface/hub';
import { modelCard } from '../../src/engine/export/hub-push.ts';
import { hubPushRequest } from '../../src/ui/lib/hub-push.ts';
import { startFakeHub, type FakeHub } from '../fixtures/fake-hub.ts';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';
import { hubPushExportFiles } from './pages/hub-push-files.ts';

const TOKEN = 'hf_browserWriteToken7';
const REPO = 'you/demo-adapter';

let app: App;
let hub: FakeHub;
let page: Page;
let errors: string[];
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});
afterEach(async () => {
  await page?.close();
  await hub?.close();
});

async function openForm(): Promise<void> {
  hub = await startFakeHub({ repo: REPO, files: {}, missing: true, writeToken: TOKEN, cors: true });
  page = await app.browser.newPage({ viewport: { width: 1280, height: 800 } });
  errors = watchErrors(page);
  await page.goto(`${app.url}test/e2e/pages/hub-push.html?hub=${encodeURIComponent(hub.url)}`);
  await page.getByRole('form', { name: 'Push to the Hub' }).waitFor({ timeout: 60_000 });
}

async function readBack(path: string): Promise<Uint8Array> {
  const blob = await downloadFile({ repo: REPO, path, hubUrl: hub.url });
  if (!blob) throw new Error(`${path} is not on the fake Hub`);
  return new Uint8Array(await blob.arrayBuffer());
}

describe('Push to the Hub in Chromium', () => {
  it('checks the form, pushes the adapter and card, and keeps the token nowhere', async () => {
    await openForm();
    const form = page.getByRole('form', { name: 'Push to the Hub' });
    const token = form.getByLabel('Access token (write)');
    expect(await token.getAttribute('type')).toBe('password');

    await form.getByRole('button', { name: 'Push to the Hub' }).click();
    expect(await form.getByText('Enter the repo as owner/name.').count()).toBe(1);
    expect(await form.getByText('Enter an access token with write access.').count()).toBe(1);
    await form.getByLabel('Repo (owner/name)').fill('no-owner');
    expect(await form.getByText("Expected 'owner/name', got 'no-owner'.").count()).toBe(1);
    expect(hub.requests).toEqual([]);

    await form.getByLabel('Repo (owner/name)').fill(REPO);
    await token.fill(TOKEN);
    await form.getByRole('button', { name: 'Push to the Hub' }).click();
    const status = form.getByRole('status');
    await status.waitFor({ timeout: 30_000 });
    expect((await status.textContent())?.replace(/\s+/g, ' ')).toMatch(
      /^Pushed adapter_config\.json, adapter_model\.safetensors, README\.md to you\/demo-adapter \(new repo\): commit [0-9a-f]{7}\.$/,
    );
    expect(hub.repoState()).toEqual({ exists: true, private: true });
    await page.screenshot({ path: `${ARTIFACTS}/hub-push.png` });

    // What the page pushed is what the same export files give in Node, byte for byte.
    const request = hubPushRequest(hubPushExportFiles())!;
    for (const [name, bytes] of Object.entries(request.files)) {
      expect(Buffer.from(await readBack(name)).equals(Buffer.from(bytes)), name).toBe(true);
    }
    expect(new TextDecoder().decode(await readBack('README.md'))).toBe(modelCard(request.card));

    // The token went only into Authorization headers, and the page stored it nowhere.
    for (const { authorization, ...rest } of hub.requests) {
      expect(JSON.stringify(rest)).not.toContain(TOKEN);
      if (authorization) expect(authorization).toBe(`Bearer ${TOKEN}`);
    }
    const stored = await page.evaluate(async () => ({
      local: JSON.stringify({ ...localStorage }),
      session: JSON.stringify({ ...sessionStorage }),
      cookie: document.cookie,
      databases: JSON.stringify(await indexedDB.databases()),
      url: location.href,
    }));
    expect(JSON.stringify(stored)).not.toContain(TOKEN);
    expect(errors).toEqual([]);
  });

  it('a token the Hub refuses shows what failed, without the token', async () => {
    await openForm();
    const form = page.getByRole('form', { name: 'Push to the Hub' });
    await form.getByLabel('Repo (owner/name)').fill(REPO);
    await form.getByLabel('Access token (write)').fill('hf_notTheWriteToken');
    await form.getByRole('button', { name: 'Push to the Hub' }).click();
    const alert = form.getByRole('alert');
    await alert.waitFor({ timeout: 30_000 });
    const text = (await alert.textContent()) ?? '';
    expect(text).toMatch(/^Could not create the repo for you\/demo-adapter: the Hub refused the token \(401/);
    expect(text).not.toContain('hf_notTheWriteToken');
    expect(hub.repoState().exists).toBe(false);
    await page.screenshot({ path: `${ARTIFACTS}/hub-push-refused.png` });
    expect(errors).toEqual([]);
  });
});
