// `tunelab tune` with several objectives: the Pareto front's adapters kept in <out>/front/trial-N/ (a trial that
// leaves the front loses its folder), the trial the export is made of (`--pick N`, else the front's best on
// the first objective), and the front as the summary prints it.
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Study, TrialRecord } from '../engine/search/index.ts';
import type { BestTrial, PlanObjective } from '../engine/tune/index.ts';
import { ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, type PeftAdapterFiles } from '../engine/lora/peft.ts';
import { writeFilesAtomic } from '../node/files.ts';
import { UsageError } from './args.ts';

const frontDir = (out: string, trial: number) => join(out, 'front', `trial-${trial}`);

/** Writes the adapters of front trials finished in this run and removes the folders of trials off the front. */
export async function syncFrontAdapters(out: string, front: readonly BestTrial[]): Promise<void> {
  for (const f of front) {
    if (!f.adapter) continue;
    const dir = frontDir(out, f.number);
    await mkdir(dir, { recursive: true });
    await writeFilesAtomic([
      { path: join(dir, ADAPTER_CONFIG_FILE), contents: f.adapter[ADAPTER_CONFIG_FILE] },
      { path: join(dir, ADAPTER_WEIGHTS_FILE), contents: f.adapter[ADAPTER_WEIGHTS_FILE] },
    ]);
  }
  const keep = new Set(front.map((f) => `trial-${f.number}`));
  const stored = await readdir(join(out, 'front')).catch(() => [] as string[]);
  for (const name of stored)
    if (/^trial-\d+$/.test(name) && !keep.has(name)) await rm(join(out, 'front', name), { recursive: true });
}

/** A front trial's adapter as a previous run stored it; null when its folder is missing or incomplete. */
export async function storedFrontAdapter(out: string, trial: number): Promise<PeftAdapterFiles | null> {
  const dir = frontDir(out, trial);
  try {
    const config = await readFile(join(dir, ADAPTER_CONFIG_FILE), 'utf8');
    const weights = await readFile(join(dir, ADAPTER_WEIGHTS_FILE));
    const bytes = new Uint8Array(new ArrayBuffer(weights.byteLength));
    bytes.set(weights);
    return { [ADAPTER_CONFIG_FILE]: config, [ADAPTER_WEIGHTS_FILE]: bytes };
  } catch {
    return null;
  }
}

/**
 * The front trial to export: `pick`, which must be on the front, else the front's best on the first
 * objective (the lowest number among ties). Undefined while the front is empty.
 */
export function pickedTrial(study: Study, pick: number | undefined): TrialRecord | undefined {
  const front = study.bestTrials;
  if (pick !== undefined) {
    const found = front.find((t) => t.number === pick);
    if (!found)
      throw new UsageError(
        `--pick ${pick}: trial ${pick} is not on the Pareto front` +
          (front.length > 0
            ? ` (front: trials ${front.map((t) => t.number).join(', ')})`
            : ' (the front is empty)'),
      );
    return found;
  }
  const sign = study.direction === 'minimize' ? 1 : -1;
  return front.reduce<TrialRecord | undefined>(
    (best, t) => (best === undefined || sign * t.value! < sign * best.value! ? t : best),
    undefined,
  );
}

/** The summary's lines for the front: one per trial with every objective's value and its parameters. */
export function frontSummary(
  study: Study,
  objectives: readonly PlanObjective[],
  exported: number | undefined,
  out: string,
  fmtParams: (p: Record<string, unknown>) => string,
): string[] {
  const front = study.bestTrials;
  if (front.length === 0) return [];
  const names = objectives.map((o) => `${o.metric} (${o.direction === 'minimize' ? 'min' : 'max'})`);
  const lines = [`Pareto front: ${front.length} trial${front.length > 1 ? 's' : ''}; ${names.join(', ')}`];
  for (const t of front) {
    const values = (t.values ?? []).map((v, i) => `${objectives[i].metric} ${formatValue(v)}`).join('  ');
    lines.push(`  trial ${t.number}${t.number === exported ? ' *' : ''}  ${values}  ${fmtParams(t.params)}`);
  }
  if (exported !== undefined)
    lines.push(`exported: trial ${exported} (*); export another with: tunelab tune --resume ${out} --pick N`);
  return lines;
}

/** Four significant digits, integers (bytes) whole. */
const formatValue = (v: number): string =>
  Number.isInteger(v) ? String(v) : Number(v.toPrecision(4)).toString();
