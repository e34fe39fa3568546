// Pause keeps work, in real Chromium with two real trial Workers and IndexedDB: Pause checkpoints both running
// trials (shown "paused", not failed) and Resume continues the same trials from the same step to the end; so
// do a reload after a pause, and a reload mid-run (from the checkpoints the run stores every evaluation).
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp, watchErrors, type App } from './browser.ts';
import type { RunView } from './pages/pause.ts';

interface PauseTest {
  startAndPause(name: string, step: number): Promise<RunView>;
  startAndRun(name: string, step: number): Promise<RunView>;
  open(name: string): Promise<RunView>;
  resume(): Promise<RunView>;
}
declare const window: Window & { pauseTest: PauseTest };

let app: App;
let page: Page;
let errors: string[];
beforeAll(async () => {
  app = await startApp();
  page = await app.browser.newPage();
  errors = watchErrors(page);
  await load();
});
afterAll(async () => {
  await page?.close();
  await app?.close();
});

async function load(): Promise<void> {
  await page.goto(`${app.url}test/e2e/pages/pause.html`);
  await page.waitForFunction(() => 'pauseTest' in window);
}

/** Both trials continued from their stored checkpoint step, and the study finished with exactly them. */
function expectContinued(before: RunView, after: RunView): void {
  expect(after.phase).toBe('finished');
  expect(after.error).toBe('');
  expect(after.status).toBe('finished');
  expect(after.trials.map((t) => [t.number, t.shown, t.step])).toEqual([
    [0, 'complete', 8],
    [1, 'complete', 8],
  ]);
  for (const t of before.trials) {
    expect(t.checkpoint).toBeGreaterThan(0);
    expect(after.trials[t.number].note).toBe(`resumed from step ${t.checkpoint}`);
    expect(after.trials[t.number].checkpoint).toBeNull(); // removed once the trial finished
  }
}

// Each flow loads the model into two Workers twice (SwiftShader compiles every pipeline in each).
describe('pause keeps work in the page', { timeout: 600_000 }, () => {
  it('Pause checkpoints both running trials; Resume continues them from that step to the end', async () => {
    const paused = await page.evaluate(() => window.pauseTest.startAndPause('pause-resume', 2));
    console.log(`paused: ${JSON.stringify(paused)}`);
    expect(paused.phase).toBe('paused');
    expect(paused.status).toBe('paused');
    // What each trial was doing, and the validation cap of the plan (4 of the 6 examples), as the page shows.
    for (const a of paused.activities!)
      expect(a).toMatch(/^(training step \d+\/8|evaluating \d+\/\d+ batches)$/);
    expect(paused.evaluation).toEqual({ used: 4, total: 6 });
    for (const t of paused.trials) {
      expect(t.shown).toBe('paused');
      expect(t.checkpoint).toBe(t.step); // the step it stopped at, stored
    }
    const t0 = Date.now();
    const after = await page.evaluate(() => window.pauseTest.resume());
    console.log(`resumed (${((Date.now() - t0) / 1000).toFixed(0)} s): ${JSON.stringify(after)}`);
    expectContinued(paused, after);
    expect(errors).toEqual([]);
  });

  it('Pause, reload, Resume: the same trials continue from the same step', async () => {
    const paused = await page.evaluate(() => window.pauseTest.startAndPause('pause-reload', 2));
    await load();
    const opened = await page.evaluate(() => window.pauseTest.open('pause-reload'));
    console.log(`after the reload: ${JSON.stringify(opened)}`);
    expect(opened.phase).toBe('paused');
    expect(opened.trials.map((t) => [t.number, t.shown, t.checkpoint])).toEqual(
      paused.trials.map((t) => [t.number, 'paused', t.step]),
    );
    const after = await page.evaluate(() => window.pauseTest.resume());
    expectContinued(opened, after);
    expect(errors).toEqual([]);
  });

  it('a reload mid-run (no pause) continues both trials from their last periodic checkpoint', async () => {
    await page.evaluate(() => window.pauseTest.startAndRun('reload-mid-run', 3));
    await load();
    const opened = await page.evaluate(() => window.pauseTest.open('reload-mid-run'));
    console.log(`after a reload mid-run: ${JSON.stringify(opened)}`);
    expect(opened.status).toBe('running');
    expect(opened.phase).toBe('paused');
    for (const t of opened.trials) {
      expect(t.shown).toBe('paused');
      expect(t.checkpoint).toBeGreaterThanOrEqual(2); // one every evaluation interval (2 steps)
    }
    const after = await page.evaluate(() => window.pauseTest.resume());
    expectContinued(opened, after);
    expect(errors).toEqual([]);
  });
});
