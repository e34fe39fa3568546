// Test page (served by the e2e Vite server): the page's IndexedDB persistence, driven from the test through
// `window.persistence`: the app's own study-log import, what is stored, and the quota-error test hook.
import { injectWriteError, listStudies, readEvents } from '../../../src/ui/lib/db.ts';
import { AppState } from '../../../src/ui/state/app-state.svelte.ts';
import { makeFinishedStudyLog as makeStudyLog } from '../../fixtures/study-logs.ts';

const app = new AppState();

export interface ImportOutcome {
  ms: number;
  notice: string;
  /** Progress as the page showed it: how many distinct states per stage. */
  progress: { reading: number; saving: number; lastSaving: string };
  /** The longest time between two animation frames while importing: how responsive the page stayed. */
  longestFrameMs: number;
}

async function importLog(text: string, name: string): Promise<ImportOutcome> {
  const progress = { reading: 0, saving: 0, lastSaving: '' };
  let seen: unknown = null;
  let longestFrameMs = 0;
  let last = performance.now();
  let watching = true;
  const watch = (now: number) => {
    longestFrameMs = Math.max(longestFrameMs, now - last);
    last = now;
    const p = app.importing;
    if (p && p !== seen) {
      seen = p;
      progress[p.stage]++;
      if (p.stage === 'saving') progress.lastSaving = `${p.done}/${p.total}`;
    }
    if (watching) requestAnimationFrame(watch);
  };
  requestAnimationFrame(watch);
  const started = performance.now();
  await app.importLog(new File([text], name));
  const ms = performance.now() - started;
  watching = false;
  return { ms, notice: app.notice, progress, longestFrameMs };
}

/** Every stored study with its log, in a form to compare before and after. */
async function stored(): Promise<{ name: string; trials: number; events: number }[]> {
  const studies = await listStudies();
  return Promise.all(
    studies.map(async (s) => ({ name: s.name, trials: s.trials, events: (await readEvents(s.id)).length })),
  );
}

Object.assign(window, { persistence: { importLog, stored, makeStudyLog, injectWriteError } });
