// The Export step's "Push to the Hub" logic (src/ui/lib/hub-push.ts): the request built from the real export
// files of a study (exportBundle with a real PEFT adapter), the form's checks, and a push to the fake Hub.
import { downloadFile } from '@huggingface/hub';
import { afterEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { EXPORT_PATHS, exportBundle } from '../../src/engine/export/bundle.ts';
import { modelCard } from '../../src/engine/export/hub-push.ts';
import { resolveTargets, type LoraModelShape } from '../../src/engine/lora/config.ts';
import { initLoraParams, loraLayout } from '../../src/engine/lora/init.ts';
import { exportPeftAdapter } from '../../src/engine/lora/peft.ts';
import { loraConfigOf } from '../../src/engine/train/config.ts';
import {
  hubPushErrorText,
  hubPushFormProblems,
  hubPushRequest,
  pushToHub,
} from '../../src/ui/lib/hub-push.ts';
import type { FakeHub } from '../fixtures/fake-hub.ts';
import { startFakeHub } from '../fixtures/fake-hub.ts';
import { fabricatedContext } from './export/fixture.ts';

const TOKEN = 'hf_pageToken0042';
const SHAPE: LoraModelShape = {
  family: 'llama',
  hidden: 16,
  ffn: 32,
  heads: 2,
  kvHeads: 2,
  headDim: 8,
  layers: 2,
};

/** Every export of a fabricated study, with the best trial's real PEFT adapter. */
function exportsWithAdapter() {
  const ctx = fabricatedContext();
  const lora = loraConfigOf(ctx.config);
  const layout = loraLayout(resolveTargets(lora, SHAPE), lora.r);
  const adapter = exportPeftAdapter(lora, SHAPE, layout, initLoraParams(layout, 9), {
    baseModel: ctx.model.id,
  });
  return { ctx, adapter, files: exportBundle(ctx, adapter) };
}

let hubs: FakeHub[] = [];
afterEach(async () => {
  await Promise.all(hubs.map((h) => h.close()));
  hubs = [];
});

describe('hubPushRequest', () => {
  it('takes the adapter files and builds the card from best-config.json', () => {
    const { ctx, adapter, files } = exportsWithAdapter();
    const request = hubPushRequest(files)!;
    expect(new TextDecoder().decode(request.files['adapter_config.json'])).toBe(
      adapter['adapter_config.json'],
    );
    expect(request.files['adapter_model.safetensors']).toEqual(adapter['adapter_model.safetensors']);
    const { card } = request;
    expect(card.baseModel).toBe('HuggingFaceTB/SmolLM2-135M');
    expect(card.dataset).toBe('train.jsonl');
    expect(card.tunelabVersion).toBe('0.1.0');
    expect(card.metrics).toEqual([
      { name: 'eval_loss', value: ctx.study.bestTrial!.value },
      { name: 'perplexity', value: Math.exp(ctx.study.bestTrial!.value!) },
    ]);
    expect(card.hyperparameters).toMatchObject({ r: ctx.config.r, lr: ctx.config.lr, seq: 128, steps: 200 });
    const meta = parseYaml(/^---\n([\s\S]*?)\n---\n/.exec(modelCard(card))![1]) as Record<string, unknown>;
    expect(meta).toMatchObject({ library_name: 'peft', base_model: 'HuggingFaceTB/SmolLM2-135M' });
  });

  it('is null without the adapter (the best trial was not kept)', () => {
    const files = exportBundle(fabricatedContext());
    expect(files.some((f) => f.path === EXPORT_PATHS.adapterConfig)).toBe(false);
    expect(hubPushRequest(files)).toBeNull();
  });
});

describe('hubPushFormProblems', () => {
  it('names each field that is wrong, and nothing when the form is right', () => {
    expect(hubPushFormProblems({ repo: '', token: '', private: true })).toEqual({
      repo: 'Enter the repo as owner/name.',
      token: 'Enter an access token with write access.',
    });
    expect(hubPushFormProblems({ repo: 'no-owner', token: 'abc', private: true })).toEqual({
      repo: "Expected 'owner/name', got 'no-owner'.",
      token: "An access token starts with 'hf_'.",
    });
    expect(hubPushFormProblems({ repo: ' you/adapter ', token: TOKEN, private: false })).toEqual({});
  });
});

describe('pushToHub', () => {
  it('pushes the adapter and card to the fake Hub; they read back as built', async () => {
    const hub = await startFakeHub({ repo: 'you/adapter', files: {}, missing: true, writeToken: TOKEN });
    hubs.push(hub);
    const request = hubPushRequest(exportsWithAdapter().files)!;
    const result = await pushToHub(request, { repo: ' you/adapter ', token: TOKEN, private: true }, hub.url);
    expect(result).toMatchObject({ repo: 'you/adapter', created: true });
    expect(hub.repoState()).toEqual({ exists: true, private: true });
    const read = async (path: string) =>
      new Uint8Array(
        await (await downloadFile({ repo: 'you/adapter', path, hubUrl: hub.url }))!.arrayBuffer(),
      );
    expect(await read('adapter_model.safetensors')).toEqual(request.files['adapter_model.safetensors']);
    expect(new TextDecoder().decode(await read('README.md'))).toBe(modelCard(request.card));
  });

  it('a refused token shows a message naming the step, without the token', async () => {
    const hub = await startFakeHub({ repo: 'you/adapter', files: {}, missing: true, writeToken: TOKEN });
    hubs.push(hub);
    const request = hubPushRequest(exportsWithAdapter().files)!;
    const wrong = 'hf_wrongPageToken1';
    const error = await pushToHub(
      request,
      { repo: 'you/adapter', token: wrong, private: true },
      hub.url,
    ).then(
      () => null,
      (e: unknown) => e,
    );
    const text = hubPushErrorText(error, wrong);
    expect(text).toMatch(/^Could not create the repo for you\/adapter: the Hub refused the token \(401/);
    expect(text).not.toContain(wrong);
    expect(hubPushErrorText(new Error(`boom ${wrong}`), wrong)).toBe('The push failed: boom [token]');
  });
});
