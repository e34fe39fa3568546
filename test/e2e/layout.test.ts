// Every step of the playground at a laptop's 1280 × 800 and a phone's 390 × 844 in Chromium: nothing wider than
// the window, every field wide enough to read, no serious or critical axe-core violation, no console error.
// A finished study is imported from the sidebar so Run, Results and Export have content.
import { readFileSync } from 'node:fs';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS, startApp, watchErrors, type App } from './browser.ts';
import { demoStudyLog } from './demo-study.ts';

const AXE = readFileSync('node_modules/axe-core/axe.min.js', 'utf8');
const MIN_INPUT_WIDTH = 60;

let app: App;
beforeAll(async () => {
  app = await startApp();
});
afterAll(async () => {
  await app?.close();
});

interface Fit {
  scrollWidth: number;
  innerWidth: number;
  /** Visible fields narrower than MIN_INPUT_WIDTH, by their accessible name. */
  narrow: string[];
  /** Elements sticking out past the window's right edge. */
  overflowing: string[];
}

async function measureFit(page: Page): Promise<Fit> {
  return page.evaluate((min) => {
    const describe = (el: Element) =>
      el.getAttribute('aria-label') ??
      (el.id ? `#${el.id}` : `${el.tagName.toLowerCase()}.${[...el.classList].join('.')}`);
    const narrow: string[] = [];
    for (const el of document.querySelectorAll('input, select, textarea')) {
      if (el instanceof HTMLInputElement && ['checkbox', 'radio', 'hidden'].includes(el.type)) continue;
      const box = el.getBoundingClientRect();
      if (box.width === 0 && box.height === 0) continue; // not shown
      if (box.width < min) narrow.push(`${describe(el)} (${Math.round(box.width)} px)`);
    }
    const overflowing: string[] = [];
    for (const el of document.body.querySelectorAll('*')) {
      const right = el.getBoundingClientRect().right;
      if (right > window.innerWidth + 1 && overflowing.length < 8)
        overflowing.push(`${describe(el)} (right ${Math.round(right)})`);
    }
    return {
      scrollWidth: document.documentElement.scrollWidth,
      innerWidth: window.innerWidth,
      narrow,
      overflowing,
    };
  }, MIN_INPUT_WIDTH);
}

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[] }[];
}

async function seriousViolations(page: Page): Promise<string[]> {
  await page.evaluate(AXE);
  const violations = await page.evaluate(async () => {
    const axe = (window as unknown as { axe: { run(): Promise<{ violations: AxeViolation[] }> } }).axe;
    return (await axe.run()).violations;
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

const navStep = (page: Page, name: string) =>
  page.getByRole('navigation', { name: 'Steps' }).getByRole('button', { name, exact: false });

const SIZES = [
  { name: 'laptop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
];

describe('the playground fits the screen', () => {
  for (const size of SIZES) {
    it(`every step at ${size.width} × ${size.height}`, async () => {
      const page = await app.browser.newPage({ viewport: { width: size.width, height: size.height } });
      const errors = watchErrors(page);
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(`console: ${m.text()}`);
      });
      const problems: string[] = [];
      const check = async (step: string) => {
        await page.screenshot({ path: `${ARTIFACTS}/layout-${size.name}-${step}.png`, fullPage: true });
        const fit = await measureFit(page);
        if (fit.scrollWidth > fit.innerWidth)
          problems.push(
            `${step}: page ${fit.scrollWidth} px wide in a ${fit.innerWidth} px window: ${fit.overflowing.join(', ')}`,
          );
        if (fit.narrow.length) problems.push(`${step}: narrow fields: ${fit.narrow.join(', ')}`);
        for (const v of await seriousViolations(page)) problems.push(`${step}: axe: ${v}`);
      };

      await page.goto(app.url);
      await page.getByTestId('model-summary').waitFor({ timeout: 60_000 });
      await check('model');
      // The other model sources' forms, then back to the demo (already loaded).
      await page.getByLabel('Hugging Face Hub').check();
      await check('model-hub');
      await page.getByLabel('Files on this computer').check();
      await check('model-files');
      await page.getByLabel('Built-in demo model (offline)').check();

      await page.getByRole('button', { name: 'Next: data' }).click();
      await page.getByLabel('Sample dataset').selectOption('addition.jsonl');
      await page.getByTestId('data-summary').waitFor({ timeout: 30_000 });
      await page.getByText('Or paste text').click();
      await check('data');

      await page.getByRole('button', { name: 'Next: search space' }).click();
      await check('search');
      // The preset menu and its button are on screen, not scrolled off to the side.
      for (const el of [page.getByLabel('Preset'), page.getByRole('button', { name: 'Apply preset' })]) {
        const box = (await el.boundingBox())!;
        if (box.x < 0 || box.x + box.width > size.width)
          problems.push(`search: ${await el.textContent()} off screen at x ${box.x}..${box.x + box.width}`);
      }

      await page.getByLabel('Import a study log (.jsonl)').setInputFiles({
        name: 'demo-study.jsonl',
        mimeType: 'application/jsonl',
        buffer: Buffer.from(demoStudyLog()),
      });
      await page.getByTestId('best-card').waitFor({ timeout: 30_000 });
      await page.getByTestId('chart-history').locator('canvas').waitFor();
      await check('results');
      for (const step of ['Run', 'Export', 'Try']) {
        await navStep(page, step).click();
        await check(step.toLowerCase());
      }
      expect(problems).toEqual([]);
      expect(errors).toEqual([]);
      await page.close();
    });
  }
});
