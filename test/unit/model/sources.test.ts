// The Hub path is tested offline only: argument checks, and a load served entirely from a seeded cache with
// a fetch that refuses every request (so a second load provably needs no network). Downloading itself needs
// the network and is not tested here.

import { describe, expect, it } from 'vitest';
import { openModel } from '../../../src/engine/model/open.ts';
import {
  checkHubOptions,
  hubModel,
  isModelFile,
  localFiles,
  memoryModelCache,
  seedModelCache,
} from '../../../src/engine/model/sources.ts';
import { buildTinyModel } from '../../fixtures/tiny-models.ts';

const noNetwork: typeof fetch = async (input) => {
  throw new Error(`network disabled in this test (asked for ${String(input)})`);
};

function asFiles(files: Record<string, Uint8Array | string>, folder?: string): File[] {
  return Object.entries(files).map(([name, data]) => {
    const file = new File([data as BlobPart], name);
    if (folder) Object.defineProperty(file, 'webkitRelativePath', { value: `${folder}/${name}` });
    return file;
  });
}

describe('model sources', () => {
  it('local files from a picker or a dropped folder, matched by name', async () => {
    const model = buildTinyModel({ arch: 'llama', dtype: 'F16' });
    const picked = await openModel(localFiles(asFiles(model.files)));
    expect(picked.spec.family).toBe('llama');
    const dropped = localFiles(asFiles(model.files, 'tiny-llama'), 'dropped folder');
    expect(dropped.names()).toContain('model.safetensors');
    expect((await openModel(dropped)).weights.parameterCount).toBe(picked.weights.parameterCount);
    await expect(dropped.open('nope.json')).rejects.toThrow('nope.json: not found in dropped folder');
    expect(() => localFiles([...asFiles(model.files), new File(['{}'], 'config.json')])).toThrow(
      "local files: two files are named 'config.json'",
    );
  });

  it('selects the files a load needs', () => {
    expect(
      [
        'config.json',
        'model.safetensors',
        'model-00001-of-00002.safetensors',
        'model.safetensors.index.json',
        'tokenizer.json',
        'tokenizer_config.json',
        'chat_template.jinja',
      ].every(isModelFile),
    ).toBe(true);
    expect(
      [
        'onnx/model.onnx',
        'pytorch_model.bin',
        'consolidated.safetensors',
        'README.md',
        'sub/config.json',
      ].some(isModelFile),
    ).toBe(false);
  });

  it('checks Hub arguments, naming the argument', () => {
    expect(() => checkHubOptions({ repo: 'HuggingFaceTB/SmolLM2-135M' })).not.toThrow();
    expect(() => checkHubOptions({ repo: 'gpt2', revision: 'a1b2c3d' })).not.toThrow();
    for (const repo of ['', 'a/b/c', '../etc', 'has space/x', '/x']) {
      expect(() => checkHubOptions({ repo })).toThrow(`repo: '${repo}' is not a Hub repo id`);
    }
    expect(() => checkHubOptions({ repo: 'a/b', revision: '' })).toThrow("revision: '' is not a branch");
    expect(() => checkHubOptions({ repo: 'a/b', revision: 'main..x' })).toThrow('revision:');
    expect(() => checkHubOptions({ repo: 'a/b', accessToken: 'hf_ x' })).toThrow(
      'accessToken: must be a non-empty string',
    );
  });

  it('a second load is served from the cache with no request at all', async () => {
    const model = buildTinyModel({ arch: 'qwen2', dtype: 'BF16' });
    const cache = memoryModelCache();
    const blobs = new Map(Object.entries(model.files).map(([n, d]) => [n, new Blob([d as BlobPart])]));
    await seedModelCache(cache, 'org/tiny-qwen2', 'main', blobs);
    const files = await hubModel({
      repo: 'org/tiny-qwen2',
      cache,
      fetch: noNetwork,
      accessToken: 'hf_secret',
    });
    expect(files.label).toBe('org/tiny-qwen2@main');
    const opened = await openModel(files);
    expect(opened.spec.family).toBe('qwen2');
    expect(cache.keys().some((k) => k.includes('hf_secret'))).toBe(false);
  });

  it('a cache missing a file, or another revision, goes to the network (refused here)', async () => {
    const model = buildTinyModel({ arch: 'gpt2' });
    const cache = memoryModelCache();
    const blobs = new Map(Object.entries(model.files).map(([n, d]) => [n, new Blob([d as BlobPart])]));
    await seedModelCache(cache, 'org/tiny', 'v1', blobs);
    await expect(hubModel({ repo: 'org/tiny', revision: 'v2', cache, fetch: noNetwork })).rejects.toThrow(
      'org/tiny@v2: cannot list the repo files (network disabled in this test',
    );
    const partial = memoryModelCache();
    await seedModelCache(partial, 'org/tiny', 'v1', blobs);
    await partial.put('org/tiny@v1/model.safetensors', new Blob(['short']), 5); // a truncated entry
    await expect(
      hubModel({ repo: 'org/tiny', revision: 'v1', cache: partial, fetch: noNetwork }),
    ).rejects.toThrow('cannot list the repo files');
  });
});
