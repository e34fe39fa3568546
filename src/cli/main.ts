// `tunelab <command>`: the same engine as the web app, headless in Node through Dawn.
import { DatasetError } from '../engine/train/data.ts';
import { GpuError } from '../engine/gpu/index.ts';
import { ownValue } from '../engine/json.ts';
import { UsageError } from './args.ts';
import { StudyLogError } from './study-journal.ts';
import { EVAL_USAGE, evalCommand } from './eval.ts';
import { GENERATE_USAGE, generateCommand } from './generate.ts';
import { MODELS_USAGE, modelsCommand } from './models.ts';
import { TRAIN_USAGE, trainCommand, type TrainHooks } from './train.ts';
import { TUNE_USAGE, tuneCommand, type TuneHooks } from './tune.ts';

/** What tests reach into a command through: `tune`'s workers and stop signal, `train`'s steps and stop. */
export type CliHooks = TuneHooks & TrainHooks;

type Command = { run: (argv: string[], hooks: CliHooks) => Promise<number>; usage: string; summary: string };

export const COMMANDS: Record<string, Command> = {
  train: { run: trainCommand, usage: TRAIN_USAGE, summary: 'fine-tune a LoRA adapter' },
  eval: { run: evalCommand, usage: EVAL_USAGE, summary: 'loss and perplexity of a model on a file' },
  generate: {
    run: generateCommand,
    usage: GENERATE_USAGE,
    summary: 'continue a prompt (KV cache), optionally with an adapter',
  },
  tune: {
    run: (argv, hooks) => tuneCommand(argv, hooks),
    usage: TUNE_USAGE,
    summary: 'search hyperparameters on a pool of workers',
  },
  models: {
    run: modelsCommand,
    usage: MODELS_USAGE,
    summary: 'the supported Hub models by size, and what fits your GPU',
  },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`);
  return `usage: tunelab <command> [options]   (tunelab <command> --help for its options)\n\n${lines.join('\n')}\n`;
}

/** Runs `tunelab <argv>`; returns the exit code. `hooks` reach `tune` and `train` (tests watch and stop them). */
export async function main(argv: string[], hooks: CliHooks = {}): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h') {
    // Asked for: on stdout, exit 0. No command at all is a usage error: stderr, exit 2.
    (name ? process.stdout : process.stderr).write(usage());
    return name ? 0 : 2;
  }
  // An own-property lookup: 'constructor' or '__proto__' are not commands.
  const command = ownValue(COMMANDS, name);
  if (!command) {
    process.stderr.write(`tunelab: unknown command '${name}'\n\n${usage()}`);
    return 2;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(rest, hooks);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`tunelab ${name}: ${error.message}\n\n${command.usage}\n`);
      return 2;
    }
    const known =
      error instanceof DatasetError ||
      error instanceof GpuError ||
      error instanceof StudyLogError ||
      error instanceof RangeError;
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`tunelab ${name}: ${message}\n`);
    if (!known && error instanceof Error && process.env.TUNELAB_DEBUG)
      process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}
