// Pushes a trained adapter (adapter_config.json, adapter_model.safetensors) and a README.md model card to a
// Hugging Face Hub model repo in one commit, through @huggingface/hub: createRepo (a 409 means it exists),
// then commit(): a preupload check, a git-lfs batch and `basic` PUT for the weights, and the NDJSON commit.
// useXet is off so the protocol is the one the tests speak (test/fixtures/fake-hub.ts); the Hub takes it.
//
// The token is a parameter only: it goes into the Authorization header and nowhere else. It is never stored,
// never written into the card, and every error message is scrubbed of it before it is thrown.

import { commit, createRepo, HubApiError } from '@huggingface/hub';
import { toYaml, type YamlValue } from './yaml.ts';

export type HubPushStep = 'create the repo' | 'upload the files';

export type HubPushProblem =
  | 'invalid-repo' // the name is not `owner/name` as the Hub allows it (checked before any request)
  | 'invalid-token' // empty, or not an `hf_…` access token (checked before any request)
  | 'invalid-adapter' // a file missing or empty (checked before any request)
  | 'bad-token' // 401: the Hub does not know the token
  | 'forbidden' // 403: the token may not write there
  | 'network' // the Hub could not be reached
  | 'hub'; // any other answer from the Hub

/** A push that did not happen, or did not finish: nothing is on the Hub from it (a commit is all or nothing). */
export class HubPushError extends Error {
  constructor(
    readonly problem: HubPushProblem,
    message: string,
    /** The request that failed, when one did. */
    readonly step?: HubPushStep,
    /** The Hub's HTTP status, when it answered. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'HubPushError';
  }
}

/** The files a push sends besides the card; both as the trainer and the export write them. */
export const ADAPTER_FILES = ['adapter_config.json', 'adapter_model.safetensors'] as const;
export type AdapterFileName = (typeof ADAPTER_FILES)[number];

export interface ModelCardInput {
  /** The base model: a Hub id goes into the front matter as `base_model`; a local path only into the text. */
  baseModel: string;
  /** The dataset as the user named it (a file name or a Hub id); omitted from the card when unknown. */
  dataset?: string;
  /** The chosen trial's hyperparameters, flat (`lora.r`, `lr`, …), in the order to show them. */
  hyperparameters: Record<string, string | number | boolean>;
  /** What the adapter reached (e.g. eval_loss at its last evaluation). */
  metrics: { name: string; value: number; step?: number }[];
  tunelabVersion: string;
}

export interface HubPushInput {
  /** `owner/name`. */
  repo: string;
  token: string;
  files: Record<AdapterFileName, Uint8Array>;
  card: ModelCardInput;
  /** Visibility when the repo is created (an existing repo keeps its own). */
  private?: boolean;
  /** Default: the Hub. Tests pass the fake Hub's address. */
  hubUrl?: string;
  /** The commit title (default: "Upload LoRA adapter with tunelab"). */
  title?: string;
}

export interface HubPushResult {
  repo: string;
  /** Whether this push created the repo. */
  created: boolean;
  commitOid: string;
  commitUrl: string;
  /** Every file committed, README.md included. */
  files: string[];
}

// The Hub's rule for a namespace or repo name: letters, digits, '-', '_', '.'; no leading or trailing '-' or
// '.', no '--' or '..'; at most 96 characters.
const NAME_PART = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/** Why `repo` is not a Hub repo id (`owner/name`), or null when it is one. */
export function repoNameProblem(repo: string): string | null {
  const parts = repo.split('/');
  if (parts.length !== 2) return `expected 'owner/name', got '${repo}'`;
  for (const [what, part] of [
    ['owner', parts[0]],
    ['name', parts[1]],
  ] as const) {
    if (part.length === 0) return `the ${what} in '${repo}' is empty (expected 'owner/name')`;
    if (part.length > 96) return `the ${what} in '${repo}' is longer than 96 characters`;
    if (!NAME_PART.test(part) || part.includes('--') || part.includes('..')) {
      return (
        `the ${what} '${part}' in '${repo}' may hold only letters, digits, '-', '_' and '.', ` +
        `not start or end with '-' or '.', and not contain '--' or '..'`
      );
    }
  }
  return null;
}

const scalarText = (v: string | number | boolean) => (typeof v === 'number' ? formatNumber(v) : String(v));
const formatNumber = (x: number) => (Number.isInteger(x) ? String(x) : String(Number(x.toPrecision(6))));
// A Markdown table cell: the pipe and line breaks would end it.
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
const code = (s: string) => `\`${s.replace(/`/g, "'")}\``;

