import { describe, expect, it } from 'vitest';
import {
  ALL_LINEAR,
  resolveTargets,
  type LoraConfig,
  type LoraModelShape,
} from '../../../src/engine/lora/config.ts';
import { initLoraParams, loraLayout, segmentView } from '../../../src/engine/lora/init.ts';
import {
  ADAPTER_CONFIG_FILE,
  ADAPTER_WEIGHTS_FILE,
  PEFT_VERSION,
  PeftImportError,
  exportPeftAdapter,
  importPeftAdapter,
} from '../../../src/engine/lora/peft.ts';
import { writeSafetensors, type WriteTensor } from '../../../src/engine/checkpoint/safetensors.ts';
import { parseModelConfig } from '../../../src/engine/model/config.ts';
import { tinyConfig } from '../../fixtures/tiny-models.ts';

const llama: LoraModelShape = {
  family: 'llama',
  hidden: 24,
  ffn: 40,
  heads: 4,
  kvHeads: 2,
  headDim: 6,
  layers: 2,
};
const gpt2: LoraModelShape = {
  family: 'gpt2',
  hidden: 16,
  ffn: 64,
  heads: 2,
  kvHeads: 2,
  headDim: 8,
  layers: 2,
};
/** Qwen3's explicit head_dim: q_proj is (H·D, C) = (64, 24), o_proj (C, H·D), not square. */
const qwen3: LoraModelShape = { ...llama, family: 'qwen3', headDim: 16 };
/** Gemma 3's shape as its config gives it (Gemma-3-270M: head_dim 256 ≠ 640 / 4): here 48 ≠ 64 / 2. */
const gemma3: LoraModelShape = parseModelConfig(tinyConfig('gemma3', true, 'BF16', 48));
const qv: LoraConfig = { r: 4, alpha: 8, dropout: 0.05, targets: ['v_proj', 'q_proj'], rslora: false };

function build(config: LoraConfig, shape: LoraModelShape, seed = 5) {
  const layout = loraLayout(resolveTargets(config, shape), config.r);
  const params = initLoraParams(layout, seed);
  // Give B non-zero values so the round trip checks them too.
  for (const s of layout.segments)
    if (s.kind === 'B') segmentView(params, s).forEach((_, i, a) => (a[i] = (i % 7) - 3));
  return {
    layout,
    params,
    files: exportPeftAdapter(config, shape, layout, params, { baseModel: 'org/base' }),
  };
}

/** The header of a safetensors file, read by hand (independent of the reader under test). */
function header(
  bytes: Uint8Array,
): Record<string, { dtype: string; shape: number[]; data_offsets: number[] }> {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
}

