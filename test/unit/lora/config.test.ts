import { describe, expect, it } from 'vitest';
import {
  ALL_LINEAR,
  LoraConfigError,
  loraScaling,
  parseTargets,
  peftTargetModules,
  resolveTargets,
  validateLoraConfig,
  type LoraConfig,
  type LoraModelShape,
} from '../../../src/engine/lora/config.ts';
import { parseModelConfig } from '../../../src/engine/model/config.ts';

// SmolLM2-135M: C 576, F 1536, H 9, Hkv 3, D 64, L 30.
const smol: LoraModelShape = {
  family: 'llama',
  hidden: 576,
  ffn: 1536,
  heads: 9,
  kvHeads: 3,
  headDim: 64,
  layers: 30,
};
const gpt2: LoraModelShape = {
  family: 'gpt2',
  hidden: 768,
  ffn: 3072,
  heads: 12,
  kvHeads: 12,
  headDim: 64,
  layers: 2,
};
const base: LoraConfig = { r: 8, alpha: 16, dropout: 0.05, targets: ['q_proj', 'v_proj'], rslora: false };

describe('LoraConfig', () => {
  it('validates every field with a message naming it', () => {
    const bad: [Partial<LoraConfig>, string][] = [
      [{ r: 0 }, 'LoraConfig.r'],
      [{ r: 2.5 }, 'LoraConfig.r'],
      [{ alpha: 0 }, 'LoraConfig.alpha'],
      [{ alpha: Infinity }, 'LoraConfig.alpha'],
      [{ dropout: 1 }, 'LoraConfig.dropout'],
      [{ dropout: -0.1 }, 'LoraConfig.dropout'],
      [{ targets: [] }, 'LoraConfig.targets'],
      [{ targets: ['q proj'] }, 'LoraConfig.targets'],
    ];
    for (const [patch, field] of bad) {
      expect(() => validateLoraConfig({ ...base, ...patch })).toThrow(LoraConfigError);
      expect(() => validateLoraConfig({ ...base, ...patch })).toThrow(field);
    }
    expect(validateLoraConfig(base)).toBe(base);
  });

  it('scales by alpha/r, or alpha/√r with rsLoRA', () => {
    expect(loraScaling({ r: 8, alpha: 16, rslora: false })).toBe(2);
    expect(loraScaling({ r: 16, alpha: 32, rslora: true })).toBe(8);
  });

  it('parses the comma-separated spelling', () => {
    expect(parseTargets(' q_proj, v_proj ,')).toEqual(['q_proj', 'v_proj']);
    expect(parseTargets('all-linear')).toBe(ALL_LINEAR);
  });
});

describe('target resolution', () => {
  it('gives llama paths and dimensions with GQA', () => {
    const mods = resolveTargets({ ...base, targets: ALL_LINEAR }, smol);
    expect(mods).toHaveLength(30 * 7);
    const l0 = mods.filter((m) => m.layer === 0);
    expect(l0.map((m) => [m.path, m.inFeatures, m.outFeatures])).toEqual([
      ['model.layers.0.self_attn.q_proj', 576, 576],
      ['model.layers.0.self_attn.k_proj', 576, 192],
      ['model.layers.0.self_attn.v_proj', 576, 192],
      ['model.layers.0.self_attn.o_proj', 576, 576],
      ['model.layers.0.mlp.gate_proj', 576, 1536],
      ['model.layers.0.mlp.up_proj', 576, 1536],
      ['model.layers.0.mlp.down_proj', 1536, 576],
    ]);
    expect(mods.every((m) => !m.fanInFanOut)).toBe(true);
    const qv = resolveTargets(base, smol);
    expect(qv.map((m) => m.path).slice(0, 3)).toEqual([
      'model.layers.0.self_attn.q_proj',
      'model.layers.0.self_attn.v_proj',
      'model.layers.1.self_attn.q_proj',
    ]);
  });

  it("matches GPT-2's c_proj in attention and MLP, as PEFT's suffix match does", () => {
    const mods = resolveTargets({ ...base, targets: ['c_proj'] }, gpt2);
    expect(mods.map((m) => [m.path, m.inFeatures, m.outFeatures])).toEqual([
      ['transformer.h.0.attn.c_proj', 768, 768],
      ['transformer.h.0.mlp.c_proj', 3072, 768],
      ['transformer.h.1.attn.c_proj', 768, 768],
      ['transformer.h.1.mlp.c_proj', 3072, 768],
    ]);
    expect(mods.every((m) => m.fanInFanOut)).toBe(true);
    expect(resolveTargets({ ...base, targets: ['attn.c_proj'] }, gpt2).map((m) => m.path)).toEqual([
      'transformer.h.0.attn.c_proj',
      'transformer.h.1.attn.c_proj',
    ]);
    const all = resolveTargets({ ...base, targets: ALL_LINEAR }, gpt2);
    expect(all.filter((m) => m.layer === 0).map((m) => [m.path, m.outFeatures])).toEqual([
      ['transformer.h.0.attn.c_attn', 2304],
      ['transformer.h.0.attn.c_proj', 768],
      ['transformer.h.0.mlp.c_fc', 3072],
      ['transformer.h.0.mlp.c_proj', 768],
    ]);
  });

  it('refuses a target that matches nothing, naming it and the field', () => {
    expect(() => resolveTargets({ ...base, targets: ['q_proj', 'c_attn'] }, smol)).toThrow(
      /LoraConfig\.targets: 'c_attn' matches no linear layer/,
    );
    expect(() => resolveTargets({ ...base, targets: ['lm_head'] }, gpt2)).toThrow(/'lm_head'/);
  });

  it('treats prototype names as module names that match nothing, and refuses them as a family', () => {
    for (const t of ['__proto__', 'constructor', 'toString']) {
      expect(() => resolveTargets({ ...base, targets: parseTargets(t) }, smol)).toThrow(
        `LoraConfig.targets: '${t}' matches no linear layer`,
      );
    }
    const bogus = { ...smol, family: 'constructor' } as unknown as LoraModelShape;
    expect(() => resolveTargets(base, bogus)).toThrow(
      "LoraModelShape.family: 'constructor' is not one of llama, qwen2, qwen3, smollm3, mistral, gemma3, gpt2",
    );
  });

  it('writes target_modules sorted, all-linear expanded without the LM head', () => {
    expect(peftTargetModules({ ...base, targets: ['v_proj', 'q_proj', 'v_proj'] }, smol)).toEqual([
      'q_proj',
      'v_proj',
    ]);
    expect(peftTargetModules({ ...base, targets: ALL_LINEAR }, smol)).toEqual([
      'down_proj',
      'gate_proj',
      'k_proj',
      'o_proj',
      'q_proj',
      'up_proj',
      'v_proj',
    ]);
    expect(peftTargetModules({ ...base, targets: ALL_LINEAR }, gpt2)).toEqual(['c_attn', 'c_fc', 'c_proj']);
  });
});

describe('ModelSpec', () => {
  it('plugs in as the model shape', () => {
    const spec = parseModelConfig({
      architectures: ['Qwen2ForCausalLM'],
      hidden_size: 64,
      intermediate_size: 96,
      num_attention_heads: 4,
      num_key_value_heads: 2,
      num_hidden_layers: 2,
      vocab_size: 100,
    });
    const mods = resolveTargets({ ...base, targets: ['k_proj'] }, spec);
    expect(mods.map((m) => [m.path, m.inFeatures, m.outFeatures])).toEqual([
      ['model.layers.0.self_attn.k_proj', 64, 32],
      ['model.layers.1.self_attn.k_proj', 64, 32],
    ]);
  });
});