/** The README.md model card: YAML front matter as the Hub reads it, then what the adapter is and how it was made. */
export function modelCard(input: ModelCardInput): string {
  const hubBase = repoNameProblem(input.baseModel) === null;
  const meta: Record<string, YamlValue> = {
    library_name: 'peft',
    // The Hub refuses a commit whose base_model is not a model id, so a local path stays out of the metadata.
    ...(hubBase ? { base_model: input.baseModel } : {}),
    tags: ['peft', 'lora', 'tunelab', ...(hubBase ? [`base_model:adapter:${input.baseModel}`] : [])],
    pipeline_tag: 'text-generation',
  };
  const hyper = Object.entries(input.hyperparameters).map(
    ([k, v]) => `| ${cell(k)} | ${cell(scalarText(v))} |`,
  );
  const results = input.metrics.map(
    (m) => `| ${cell(m.name)} | ${formatNumber(m.value)} | ${m.step === undefined ? '' : m.step} |`,
  );
  const base = hubBase ? code(input.baseModel) : `${code(input.baseModel)} (a local model folder)`;
  const load = hubBase ? JSON.stringify(input.baseModel) : '"PATH/TO/BASE_MODEL"';
  return [
    '---',
    toYaml(meta).trimEnd(),
    '---',
    '',
    '# LoRA adapter',
    '',
    `A [PEFT](https://github.com/huggingface/peft) LoRA adapter for ${base}, fine-tuned with tunelab ${input.tunelabVersion}` +
      (input.dataset ? ` on ${code(input.dataset)}.` : '.'),
    '',
    '## Use it',
    '',
    '```python',
    'from peft import PeftModel',
    'from transformers import AutoModelForCausalLM',
    '',
    `base = AutoModelForCausalLM.from_pretrained(${load})`,
    'model = PeftModel.from_pretrained(base, "THIS_REPO")',
    '```',
    '',
    '## Training hyperparameters',
    '',
    '| hyperparameter | value |',
    '| --- | --- |',
    ...hyper,
    '',
    '## Results',
    '',
    ...(results.length > 0
      ? ['| metric | value | step |', '| --- | --- | --- |', ...results]
      : ['No evaluation was recorded.']),
    '',
  ].join('\n');
}

function checkInput(input: HubPushInput): void {
  const nameProblem = repoNameProblem(input.repo);
  if (nameProblem) throw new HubPushError('invalid-repo', `Hub repo: ${nameProblem}`);
  // What @huggingface/hub itself requires; said here so the message is ours and names no token.
  if (!input.token.startsWith('hf_') || input.token.length < 4 || /\s/.test(input.token)) {
    throw new HubPushError(
      'invalid-token',
      "Hub token: expected an access token starting with 'hf_' (create one with write access in your Hub settings)",
    );
  }
  for (const name of ADAPTER_FILES) {
    const bytes = input.files[name] as Uint8Array | undefined;
    if (!bytes || bytes.byteLength === 0) {
      throw new HubPushError('invalid-adapter', `${name}: missing or empty; nothing was pushed`);
    }
  }
}

/**
 * fetch() rejecting: a TypeError with a cause in Node (ECONNREFUSED, ENOTFOUND, a reset), or the browser's own
 * words (Chrome 'Failed to fetch', Firefox 'NetworkError when attempting…', Safari 'Load failed'). Other
 * TypeErrors are bugs, not the network.
 */
