// `tunelab push`: a trained adapter folder (as `tunelab train` writes it) to a Hub model repo, with a README.md
// model card made from its training_args.json and metrics.jsonl. The token comes from an environment variable
// only (a flag's value would land in shell history), is passed to the push and kept nowhere else.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { version as tunelabVersion } from '../../package.json';
import { bytesSource } from '../engine/checkpoint/byte-source.ts';
import { openSafetensors } from '../engine/checkpoint/safetensors.ts';
import {
  ADAPTER_FILES,
  pushAdapter,
  repoNameProblem,
  type AdapterFileName,
  type ModelCardInput,
} from '../engine/export/hub-push.ts';
import { decodeUtf8, FileFormatError, parseJson } from '../engine/json.ts';
import { parseFlags, stringFlag, UsageError } from './args.ts';

export const PUSH_USAGE = `tunelab push --adapter DIR --repo OWNER/NAME [--private] [--token-env HF_TOKEN]
             [--dataset NAME] [--base-model ID]

  Uploads DIR's adapter_config.json and adapter_model.safetensors (e.g. from tunelab train) with a README.md
  model card to the Hub model repo OWNER/NAME in one commit, creating the repo if it is missing (--private:
  a private one; an existing repo keeps its visibility). The card names the base model (adapter_config.json's
  base_model_name_or_path, or --base-model), the dataset (--dataset, as you name it), the hyperparameters in
  DIR/training_args.json and the last evaluation in DIR/metrics.jsonl, and the tunelab version.
  The access token (with write access) is read from the environment variable --token-env names (default
  HF_TOKEN), never from a flag. HF_ENDPOINT, when set, is the Hub's address (as huggingface_hub reads it).`;

/** One file of the --adapter folder; a missing one is a usage error naming it. */
async function adapterFile(dir: string, name: string): Promise<Uint8Array | null> {
  const path = join(dir, name);
  try {
    return new Uint8Array(await readFile(path));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new UsageError(`--adapter: cannot read ${path}: ${(error as Error).message}`);
  }
}

/** Rethrows a file's format error as a usage error naming the flag. */
function asUsage<T>(read: () => T): T {
  try {
    return read();
  } catch (e) {
    throw e instanceof FileFormatError ? new UsageError(`--adapter: ${e.message}`) : e;
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** training_args.json as one level of `key: value` rows: nested objects as `lora.r`, lists joined. */
function flatten(value: Record<string, unknown>, prefix = ''): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [key, v] of Object.entries(value)) {
    const name = prefix + key;
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[name] = v;
    else if (Array.isArray(v)) out[name] = v.map(String).join(', ');
    else if (isRecord(v)) Object.assign(out, flatten(v, `${name}.`));
  }
  return out;
}

/** The last evaluation in metrics.jsonl (loss, perplexity, accuracy), else the last step's training loss. */
function lastMetrics(text: string, file: string): ModelCardInput['metrics'] {
  let lastEval: Record<string, unknown> | undefined;
  let lastStep: Record<string, unknown> | undefined;
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') return;
    const row = asUsage(() => parseJson(line, `${file}:${i + 1}`));
    if (!isRecord(row)) throw new UsageError(`--adapter: ${file}:${i + 1}: expected a JSON object`);
    if (row.type === 'eval') lastEval = row;
    else if (row.type === 'step') lastStep = row;
  });
  const num = (row: Record<string, unknown>, key: string) =>
    typeof row[key] === 'number' && Number.isFinite(row[key]) ? row[key] : undefined;
  const at = (row: Record<string, unknown>) => (typeof row.step === 'number' ? { step: row.step } : {});
  if (lastEval) {
    const evalRow = lastEval;
    const names: [string, string][] = [
      ['valLoss', 'eval_loss'],
      ['perplexity', 'perplexity'],
      ['accuracy', 'accuracy'],
      ['macroF1', 'macro_f1'],
    ];
    return names.flatMap(([key, name]) => {
      const value = num(evalRow, key);
      return value === undefined ? [] : [{ name, value, ...at(evalRow) }];
    });
  }
  const loss = lastStep && num(lastStep, 'loss');
  return lastStep && loss !== undefined
    ? [{ name: 'train_loss (last step)', value: loss, ...at(lastStep) }]
    : [];
}

