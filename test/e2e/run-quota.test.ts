// A full disk during a run, in real Chromium with a real trial Worker: the run stops with a message that says
// what happened, that the trials so far are kept and how to free space; the stored log stays a clean start of
// the study, and Resume (space freed) continues it from there to the end. Any other failed write stops the
// run the same way, and a study that cannot be stored whole at its start is not stored at all.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORAGE_FULL } from '../../src/ui/state/run-state.svelte.ts';
import { startApp, watchErrors, type App } from './browser.ts';
import type { RunQuotaResult } from './pages/run-quota.ts';

let app: App;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

describe('a full disk during a run', () => {
  it('stops the run with a clear message, keeps the trials so far, and resumes once space is freed', async () => {
    const page = await app.browser.newPage();
    const errors = watchErrors(page);
    await page.goto(`${app.url}test/e2e/pages/run-quota.html`);
    const handle = await page.waitForFunction(
      () => (window as { runQuotaResult?: unknown }).runQuotaResult,
      null,
      {
        timeout: 300_000,
        polling: 500,
      },
    );
    const result = (await handle.jsonValue()) as Partial<RunQuotaResult> & { error?: string };
    console.log(`full disk during a run: ${JSON.stringify(result)}`);
    expect(result.error).toBeUndefined();
    const { noRoom, full, resumed, broken } = result as RunQuotaResult;
    // A study that cannot be stored whole when it starts is not stored at all.
    expect(noRoom.phase).toBe('error');
    expect(noRoom.error).toMatch(/^The browser's storage for this page is full: delete studies/);
    expect(noRoom.stored).toBe(false);
    expect(full.phase).toBe('error');
    expect(full.error).toBe(STORAGE_FULL);
    expect(full.status).toBe('paused');
    expect(full.storedStates).toContain('complete');
    expect(full.storedIsPrefix).toBe(true);
    expect(full.storedEvents).toBeLessThan(full.memoryEvents);
    expect(resumed.phase).toBe('finished');
    expect(resumed.error).toBe('');
    expect(resumed.status).toBe('finished');
    expect(resumed.storedIsPrefix).toBe(true);
    expect(resumed.storedEvents).toBe(resumed.memoryEvents);
    expect(resumed.storedStates.filter((s) => s === 'complete' || s === 'pruned')).toHaveLength(3);
    // Any other failed write stops the run too, rather than leave a gap in the stored log.
    expect(broken.phase).toBe('error');
    expect(broken.error).toMatch(
      /^Saving the study failed \(The write failed \(UnknownError injected by a test\)\.?\), so the search stopped/,
    );
    expect(broken.status).toBe('paused');
    expect(broken.storedIsPrefix).toBe(true);
    expect(broken.storedStates).toContain('complete');
    expect(errors).toEqual([]);
    await page.close();
  }, 330_000);
});
