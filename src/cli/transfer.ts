// `tunelab transfer`: does the small model's ranking hold on a larger one? The top configurations of a finished
// study re-run on a larger model of the same family and tokenizer, with the study's data, split and budget;
// Kendall τ-b of the two rankings and whether the small model's best is the large one's (or within x %), a
// small-vs-large plot, and the result appended to the study's log as a 'transfer' event.
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { parameterCount } from '../engine/model/memory.ts';
import type { OpenedModel } from '../engine/model/open.ts';
import type { Study } from '../engine/search/index.ts';
import { dataTokenizer, padIdOf, splitExamples, type Example } from '../engine/train/data.ts';
import { agreement, transferEvent, type TransferPoint } from '../engine/transfer/agreement.ts';
import { transferPlotSvg } from '../engine/transfer/plot.ts';
import { InProcessSlots, OBJECTIVES, StudyPlan, type TrialJob } from '../engine/tune/index.ts';
import { objectiveValue } from '../engine/tune/objective.ts';
import { nodeGpu } from '../node/dawn.ts';
import { nodeDirectoryFiles, writeFilesAtomic } from '../node/files.ts';
import { numberFlag, parseFlags, stringFlag, UsageError, type FlagValues } from './args.ts';
import { checkOutDir, openModelDir, readDataset } from './common.ts';
import { readJournal } from './study-journal.ts';
import { planOfStudy } from './tune-plan.ts';
import { savedFlags } from './tune.ts';

export const TRANSFER_USAGE = `tunelab transfer --study DIR --model DIR --out DIR [--top 5] [--within 5]

  Re-runs the --top best configurations of a finished study (the --out of tunelab tune) on --model, a larger
  model of the same family and tokenizer, with the study's data, validation split, steps and seed, one after
  another. Reports Kendall's τ-b between the two models' objective values (ties counted as τ-b does) and whether
  the small model's best configuration is the large model's best, or within --within percent of it.

  Writes to --out: transfer.json (every configuration's two values and the agreement) and transfer.svg (small vs
  large objective per configuration); appends a 'transfer' event to the study's study.jsonl.
  Exit status: 0 when at least one configuration ran on --model, 1 when none did.`;

const FLAGS = {
  study: { type: 'string' },
  model: { type: 'string' },
  out: { type: 'string' },
  top: { type: 'string' },
  within: { type: 'string' },
} as const;

/** The study's top `k` complete trials, best first. */
export function topTrials(study: Study, k: number): { number: number; value: number }[] {
  const sign = study.direction === 'minimize' ? 1 : -1;
  return study.trials
    .filter((t) => t.state === 'complete' && t.value !== undefined)
    .map((t) => ({ number: t.number, value: t.value! }))
    .sort((a, b) => sign * (a.value - b.value) || a.number - b.number)
    .slice(0, k);
}

/** Same family and the same tokenizer file, or a UsageError naming --model and what differs. */
async function checkSameFamily(small: OpenedModel, smallDir: string, large: OpenedModel, largeDir: string) {
  if (small.spec.family !== large.spec.family)
    throw new UsageError(
      `--model: '${largeDir}' is a ${large.spec.family} model; the study ran on a ${small.spec.family} model`,
    );
  const read = (dir: string) => readFile(join(dir, 'tokenizer.json'), 'utf8').catch(() => null);
  const [a, b] = await Promise.all([read(smallDir), read(largeDir)]);
  if (a === null || b === null || a !== b)
    throw new UsageError(
      `--model: '${largeDir}' does not have the study model's tokenizer (tokenizer.json differs or is missing): the same data would not be the same tokens`,
    );
}

interface TransferSetup {
  study: Study;
  plan: StudyPlan;
  studyDir: string;
  smallDir: string;
  largeDir: string;
  large: OpenedModel;
  smallParams: number;
  train: Example[];
  validation: Example[];
  classes: readonly string[] | undefined;
}

/** Everything read and checked before a GPU is touched or a file written. */
async function prepare(flags: FlagValues): Promise<TransferSetup> {
  const studyDir = stringFlag(flags, 'study', true);
  const largeDir = stringFlag(flags, 'model', true);
  await checkOutDir(stringFlag(flags, 'out', true));
  const tunePath = join(studyDir, 'tune.json');
  const saved = savedFlags(
    await readFile(tunePath, 'utf8').catch(() => {
      throw new UsageError(`--study: no tune.json in '${studyDir}' (is it the --out of a tunelab tune run?)`);
    }),
    tunePath,
  );
  const { study, torn } = await readJournal(join(studyDir, 'study.jsonl')).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new UsageError(`--study: no study.jsonl in '${studyDir}'`);
    throw error;
  });
  // The result is appended to the log: after a line cut short by a crash it would be lost with that line.
  if (torn)
    throw new UsageError(
      `--study: study.jsonl in '${studyDir}' ends with a cut-off line; run tunelab tune --resume ${studyDir} first`,
    );
  const spec = planOfStudy(study);
  if (!spec) throw new UsageError(`--study: the log in '${studyDir}' holds no study plan to re-run`);
  const smallDir = stringFlag(saved, 'model', true);
  const [small, large] = await Promise.all([openModelDir(smallDir), openModelDir(largeDir)]);
  await checkSameFamily(small, smallDir, large, largeDir);
  const plan = StudyPlan.create(spec, { family: large.spec.family });
  const { seq, seed } = plan.spec.fixed;
  const dataFile = stringFlag(saved, 'data', true);
  const valFile = stringFlag(saved, 'val');
  if (seq! > large.spec.maxPositions)
    throw new UsageError(
      `--model: the study's seq ${seq} exceeds the model's ${large.spec.maxPositions} positions`,
    );
  const { columns } = plan.spec;
  const data = await readDataset(dataFile, large, { seq: seq!, columns });
  let train: Example[] = data.examples;
  let validation: Example[] = [];
  if (valFile)
    validation = (await readDataset(valFile, large, { seq: seq!, classes: data.classes, columns })).examples;
  else ({ train, validation } = splitExamples(data.examples, plan.spec.valRatio!, seed!, basename(dataFile)));
  return {
    study,
    plan,
    studyDir,
    smallDir,
    largeDir,
    large,
    smallParams: parameterCount(small.spec),
    train,
    validation,
    classes: data.classes,
  };
}

