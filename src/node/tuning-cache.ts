// The autotuned kernel choices kept between runs in Node: one JSON file holding a TuningRecord per adapter
// (a machine may have several GPUs), in $TUNELAB_CACHE_DIR, else $XDG_CACHE_HOME/tunelab, else ~/.cache/tunelab.
// Writes are atomic (a temporary file renamed over the old one), so a crash never leaves half a file; a file
// that cannot be read or parsed is ignored with a warning and replaced by the next save, never a crash.
import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { KernelTuning, TuningRecord } from '../engine/gpu/tuning.ts';
import { parseJson } from '../engine/json.ts';
import { writeFileAtomic } from './files.ts';

export const TUNING_FILE = 'tuning.json';

/** The file's shape: records by adapter key. */
interface TuningFile {
  records: Record<string, unknown>;
}

export function tuningCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TUNELAB_CACHE_DIR) return env.TUNELAB_CACHE_DIR;
  const base = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'tunelab');
}

export const tuningCachePath = (env: NodeJS.ProcessEnv = process.env): string =>
  join(tuningCacheDir(env), TUNING_FILE);

export type Warn = (message: string) => void;
const stderrWarn: Warn = (message) => process.stderr.write(`warning: ${message}\n`);

/** The file's records, or none when it is missing; a corrupt file is reported through `warn` and skipped. */
async function readRecords(path: string, warn: Warn): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      warn(`kernel tuning cache ${path} could not be read (${(error as Error).message}); ignoring it`);
    }
    return {};
  }
  try {
    const parsed = parseJson(text, path) as Partial<TuningFile> | null;
    const records = parsed?.records;
    if (typeof records !== 'object' || records === null || Array.isArray(records)) {
      throw new Error('no "records" object');
    }
    return records;
  } catch (error) {
    warn(`kernel tuning cache ${path} is corrupt (${(error as Error).message}); ignoring it`);
    return {};
  }
}

/**
 * Loads the record stored for this tuning's adapter into it. False (and `tuning` untouched) when there is none,
 * or only one of another version (KernelTuning.load refuses it).
 */
export async function loadTuningCache(
  tuning: KernelTuning,
  path = tuningCachePath(),
  warn: Warn = stderrWarn,
): Promise<boolean> {
  const records = await readRecords(path, warn);
  const record = records[tuning.adapterKey];
  return record !== undefined && tuning.load(record);
}

/** Stores this tuning's record under its adapter, keeping the other adapters' records; atomic. */
export async function saveTuningCache(
  tuning: KernelTuning,
  path = tuningCachePath(),
  warn: Warn = stderrWarn,
): Promise<void> {
  const records = await readRecords(path, warn);
  const record: TuningRecord = tuning.toRecord();
  const file: TuningFile = { records: { ...records, [tuning.adapterKey]: record } };
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, `${JSON.stringify(file, null, 2)}\n`);
}