/** The adapter folder's files and card, every problem a usage error before any request. */
async function readAdapterDir(
  dir: string,
  dataset: string | undefined,
  baseFlag: string | undefined,
): Promise<{ files: Record<AdapterFileName, Uint8Array>; card: ModelCardInput }> {
  const info = await stat(dir).catch(() => null);
  if (!info?.isDirectory()) {
    throw new UsageError(`--adapter: '${dir}' is not a directory (expected a PEFT adapter folder)`);
  }
  const files = {} as Record<AdapterFileName, Uint8Array>;
  for (const name of ADAPTER_FILES) {
    const bytes = await adapterFile(dir, name);
    if (!bytes)
      throw new UsageError(`--adapter: ${join(dir, name)}: no such file (expected a PEFT adapter folder)`);
    files[name] = bytes;
  }
  const configPath = join(dir, 'adapter_config.json');
  const config = asUsage(() => parseJson(files['adapter_config.json'], configPath));
  if (!isRecord(config) || config.peft_type !== 'LORA') {
    throw new UsageError(`--adapter: ${configPath}: expected a PEFT LoRA config ("peft_type": "LORA")`);
  }
  const weightsPath = join(dir, 'adapter_model.safetensors');
  const weights = await openSafetensors(bytesSource(weightsPath, files['adapter_model.safetensors'])).catch(
    (e: unknown) => {
      throw e instanceof FileFormatError ? new UsageError(`--adapter: ${e.message}`) : e;
    },
  );
  if (weights.tensors.size === 0) throw new UsageError(`--adapter: ${weightsPath}: holds no tensors`);

  const baseModel =
    baseFlag ?? (typeof config.base_model_name_or_path === 'string' ? config.base_model_name_or_path : '');
  if (!baseModel) {
    throw new UsageError(
      `--adapter: ${configPath}: base_model_name_or_path is missing; name the base model with --base-model`,
    );
  }
  const argsBytes = await adapterFile(dir, 'training_args.json');
  const args = argsBytes && asUsage(() => parseJson(argsBytes, join(dir, 'training_args.json')));
  // Without training_args.json (an adapter from elsewhere), the LoRA settings adapter_config.json gives.
  const hyperparameters = isRecord(args)
    ? flatten(args)
    : flatten({
        r: config.r,
        lora_alpha: config.lora_alpha,
        lora_dropout: config.lora_dropout,
        target_modules: config.target_modules,
      });
  const metricsBytes = await adapterFile(dir, 'metrics.jsonl');
  const metricsPath = join(dir, 'metrics.jsonl');
  const metrics = metricsBytes
    ? lastMetrics(
        asUsage(() => decodeUtf8(metricsBytes, metricsPath)),
        metricsPath,
      )
    : [];
  return {
    files,
    card: { baseModel, ...(dataset ? { dataset } : {}), hyperparameters, metrics, tunelabVersion },
  };
}

export async function pushCommand(argv: string[]): Promise<number> {
  const flags = parseFlags(argv, {
    adapter: { type: 'string' },
    repo: { type: 'string' },
    private: { type: 'boolean' },
    'token-env': { type: 'string' },
    dataset: { type: 'string' },
    'base-model': { type: 'string' },
  });
  const dir = stringFlag(flags, 'adapter', true);
  const repo = stringFlag(flags, 'repo', true);
  const nameProblem = repoNameProblem(repo);
  if (nameProblem) throw new UsageError(`--repo: ${nameProblem}`);
  const tokenEnv = stringFlag(flags, 'token-env') ?? 'HF_TOKEN';
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(tokenEnv)) {
    throw new UsageError(`--token-env: expected the name of an environment variable, got '${tokenEnv}'`);
  }
  const token = process.env[tokenEnv];
  if (!token) {
    throw new UsageError(
      `--token-env: the environment variable ${tokenEnv} is not set (export a Hub access token with write access in it)`,
    );
  }
  const { files, card } = await readAdapterDir(
    dir,
    stringFlag(flags, 'dataset'),
    stringFlag(flags, 'base-model'),
  );

  const hubUrl = process.env.HF_ENDPOINT || undefined;
  process.stderr.write(`pushing ${dir} to ${repo}${hubUrl ? ` on ${hubUrl}` : ''}\n`);
  const result = await pushAdapter({
    repo,
    token,
    files,
    card,
    ...(flags.private === true ? { private: true } : {}),
    ...(hubUrl ? { hubUrl } : {}),
  });
  process.stdout.write(
    `${result.created ? 'created ' : ''}${repo}: committed ${result.files.join(', ')} ` +
      `(${result.commitOid.slice(0, 7)}) ${result.commitUrl}\n`,
  );
  return 0;
}
