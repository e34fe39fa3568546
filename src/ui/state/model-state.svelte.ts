// The Model step: where the base model comes from (the built-in demo, the Hub, local files), its summary
// and memory estimate, download progress, and the models cached in the browser.
import {
  cacheStorageModelCache,
  hubModel,
  localFiles,
  openModel,
  type HubProgress,
  type ModelFiles,
  type OpenedModel,
} from '../../engine/model/index.ts';
import { blobSource, sourcesFiles } from '../../engine/checkpoint/byte-source.ts';
import { parameterCount } from '../../engine/model/memory.ts';
import type { ModelRef } from '../lib/db.ts';
import { describeError } from '../lib/errors.ts';
import {
  assetUrl,
  deleteCachedModel,
  listCachedModels,
  MODEL_CACHE,
  type CachedModel,
} from '../lib/model-cache.ts';

export const HUB_SUGGESTIONS = [
  'HuggingFaceTB/SmolLM2-135M-Instruct',
  'HuggingFaceTB/SmolLM2-360M-Instruct',
  'Qwen/Qwen2.5-0.5B-Instruct',
  'TinyLlama/TinyLlama-1.1B-Chat-v1.0',
  'openai-community/gpt2',
];

export const DEMO_LABEL = 'Demo model (tiny Llama trained on the samples, offline)';
export const DEMO_FILES = [
  'config.json',
  'generation_config.json',
  'tokenizer.json',
  'tokenizer_config.json',
  'model.safetensors',
];

export type ModelSource = 'demo' | 'hub' | 'local';

export class ModelState {
  source = $state<ModelSource>('demo');
  repo = $state(HUB_SUGGESTIONS[0]);
  revision = $state('main');
  /** Kept in memory only: never stored, never sent anywhere but the Hub. */
  token = $state('');
  phase = $state<'idle' | 'loading' | 'ready' | 'error'>('idle');
  error = $state('');
  progress = $state.raw<HubProgress | null>(null);
  opened = $state.raw<OpenedModel | null>(null);
  ref = $state.raw<ModelRef | null>(null);
  cached = $state.raw<CachedModel[]>([]);
  /** Counts successful loads: tells a Worker holding a model whether the page's model changed. */
  loads = $state(0);
  online = $state(typeof navigator === 'undefined' ? true : navigator.onLine);
  /** Called after each successful load (the page tunes its kernels for the new model's shapes). */
  onready: ((opened: OpenedModel) => void) | null = null;
  #blobs: Record<string, Blob> = {};

  summary = $derived.by(() => {
    const o = this.opened;
    if (!o) return null;
    const s = o.spec;
    return {
      architecture: s.architecture,
      parameters: parameterCount(s),
      dtype: s.torchDtype ?? o.checkpoint.tensors.values().next().value?.dtype ?? 'unknown',
      layers: s.layers,
      hidden: s.hidden,
      heads: `${s.heads} × ${s.headDim} (${s.kvHeads} key/value)`,
      vocab: s.vocab,
      maxPositions: s.maxPositions,
    };
  });

  /** The files as Blobs, for the trial workers (cheap to post: Blobs are not copied). */
  get blobs(): Record<string, Blob> {
    return this.#blobs;
  }

  async loadDemo(): Promise<void> {
    await this.#load(async () => {
      const blobs: Record<string, Blob> = {};
      for (const name of DEMO_FILES) {
        const res = await fetch(assetUrl(`demo-model/${name}`));
        if (!res.ok) throw new Error(`demo model: ${name} could not be fetched (HTTP ${res.status})`);
        blobs[name] = await res.blob();
      }
      return { blobs, ref: { kind: 'demo', label: DEMO_LABEL } };
    });
  }

  async loadHub(): Promise<void> {
    const repo = this.repo.trim();
    const revision = this.revision.trim() || 'main';
    await this.#load(async () => {
      const cache = cacheStorageModelCache(MODEL_CACHE);
      const files = await hubModel({
        repo,
        revision,
        cache,
        ...(this.token.trim() ? { accessToken: this.token.trim() } : {}),
        onProgress: (p) => (this.progress = p),
      });
      return {
        blobs: await toBlobs(files),
        ref: { kind: 'hub', label: `${repo}@${revision}`, repo, revision },
      };
    });
    await this.refreshCache();
  }

  async loadLocal(files: File[]): Promise<void> {
    await this.#load(async () => {
      const top = files[0]?.webkitRelativePath.split('/')[0];
      const label = top || `${files.length} local files`;
      const model = localFiles(files, label);
      return { blobs: await toBlobs(model), ref: { kind: 'local', label } };
    });
  }

  /** Re-opens the model a stored study used; local files cannot be re-read without the user picking them. */
  async loadRef(ref: ModelRef): Promise<void> {
    if (ref.kind === 'demo') return this.loadDemo();
    if (ref.kind === 'hub') {
      this.source = 'hub';
      this.repo = ref.repo;
      this.revision = ref.revision;
      return this.loadHub();
    }
    this.source = 'local';
    this.phase = 'error';
    this.error = `This study used local files (${ref.label}). Pick them again in the Model step to continue.`;
  }

  async #load(get: () => Promise<{ blobs: Record<string, Blob>; ref: ModelRef }>): Promise<void> {
    this.phase = 'loading';
    this.error = '';
    this.progress = null;
    try {
      const { blobs, ref } = await get();
      const files = sourcesFiles(
        ref.label,
        Object.entries(blobs).map(([n, b]) => blobSource(n, b)),
      );
      this.opened = await openModel(files);
      this.#blobs = blobs;
      this.ref = ref;
      this.loads++;
      this.phase = 'ready';
      this.onready?.(this.opened);
    } catch (e) {
      // A model opened before stays loaded and usable; the error says what failed and which model that is.
      this.phase = this.opened && this.ref ? 'ready' : 'error';
      this.error = describeError(e);
    }
  }

  async refreshCache(): Promise<void> {
    try {
      this.cached = await listCachedModels();
    } catch {
      this.cached = [];
    }
  }

  async deleteCached(key: string): Promise<void> {
    await deleteCachedModel(key);
    await this.refreshCache();
  }
}

async function toBlobs(files: ModelFiles): Promise<Record<string, Blob>> {
  const out: Record<string, Blob> = {};
  for (const name of files.names()) {
    const source = await files.open(name);
    out[name] = new Blob([(await source.read(0, source.size)) as Uint8Array<ArrayBuffer>]);
  }
  return out;
}