describe('PEFT export', () => {
  it('writes adapter_config.json with the fields PEFT writes, keys sorted', () => {
    const text = build(qv, llama).files[ADAPTER_CONFIG_FILE];
    const cfg = JSON.parse(text);
    expect(Object.keys(cfg)).toEqual(Object.keys(cfg).sort());
    expect(cfg).toMatchObject({
      peft_type: 'LORA',
      task_type: 'CAUSAL_LM',
      r: 4,
      lora_alpha: 8,
      lora_dropout: 0.05,
      target_modules: ['q_proj', 'v_proj'],
      use_rslora: false,
      use_dora: false,
      fan_in_fan_out: false,
      bias: 'none',
      base_model_name_or_path: 'org/base',
      revision: null,
      inference_mode: true,
      init_lora_weights: true,
      modules_to_save: null,
      layers_to_transform: null,
      rank_pattern: {},
      alpha_pattern: {},
      peft_version: PEFT_VERSION,
    });
    expect(text).toContain('\n  "lora_dropout": 0.05,\n');
    const zero = build({ ...qv, dropout: 0, rslora: true }, llama).files[ADAPTER_CONFIG_FILE];
    expect(zero).toContain('"lora_dropout": 0.0,');
    expect(JSON.parse(zero).use_rslora).toBe(true);
  });

  it('names llama tensors base_model.model.model.layers.N... with A (r, in), B (out, r), f32', () => {
    const { files } = build(qv, llama);
    const h = header(files[ADAPTER_WEIGHTS_FILE]);
    expect(h.__metadata__).toEqual({ format: 'pt' });
    const tensors = Object.keys(h).filter((k) => k !== '__metadata__');
    expect(tensors.sort()).toEqual(
      [0, 1]
        .flatMap((l) =>
          ['q_proj', 'v_proj'].flatMap((m) =>
            ['A', 'B'].map((k) => `base_model.model.model.layers.${l}.self_attn.${m}.lora_${k}.weight`),
          ),
        )
        .sort(),
    );
    expect(h['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight']).toMatchObject({
      dtype: 'F32',
      shape: [4, 24],
    });
    expect(h['base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight'].shape).toEqual([12, 4]);
  });

  it('sizes Qwen3 adapters by its head_dim (q_proj (H·D, C), o_proj (C, H·D)) under PEFT names', () => {
    const { files } = build({ ...qv, targets: ALL_LINEAR }, qwen3);
    const h = header(files[ADAPTER_WEIGHTS_FILE]);
    const at = 'base_model.model.model.layers.1.self_attn';
    expect(h[`${at}.q_proj.lora_B.weight`].shape).toEqual([64, 4]);
    expect(h[`${at}.o_proj.lora_A.weight`].shape).toEqual([4, 64]);
    expect(h[`${at}.k_proj.lora_B.weight`].shape).toEqual([32, 4]);
    const config = JSON.parse(files[ADAPTER_CONFIG_FILE]);
    expect(config).toMatchObject({
      // all-linear spelled out: every linear of a Qwen3 block (the q/k norms are not linears).
      target_modules: ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj'],
      base_model_name_or_path: 'org/base',
      fan_in_fan_out: false,
    });
  });

  it('names Gemma 3 adapters as PEFT does on Gemma3ForCausalLM: model.layers.N, every linear, head_dim-sized', () => {
    const { files } = build({ ...qv, targets: ALL_LINEAR }, gemma3);
    const h = header(files[ADAPTER_WEIGHTS_FILE]);
    const at = 'base_model.model.model.layers.1';
    expect(h[`${at}.self_attn.q_proj.lora_B.weight`].shape).toEqual([2 * 48, 4]);
    expect(h[`${at}.self_attn.o_proj.lora_A.weight`].shape).toEqual([4, 2 * 48]);
    expect(h[`${at}.self_attn.k_proj.lora_B.weight`].shape).toEqual([48, 4]);
    expect(h[`${at}.mlp.down_proj.lora_A.weight`].shape).toEqual([4, 96]);
    expect(Object.keys(h)).toHaveLength(1 + 2 * 7 * 2);
    expect(JSON.parse(files[ADAPTER_CONFIG_FILE])).toMatchObject({
      // The norms (q/k and the four around attention and the MLP) are not linears.
      target_modules: ['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj'],
      fan_in_fan_out: false,
    });
  });

  it("names GPT-2 tensors under transformer.h.N with fan_in_fan_out and both c_proj's", () => {
    const { files } = build({ ...qv, targets: ALL_LINEAR }, gpt2);
    const cfg = JSON.parse(files[ADAPTER_CONFIG_FILE]);
    expect(cfg.fan_in_fan_out).toBe(true);
    expect(cfg.target_modules).toEqual(['c_attn', 'c_fc', 'c_proj']);
    const h = header(files[ADAPTER_WEIGHTS_FILE]);
    expect(h['base_model.model.transformer.h.0.attn.c_attn.lora_A.weight'].shape).toEqual([4, 16]);
    expect(h['base_model.model.transformer.h.0.attn.c_attn.lora_B.weight'].shape).toEqual([48, 4]);
    expect(h['base_model.model.transformer.h.1.attn.c_proj.lora_B.weight'].shape).toEqual([16, 4]);
    expect(h['base_model.model.transformer.h.1.mlp.c_proj.lora_A.weight'].shape).toEqual([4, 64]);
    expect(h['base_model.model.transformer.h.1.mlp.c_fc.lora_B.weight'].shape).toEqual([64, 4]);
    expect(Object.keys(h)).toHaveLength(1 + 2 * 4 * 2);
  });
});

