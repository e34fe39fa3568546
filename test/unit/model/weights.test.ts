import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { memoryFiles } from '../../../src/engine/checkpoint/byte-source.ts';
import { FileFormatError } from '../../../src/engine/json.ts';
import { parseModelConfig } from '../../../src/engine/model/config.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../../src/engine/gpu/half.ts';
import { openModel } from '../../../src/engine/model/open.ts';
import { openCheckpoint, writeSafetensors } from '../../../src/engine/checkpoint/safetensors.ts';
import {
  convertForUpload,
  listWeights,
  readWeights,
  resolveWeights,
  weightNames,
} from '../../../src/engine/model/weights.ts';
import { nodeDirectoryFiles } from '../../../src/node/files.ts';
import type { TinyArch } from '../../fixtures/tiny-models.ts';
import { buildTinyModel, tinyModelFiles, writeTinyModel } from '../../fixtures/tiny-models.ts';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe('weight-name mapping', () => {
  for (const arch of ['llama', 'qwen2', 'mistral', 'gemma3', 'gpt2'] as TinyArch[]) {
    it(`${arch}: every checkpoint tensor is a parameter with the config's shape`, async () => {
      const model = buildTinyModel({ arch, dtype: 'BF16' });
      const opened = await openModel(tinyModelFiles(model));
      const expected = [...model.tensors.values()].reduce((s, t) => s + t.data.length, 0);
      expect(opened.weights.parameterCount).toBe(expected);
      const names = listWeights(opened.weights.weights).map((w) => w.name);
      expect(new Set(names)).toEqual(new Set(model.tensors.keys()));
    });
  }

  it('qwen2 has q/k/v biases and no o bias; llama attention_bias adds all four', () => {
    const qwen = weightNames(parseModelConfig(buildTinyModel({ arch: 'qwen2' }).config));
    const b0 = qwen.blocks[0];
    expect(b0.kind === 'rope' && [b0.qBias?.shape, b0.kBias?.shape, b0.vBias?.shape, b0.oBias]).toEqual([
      [64],
      [32],
      [32],
      undefined,
    ]);
    const llama = weightNames(
      parseModelConfig({ ...buildTinyModel({ arch: 'llama' }).config, attention_bias: true }),
    );
    const l0 = llama.blocks[0];
    expect(l0.kind === 'rope' && l0.oBias?.name).toBe('model.layers.0.self_attn.o_proj.bias');
  });

  it('gpt2: Conv1D weights are (in, out) and names work without the transformer. prefix', async () => {
    const model = buildTinyModel({ arch: 'gpt2', unprefixed: true });
    const opened = await openModel(tinyModelFiles(model));
    expect(opened.weights.prefix).toBe('');
    const b = opened.weights.weights.blocks[1];
    expect(b.kind === 'gpt2' && [b.qkv.name, b.qkv.shape, b.qkv.layout]).toEqual([
      'h.1.attn.c_attn.weight',
      [64, 192],
      'in_out',
    ]);
    expect(opened.weights.weights.lmHead).toMatchObject({ name: 'wte.weight', layout: 'out_in' });
  });

  it('untied llama needs lm_head.weight; tied models ignore a saved copy', async () => {
    const model = buildTinyModel({ arch: 'llama' });
    const spec = parseModelConfig(model.config);
    const tensors = new Map([...model.tensors].map(([n, t]) => [n, { shape: t.shape }]));
    tensors.delete('lm_head.weight');
    expect(() => resolveWeights(spec, tensors, 'tiny')).toThrow(
      "tiny: tensor 'lm_head.weight' (shape [300,64]) is missing",
    );
    const qwen = buildTinyModel({ arch: 'qwen2' });
    const qt = new Map([...qwen.tensors].map(([n, t]) => [n, { shape: t.shape }]));
    qt.set('lm_head.weight', { shape: [300, 64] });
    qt.set('model.layers.0.self_attn.rotary_emb.inv_freq', { shape: [8] });
    expect(() => resolveWeights(parseModelConfig(qwen.config), qt)).not.toThrow();
    qt.set('model.something_else', { shape: [1] });
    expect(() => resolveWeights(parseModelConfig(qwen.config), qt, 'tiny')).toThrow(
      "tiny: tensor 'model.something_else' is not used (not a parameter of Qwen2ForCausalLM as config.json describes it)",
    );
  });

  it('refuses a config.json with fewer layers than the checkpoint, naming the first unused tensor', async () => {
    const model = buildTinyModel({ arch: 'llama' });
    const fewer = memoryFiles('tiny', {
      ...model.files,
      'config.json': JSON.stringify({ ...model.config, num_hidden_layers: 1 }),
    });
    await expect(openModel(fewer)).rejects.toThrow(FileFormatError);
    await expect(openModel(fewer)).rejects.toThrow(
      /model\.safetensors: tensor 'model\.layers\.1\.[a-z_.]+' is not used \(config\.json says 1 layers; the checkpoint has layer 1\), and \d+ more unused/,
    );
  });

  it('a missing tensor is named, with how many more are missing', async () => {
    const model = buildTinyModel({ arch: 'llama', dtype: 'F16' });
    const names = [...model.tensors.keys()].filter((n) => !n.startsWith('model.layers.1.mlp'));
    const tensors = Object.fromEntries(
      names.map((n) => [
        n,
        { dtype: 'F16' as const, shape: model.tensors.get(n)!.shape, data: model.tensors.get(n)!.data },
      ]),
    );
    const files = memoryFiles('tiny', { ...model.files, 'model.safetensors': writeSafetensors(tensors) });
    await expect(openModel(files)).rejects.toThrow(
      "tiny: tensor 'model.layers.1.mlp.gate_proj.weight' (shape [96,64]) is missing, and 2 more (model.layers.1.mlp.up_proj.weight, model.layers.1.mlp.down_proj.weight)",
    );
  });

  it("gemma3: a checkpoint without Gemma's feedforward norms is refused, naming the first", async () => {
    const model = buildTinyModel({ arch: 'gemma3' });
    const names = [...model.tensors.keys()].filter((n) => !n.includes('feedforward_layernorm'));
    const tensors = Object.fromEntries(
      names.map((n) => [n, { dtype: 'F32' as const, ...model.tensors.get(n)! }]),
    );
    const files = memoryFiles('tiny', { ...model.files, 'model.safetensors': writeSafetensors(tensors) });
    await expect(openModel(files)).rejects.toThrow(
      "tiny: tensor 'model.layers.0.pre_feedforward_layernorm.weight' (shape [64]) is missing, and 3 more",
    );
    // A Qwen3 config over Gemma's tensors: the norms it does not know are unused, and refused by name.
    const asQwen3 = { ...buildTinyModel({ arch: 'qwen3' }).config, vocab_size: 300 };
    await expect(
      openModel(memoryFiles('tiny', { ...model.files, 'config.json': JSON.stringify(asQwen3) })),
    ).rejects.toThrow(
      "model.safetensors: tensor 'model.layers.0.post_feedforward_layernorm.weight' is not used (not a parameter " +
        'of Qwen3ForCausalLM as config.json describes it), and 3 more unused',
    );
  });

  it('a shape that disagrees with config.json is named with both shapes', async () => {
    const model = buildTinyModel({ arch: 'llama' });
    const config = { ...model.config, num_key_value_heads: 2 };
    await expect(
      openModel(memoryFiles('tiny', { ...model.files, 'config.json': JSON.stringify(config) })),
    ).rejects.toThrow(
      "model.safetensors: tensor 'model.layers.0.self_attn.k_proj.weight' has shape [32,64], expected [64,64] from config.json",
    );
  });

  it('converts for upload: bf16 → f16 and f32 (exact), counting f16 overflow', async () => {
    const model = buildTinyModel({ arch: 'qwen2', dtype: 'BF16' });
    const ckpt = await openCheckpoint(tinyModelFiles(model));
    const spec = parseModelConfig(model.config);
    const resolved = resolveWeights(spec, ckpt.tensors);
    let n = 0;
    for await (const t of readWeights(ckpt, resolved, 'f16')) {
      const want = model.tensors.get(t.name)!.data;
      expect(t.data).toBeInstanceOf(Uint16Array);
      expect(Array.from(t.data, f16BitsToF32)).toEqual(
        Array.from(want, (v) => f16BitsToF32(f32ToF16Bits(v))),
      );
      n++;
    }
    expect(n).toBe(model.tensors.size);
    const bytes = await ckpt.read('model.norm.weight');
    const f32 = convertForUpload('model.norm.weight', [64], bytes, 'BF16', 'f32');
    expect(Array.from(f32.data)).toEqual(Array.from(model.tensors.get('model.norm.weight')!.data));
    const big = writeSafetensors({ x: { dtype: 'BF16', shape: [3], data: [1e6, 1, -7e4] } });
    const bc = await openCheckpoint(memoryFiles('big', { 'model.safetensors': big }));
    expect(convertForUpload('x', [3], await bc.read('x'), 'BF16', 'f16').f16Overflow).toBe(2);
  });

  it('loads a model directory from disk in Node', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tunelab-model-'));
    dirs.push(dir);
    const model = buildTinyModel({ arch: 'gpt2', dtype: 'F16', shards: 2 });
    await writeTinyModel(model, dir);
    const opened = await openModel(await nodeDirectoryFiles(dir));
    expect(opened.spec.family).toBe('gpt2');
    expect(opened.checkpoint.files).toHaveLength(2);
    const t = await opened.checkpoint.read('transformer.h.0.mlp.c_fc.weight');
    expect(t.byteLength).toBe(64 * 256 * 2);
    await expect(nodeDirectoryFiles(join(dir, 'nope'))).rejects.toThrow('cannot read the model directory');
  });
});