function isNetworkFailure(error: unknown): error is TypeError {
  return (
    error instanceof TypeError &&
    ((error as { cause?: unknown }).cause !== undefined ||
      /fetch|networkerror|load failed/i.test(error.message))
  );
}

/** The error a failed request becomes: which step, what the Hub said, and never the token. */
function pushError(
  error: unknown,
  step: HubPushStep,
  input: HubPushInput,
  hubUrl: string,
  created = false,
): HubPushError {
  // A commit is all or nothing, so no file of this push is on the Hub; only a repo it created may be.
  const nothing = created ? 'the repo was created but holds nothing from this push' : 'nothing was pushed';
  const scrub = (s: string) => s.split(input.token).join('[token]');
  if (error instanceof HubApiError) {
    const said = scrub(error.message.replace(/\. URL: .*$/s, ''));
    if (error.statusCode === 401) {
      return new HubPushError(
        'bad-token',
        `could not ${step} for ${input.repo}: the Hub refused the token (401: ${said}); ${nothing}`,
        step,
        401,
      );
    }
    if (error.statusCode === 403) {
      return new HubPushError(
        'forbidden',
        `could not ${step} for ${input.repo}: the token has no write access there (403: ${said}); ${nothing}`,
        step,
        403,
      );
    }
    return new HubPushError(
      'hub',
      `could not ${step} for ${input.repo}: the Hub answered ${error.statusCode} (${said}); ${nothing}`,
      step,
      error.statusCode,
    );
  }
  if (isNetworkFailure(error)) {
    const cause = (error as { cause?: { code?: string; message?: string } }).cause;
    const why = cause?.code ?? cause?.message ?? error.message;
    return new HubPushError(
      'network',
      `could not ${step} for ${input.repo}: the Hub at ${hubUrl} could not be reached (${scrub(why)}); ${nothing}`,
      step,
    );
  }
  const message = error instanceof Error ? error.message : String(error);
  return new HubPushError('hub', `could not ${step} for ${input.repo}: ${scrub(message)}; ${nothing}`, step);
}

/**
 * Creates the repo if it is missing and commits the adapter files with the model card. Resolves only once the
 * Hub has the commit; any failure rejects with a HubPushError and leaves the repo as it was.
 */
export async function pushAdapter(input: HubPushInput): Promise<HubPushResult> {
  checkInput(input);
  const hubUrl = input.hubUrl ?? 'https://huggingface.co';
  const credentials = { accessToken: input.token };
  const repo = { type: 'model' as const, name: input.repo };

  let created = true;
  try {
    await createRepo({
      repo,
      ...credentials,
      hubUrl,
      ...(input.private !== undefined ? { private: input.private } : {}),
    });
  } catch (error) {
    // 409: it exists already, which is fine; the commit below still needs write access to it.
    if (error instanceof HubApiError && error.statusCode === 409) created = false;
    else throw pushError(error, 'create the repo', input, hubUrl);
  }

  const readme = new TextEncoder().encode(modelCard(input.card));
  const contents: [string, Uint8Array][] = [
    ...ADAPTER_FILES.map((name) => [name, input.files[name]] as [string, Uint8Array]),
    ['README.md', readme],
  ];
  let result;
  try {
    result = await commit({
      repo,
      ...credentials,
      hubUrl,
      title: input.title ?? 'Upload LoRA adapter with tunelab',
      useXet: false,
      operations: contents.map(([path, bytes]) => ({
        operation: 'addOrUpdate' as const,
        path,
        content: new Blob([bytes as Uint8Array<ArrayBuffer>]),
      })),
    });
  } catch (error) {
    throw pushError(error, 'upload the files', input, hubUrl, created);
  }
  if (!result?.commit.oid) {
    throw new HubPushError(
      'hub',
      `could not upload the files for ${input.repo}: the Hub did not confirm a commit`,
      'upload the files',
    );
  }
  return {
    repo: input.repo,
    created,
    commitOid: result.commit.oid,
    commitUrl: result.commit.url,
    files: contents.map(([path]) => path),
  };
}
