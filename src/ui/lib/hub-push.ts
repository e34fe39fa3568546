// The Export step's "Push to the Hub": the best trial's adapter and a model card made from the export files the
// page already built (best-config.json names the model, the dataset, the hyperparameters and the metrics), pushed
// with the engine's pushAdapter(). The token is an argument here and lives only in the form's component state.
import { EXPORT_PATHS, type ExportFile } from '../../engine/export/bundle.ts';
import {
  HubPushError,
  pushAdapter,
  repoNameProblem,
  type AdapterFileName,
  type HubPushResult,
  type ModelCardInput,
} from '../../engine/export/hub-push.ts';
import { parseJson } from '../../engine/json.ts';

export interface HubPushRequest {
  files: Record<AdapterFileName, Uint8Array>;
  card: ModelCardInput;
}

export interface HubPushForm {
  repo: string;
  token: string;
  private: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const bytesOf = (file: ExportFile | undefined): Uint8Array | null =>
  !file ? null : typeof file.contents === 'string' ? new TextEncoder().encode(file.contents) : file.contents;

// best-config.json's metric names, as the card shows them.
const METRICS: [string, string][] = [
  ['val_loss', 'eval_loss'],
  ['perplexity', 'perplexity'],
  ['accuracy', 'accuracy'],
  ['macro_f1', 'macro_f1'],
];

/**
 * What a push would send, from the export files: null when there is no adapter among them (the best trial's
 * was not kept) or no best-config.json.
 */
export function hubPushRequest(exports: readonly ExportFile[]): HubPushRequest | null {
  const find = (path: string) => exports.find((f) => f.path === path);
  const config = bytesOf(find(EXPORT_PATHS.adapterConfig));
  const weights = bytesOf(find(EXPORT_PATHS.adapterWeights));
  const best = find(EXPORT_PATHS.bestConfig);
  if (!config || !weights || !best) return null;
  const adapterConfig = parseJson(config, 'adapter_config.json');
  const bestConfig = parseJson(bytesOf(best)!, 'best-config.json');
  if (!isRecord(adapterConfig) || !isRecord(bestConfig)) return null;

  const hyperparameters: ModelCardInput['hyperparameters'] = {};
  const hyper = isRecord(bestConfig.hyperparameters) ? bestConfig.hyperparameters : {};
  for (const [key, v] of Object.entries(hyper)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') hyperparameters[key] = v;
    else if (Array.isArray(v)) hyperparameters[key] = v.map(String).join(', ');
  }
  const m = isRecord(bestConfig.metrics) ? bestConfig.metrics : {};
  const metrics = METRICS.flatMap(([key, name]) =>
    typeof m[key] === 'number' ? [{ name, value: m[key] }] : [],
  );
  // With no validation metric, the objective the study optimised.
  if (metrics.length === 0 && typeof m.value === 'number' && typeof m.objective === 'string') {
    metrics.push({ name: m.objective, value: m.value });
  }
  const model = isRecord(bestConfig.model) ? bestConfig.model : {};
  const dataset = isRecord(bestConfig.dataset) ? bestConfig.dataset.name : undefined;
  // The base PEFT will load: the adapter's own base_model_name_or_path, else the study's model.
  const base = adapterConfig.base_model_name_or_path ?? model.id;
  return {
    files: { 'adapter_config.json': config, 'adapter_model.safetensors': weights },
    card: {
      baseModel: typeof base === 'string' ? base : 'unknown',
      ...(typeof dataset === 'string' && dataset ? { dataset } : {}),
      hyperparameters,
      metrics,
      tunelabVersion: typeof bestConfig.tunelab_version === 'string' ? bestConfig.tunelab_version : 'unknown',
    },
  };
}

/** What is wrong with the form before anything is sent, by field; empty when it can be pushed. */
export function hubPushFormProblems(form: HubPushForm): { repo?: string; token?: string } {
  const problems: { repo?: string; token?: string } = {};
  const repo = form.repo.trim();
  if (repo === '') problems.repo = 'Enter the repo as owner/name.';
  else {
    const why = repoNameProblem(repo);
    if (why) problems.repo = `${why[0].toUpperCase()}${why.slice(1)}.`;
  }
  if (form.token === '') problems.token = 'Enter an access token with write access.';
  else if (!form.token.startsWith('hf_')) problems.token = "An access token starts with 'hf_'.";
  return problems;
}

/** Pushes; resolves with the commit, or rejects with a HubPushError whose message the page shows as it is. */
export function pushToHub(
  request: HubPushRequest,
  form: HubPushForm,
  hubUrl?: string,
): Promise<HubPushResult> {
  return pushAdapter({
    repo: form.repo.trim(),
    token: form.token,
    files: request.files,
    card: request.card,
    private: form.private,
    ...(hubUrl ? { hubUrl } : {}),
  });
}

/** The message an error shows on the page: a HubPushError's is specific and token-free; any other is scrubbed. */
export function hubPushErrorText(error: unknown, token: string): string {
  // A sentence on the page (the engine's message starts lower-case, as CLI messages do).
  if (error instanceof HubPushError) return `${error.message[0].toUpperCase()}${error.message.slice(1)}.`;
  const message = error instanceof Error ? error.message : String(error);
  return `The push failed: ${token ? message.split(token).join('[token]') : message}`;
}