describe('PEFT import', () => {
  it('round-trips export → import exactly', async () => {
    for (const [config, shape] of [
      [qv, llama],
      [{ ...qv, targets: ALL_LINEAR, rslora: true }, gpt2],
      [{ ...qv, targets: ALL_LINEAR }, qwen3],
      [qv, { ...llama, family: 'smollm3' }],
      [{ ...qv, targets: ALL_LINEAR }, gemma3],
    ] as const) {
      const { layout, params, files } = build(config, shape);
      const back = await importPeftAdapter(files[ADAPTER_CONFIG_FILE], files[ADAPTER_WEIGHTS_FILE], shape);
      expect(back.params).toEqual(params);
      expect(back.layout).toEqual(layout);
      expect(back.baseModel).toBe('org/base');
      expect(back.config.r).toBe(config.r);
      expect(back.config.rslora).toBe(config.rslora);
      expect(back.config.dropout).toBe(config.dropout);
    }
  });

  it('widens a bf16 adapter to f32', async () => {
    const { layout, files } = build(qv, llama);
    const tensors: Record<string, WriteTensor> = {};
    for (const s of layout.segments)
      tensors[`base_model.model.${s.name}`] = {
        dtype: 'BF16',
        shape: s.shape,
        data: new Float32Array(s.length).fill(0.5),
      };
    const back = await importPeftAdapter(files[ADAPTER_CONFIG_FILE], writeSafetensors(tensors), llama);
    expect(segmentView(back.params, back.layout.segments[3]).every((x) => x === 0.5)).toBe(true);
  });

  it('refuses mismatches with the file, the key or field, and why', async () => {
    const { layout, params, files } = build(qv, llama);
    const cfgText = files[ADAPTER_CONFIG_FILE];
    const cfg = JSON.parse(cfgText);
    const weights = (edit: (t: Record<string, WriteTensor>) => void): Uint8Array => {
      const t: Record<string, WriteTensor> = {};
      for (const s of layout.segments)
        t[`base_model.model.${s.name}`] = { dtype: 'F32', shape: s.shape, data: segmentView(params, s) };
      edit(t);
      return writeSafetensors(t);
    };
    const rejects = async (c: unknown, w: Uint8Array, re: RegExp): Promise<void> => {
      const p = importPeftAdapter(c as string, w, llama);
      await expect(p).rejects.toThrow(re);
    };
    const good = files[ADAPTER_WEIGHTS_FILE];
    const key = 'base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight';
    await rejects(
      cfgText,
      weights((t) => delete t[key]),
      new RegExp(`${ADAPTER_WEIGHTS_FILE}: tensor '${key.replace(/\./g, '\\.')}' is missing`),
    );
    await rejects(
      cfgText,
      weights((t) => (t[key] = { dtype: 'F32', shape: [4, 12], data: new Float32Array(48) })),
      /has shape \[4,12\], expected \[12,4\] \(\[out_features, r\]\)/,
    );
    await rejects(
      cfgText,
      weights(
        (t) =>
          (t['base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight'] = {
            dtype: 'F32',
            shape: [4, 24],
            data: new Float32Array(96),
          }),
      ),
      /unexpected tensor 'base_model\.model\.model\.layers\.0\.self_attn\.k_proj\.lora_A\.weight'/,
    );
    await rejects({ ...cfg, r: 8 }, good, /has shape \[4,24\], expected \[8,24\]/);
    await rejects({ ...cfg, use_dora: true }, good, /adapter_config\.json: use_dora true is not supported/);
    await rejects({ ...cfg, target_modules: '.*q_proj' }, good, /target_modules as a regular expression/);
    await rejects(
      { ...cfg, target_modules: ['c_attn'] },
      good,
      /target_modules 'c_attn' matches no linear layer/,
    );
    await rejects({ ...cfg, peft_type: 'IA3' }, good, /peft_type must be "LORA"/);
    await rejects({ ...cfg, r: 0 }, good, /adapter_config\.json: r must be a whole number/);
    await rejects({ ...cfg, lora_dropout: 2 }, good, /lora_dropout must be in \[0, 1\)/);
    await rejects({ ...cfg, rank_pattern: { q_proj: 8 } }, good, /rank_pattern .* is not supported/);
    await rejects('{oops', good, /adapter_config\.json: not valid JSON/);
    expect(PeftImportError.name).toBe('PeftImportError');
  });

  it('refuses weights holding NaN or Infinity, naming the tensor', async () => {
    const { layout, files } = build(qv, llama);
    const a = layout.segments[0];
    for (const poison of [NaN, Infinity, -Infinity]) {
      const tensors: Record<string, WriteTensor> = {};
      for (const s of layout.segments) {
        const data = new Float32Array(s.shape[0] * s.shape[1]).fill(0.5);
        if (s === a) data[3] = poison;
        tensors[`base_model.model.${s.name}`] = { dtype: 'F32', shape: s.shape, data };
      }
      await expect(
        importPeftAdapter(files[ADAPTER_CONFIG_FILE], writeSafetensors(tensors), llama),
      ).rejects.toThrow(
        new PeftImportError(
          ADAPTER_WEIGHTS_FILE,
          `tensor 'base_model.model.${a.name}' holds ${poison} at index 3`,
        ),
      );
    }
  });

  it('refuses r beyond both sides of a targeted layer before allocating anything', async () => {
    const { files } = build(qv, llama);
    const config = (r: number) => JSON.stringify({ ...JSON.parse(files[ADAPTER_CONFIG_FILE]), r });
    // q_proj of this llama is 24 → 24; r = 24 (full rank) would be accepted with tensors to match.
    await expect(importPeftAdapter(config(25), files[ADAPTER_WEIGHTS_FILE], llama)).rejects.toThrow(
      'adapter_config.json: r 25 exceeds max(in_features, out_features) = 24 of model.layers.0.self_attn.q_proj (24 → 24)',
    );
    await expect(importPeftAdapter(config(1e300), files[ADAPTER_WEIGHTS_FILE], llama)).rejects.toThrow(
      PeftImportError,
    );
    const full = build({ ...qv, r: 24 }, llama).files;
    await expect(
      importPeftAdapter(full[ADAPTER_CONFIG_FILE], full[ADAPTER_WEIGHTS_FILE], llama),
    ).resolves.toBeDefined();
  });

  it('refuses a config nested too deeply or not UTF-8, naming the file', async () => {
    const { files } = build(qv, llama);
    const deep = files[ADAPTER_CONFIG_FILE].replace(
      /}\s*$/,
      `, "x": ${'['.repeat(100000)}${']'.repeat(100000)}}`,
    );
    await expect(importPeftAdapter(deep, files[ADAPTER_WEIGHTS_FILE], llama)).rejects.toThrow(
      new PeftImportError(ADAPTER_CONFIG_FILE, 'JSON nested deeper than 64 levels'),
    );
    const bytes = new TextEncoder().encode(files[ADAPTER_CONFIG_FILE]);
    const bad = new Uint8Array([...bytes.slice(0, 10), 0xc0, 0x80, ...bytes.slice(10)]);
    await expect(importPeftAdapter(bad, files[ADAPTER_WEIGHTS_FILE], llama)).rejects.toThrow(
      new PeftImportError(ADAPTER_CONFIG_FILE, 'not valid UTF-8 (first bad byte at offset 10)'),
    );
    expect((await importPeftAdapter(bytes, files[ADAPTER_WEIGHTS_FILE], llama)).config.r).toBe(4);
  });

  it('refuses to export an adapter with non-finite weights', () => {
    const { layout, params } = build(qv, llama);
    params[layout.segments[1].offset + 2] = NaN;
    expect(() => exportPeftAdapter(qv, llama, layout, params, { baseModel: 'b' })).toThrow(
      `exportPeftAdapter: tensor 'base_model.model.${layout.segments[1].name}' holds NaN at index 2`,
    );
  });

  it('refuses an export whose layout does not match the config', () => {
    const { params, layout } = build(qv, llama);
    expect(() =>
      exportPeftAdapter({ ...qv, targets: ['q_proj'] }, llama, layout, params, { baseModel: 'x' }),
    ).toThrow(/layout/);
    expect(() => exportPeftAdapter(qv, llama, layout, params.subarray(1), { baseModel: 'x' })).toThrow(
      /elements/,
    );
  });
});