/** Each configuration trained on the large model to the end of its budget; NaN where a run failed. */
async function runOnLarge(
  setup: TransferSetup,
  top: { number: number; value: number }[],
): Promise<TransferPoint[]> {
  const { plan, large, study } = setup;
  const slots = new InProcessSlots({ gpu: nodeGpu, openDir: nodeDirectoryFiles }, 1, {
    model: { kind: 'dir', path: setup.largeDir },
    precision: plan.spec.fixed.precision ?? 'auto',
    train: setup.train,
    validation: setup.validation,
    padId: padIdOf(dataTokenizer(large.tokenizer)),
  });
  const info = await slots.start();
  process.stderr.write(`${setup.largeDir} on ${info[0].adapter} (${info[0].precision})\n`);
  const points: TransferPoint[] = [];
  try {
    for (const [i, t] of top.entries()) {
      const job: TrialJob = {
        number: t.number,
        options: plan.trainerOptions(study.trial(t.number).params, setup.classes),
        keepCheckpoint: false,
        exportAdapter: false,
        baseModel: setup.largeDir,
      };
      let large = NaN;
      try {
        const outcome = await slots.run(0, job, { onStep: () => {}, onEval: () => ({ action: 'continue' }) });
        if (outcome.lastEval) large = objectiveValue(plan.spec.objective, outcome.lastEval);
      } catch (error) {
        process.stderr.write(`trial ${t.number} failed on ${setup.largeDir}: ${(error as Error).message}\n`);
        await slots.restart(0);
      }
      process.stderr.write(`[${i + 1}/${top.length}] trial ${t.number}: ${t.value} → ${large}\n`);
      points.push({ number: t.number, small: t.value, large });
    }
  } finally {
    await slots.close();
  }
  return points;
}

export async function transferCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, FLAGS);
  const k = numberFlag(flags, 'top', 5, { min: 1, integer: true })!;
  const within = numberFlag(flags, 'within', 5, { min: 0 })!;
  const out = stringFlag(flags, 'out', true);
  const setup = await prepare(flags);
  const top = topTrials(setup.study, k);
  if (top.length === 0) throw new UsageError(`--study: '${setup.studyDir}' has no complete trial to re-run`);
  const points = await runOnLarge(setup, top);
  if (points.every((p) => !Number.isFinite(p.large))) {
    process.stderr.write(`tunelab transfer: no configuration ran on ${setup.largeDir}\n`);
    return 1;
  }
  const objective = setup.plan.spec.objective;
  const result = agreement(points, OBJECTIVES[objective].direction, within);
  const largeParams = parameterCount(setup.large.spec);
  const event = transferEvent(setup.largeDir, largeParams, points, result);
  setup.study.applyEvent(event); // checks every number is a complete trial of the study
  const svg = transferPlotSvg(points, result, {
    objective: OBJECTIVES[objective].label,
    small: basename(setup.smallDir),
    large: basename(setup.largeDir),
  });
  await mkdir(out, { recursive: true });
  await writeFilesAtomic([
    {
      path: join(out, 'transfer.json'),
      contents: `${JSON.stringify({ ...event, smallParams: setup.smallParams }, null, 2)}\n`,
    },
    { path: join(out, 'transfer.svg'), contents: svg },
  ]);
  await appendFile(join(setup.studyDir, 'study.jsonl'), `${JSON.stringify(event)}\n`);
  const tau = event.tau === null ? 'undefined' : event.tau.toFixed(3);
  const verdict =
    result.smallBest === result.largeBest
      ? `the small model's best (trial ${result.smallBest}) is the large model's best`
      : `the small model's best (trial ${result.smallBest}) is ${result.gapPercent.toFixed(1)} % from the large model's best (trial ${result.largeBest}): ${result.within ? 'within' : 'not within'} ${within} %`;
  process.stdout.write(
    `${points.length} configurations on ${setup.largeDir}: Kendall τ-b ${tau}; ${verdict}` +
      `${result.failed.length > 0 ? `; failed on the large model: ${result.failed.join(', ')}` : ''}\n` +
      `wrote ${join(out, 'transfer.json')}, ${join(out, 'transfer.svg')}; appended to ${join(setup.studyDir, 'study.jsonl')}\n`,
  );
  return 0;
}
