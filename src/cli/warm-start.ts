// `tunelab tune --warm-start STUDY_DIR`: the seed a finished study (the --out of an earlier tune run, e.g. on
// a smaller model of the family) gives the new one — its top configurations asked first, its trials prior
// observations for the sampler (src/engine/search/warm-start.ts). Refused, naming the flag, when the folder
// holds no study log, the study is not finished, or it shares no searched parameter with the new space.
import { join } from 'node:path';
import { WarmStartError, warmStartFrom } from '../engine/search/index.ts';
import type { SearchSpace, WarmStartSeed } from '../engine/search/index.ts';
import { UsageError } from './args.ts';
import { readJournal, StudyLogError } from './study-journal.ts';

/** What the seed holds, and what of the source was clipped or dropped, for stderr. */
export function warmStartSummary(dir: string, seed: WarmStartSeed): string {
  const head = `--warm-start: from '${dir}': ${seed.replay.length} configuration(s) asked first, ${seed.prior.length} prior observation(s)\n`;
  return head + seed.notes.map((n) => `--warm-start: ${n}\n`).join('');
}

/** The seed of the finished study in `dir` for a new study over `space`; a UsageError naming the flag if none. */
export async function warmStartOf(dir: string, space: SearchSpace): Promise<WarmStartSeed> {
  const path = join(dir, 'study.jsonl');
  const journal = await readJournal(path).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UsageError(
        `--warm-start: no study.jsonl in '${dir}' (expected the --out of a finished tunelab tune run)`,
      );
    if (error instanceof StudyLogError) throw new UsageError(`--warm-start: ${error.message}`);
    throw error;
  });
  const resume = `finish it first with tunelab tune --resume ${dir}`;
  if (journal.torn)
    throw new UsageError(
      `--warm-start: the study in '${dir}' is not finished (study.jsonl ends with a cut-off line); ${resume}`,
    );
  const running = journal.study.trials.filter((t) => t.state === 'running').map((t) => t.number);
  if (running.length > 0)
    throw new UsageError(
      `--warm-start: the study in '${dir}' is not finished (trial ${running.join(', ')} still running or paused); ${resume}`,
    );
  try {
    return warmStartFrom(journal.study, space);
  } catch (error) {
    if (error instanceof WarmStartError) throw new UsageError(`--warm-start: '${dir}': ${error.reason}`);
    throw error;
  }
}
