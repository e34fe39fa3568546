import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../../src/engine/model/config.ts';
import {
  checkMemoryFits,
  estimateMemory,
  loraParameterCount,
  memoryProblems,
  parameterCount,
  weightBytes,
} from '../../../src/engine/model/memory.ts';

const SMOLLM2_135M = parseModelConfig({
  architectures: ['LlamaForCausalLM'],
  hidden_size: 576,
  intermediate_size: 1536,
  max_position_embeddings: 8192,
  num_attention_heads: 9,
  num_hidden_layers: 30,
  num_key_value_heads: 3,
  rms_norm_eps: 1e-5,
  rope_theta: 100000,
  tie_word_embeddings: true,
  vocab_size: 49152,
});
const QWEN25_05B = parseModelConfig({
  architectures: ['Qwen2ForCausalLM'],
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rope_theta: 1e6,
  tie_word_embeddings: true,
  vocab_size: 151936,
});
const GPT2 = parseModelConfig({ architectures: ['GPT2LMHeadModel'] });
const MiB = 2 ** 20;

describe('memory estimate', () => {
  it('SmolLM2-135M has 134,515,008 parameters (tied embedding counted once)', () => {
    // embed 49152·576 + 30 · (q 576² + k, v 192·576 + o 576² + 3 · 1536·576 + 2 · 576) + norm 576
    expect(parameterCount(SMOLLM2_135M)).toBe(134_515_008);
    expect(weightBytes(SMOLLM2_135M, 'f16')).toBe(2 * 134_515_008);
    expect(weightBytes(SMOLLM2_135M, 'f32')).toBe(4 * 134_515_008);
    expect(parameterCount(GPT2)).toBe(124_439_808); // gpt2 (124M), tied
    expect(parameterCount(QWEN25_05B)).toBe(494_032_768); // Qwen2.5-0.5B
  });

  it('counts activations per layer by the documented formula, and LoRA state', () => {
    const [B, T, r] = [2, 512, 8];
    const e = estimateMemory(SMOLLM2_135M, {
      batch: B,
      seq: T,
      precision: 'f16',
      lora: { rank: r, targets: ['q_proj', 'v_proj'] },
    });
    const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F, layers: L } = SMOLLM2_135M;
    const N = B * T;
    const s = 2;
    const perLayer = N * (s * (4 * C + 2 * H * D + 2 * Hkv * D + 3 * F) + 8) + 4 * B * H * T + 2 * N * r * s;
    const final = N * C * s * 2 + N * 4;
    expect(e.activations.bytes).toBe(L * perLayer + final);
    // q: r·(576 + 576), v: r·(576 + 192), per layer
    expect(e.loraParameters).toBe(30 * 8 * (1152 + 768));
    expect(loraParameterCount(SMOLLM2_135M, { rank: 8, targets: ['q_proj', 'v_proj'] })).toBe(460_800);
    // f32 master + grad + m + v, plus an f16 copy for the matmuls
    expect(e.lora.bytes).toBe(460_800 * (16 + 2));
    expect(e.weights.bytes).toBe(2 * 134_515_008);
    expect(e.totalBytes).toBe(e.weights.bytes + e.activations.bytes + e.lora.bytes + e.scratch.bytes);
    // the logits chunk (1024 tokens × V f32) is the largest single buffer, ahead of the embedding
    expect(e.largestBuffer).toEqual({
      name: 'logits chunk (dlogits in place) (chunk, V) f32',
      bytes: 1024 * 49152 * 4,
    });
    const small = estimateMemory(SMOLLM2_135M, { batch: 1, seq: 128, precision: 'f16' });
    expect(small.largestBuffer).toEqual({
      name: 'model.embed_tokens.weight (49152, 576)',
      bytes: 49152 * 576 * 2,
    });
  });

  it('recompute keeps one block input per layer plus one block of workspace', () => {
    const full = estimateMemory(SMOLLM2_135M, { batch: 4, seq: 256, precision: 'f16' });
    const rec = estimateMemory(SMOLLM2_135M, { batch: 4, seq: 256, precision: 'f16', recompute: true });
    expect(rec.activations.bytes).toBeLessThan(full.activations.bytes / 5);
    // Exactly: L block inputs + one block's internals + the final norm's tensors.
    const [N, C, L] = [4 * 256, SMOLLM2_135M.hidden, SMOLLM2_135M.layers];
    const final = N * C * 2 * 2 + N * 4;
    const perLayer = (full.activations.bytes - final) / L;
    const resid = N * C * 2;
    expect(rec.activations.bytes).toBe(L * resid + (perLayer - resid) + final);
  });

  it('fits a 128 MiB binding for SmolLM2 but names the Qwen embedding that does not', () => {
    const limits = { maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 128 * MiB };
    const smol = estimateMemory(SMOLLM2_135M, { batch: 1, seq: 512, precision: 'f16' });
    expect(memoryProblems(smol, limits)).toEqual([]);
    expect(() => checkMemoryFits(smol, limits)).not.toThrow();
    const qwen = estimateMemory(QWEN25_05B, { batch: 1, seq: 256, precision: 'f16', logitsChunk: 128 });
    expect(() => checkMemoryFits(qwen, limits)).toThrow(
      "does not fit this device: weight 'model.embed_tokens.weight' (151936, 896) needs 259.7 MiB in one buffer; the device's maxStorageBufferBindingSize is 128.0 MiB",
    );
    expect(() => checkMemoryFits(smol, { ...limits, budgetBytes: 100 * MiB })).toThrow(
      /the step needs .* \(weights 256\.6 MiB, activations .*\), over the budget of 100\.0 MiB/,
    );
  });

  it('gpt2 targets and refusals name the argument', () => {
    const e = estimateMemory(GPT2, {
      batch: 1,
      seq: 64,
      precision: 'f32',
      lora: { rank: 4, targets: ['c_attn', 'c_proj'] },
    });
    // c_attn 768→2304, attn.c_proj 768→768, mlp.c_proj 3072→768
    expect(e.loraParameters).toBe(12 * 4 * (768 + 2304 + 768 + 768 + 3072 + 768));
    expect(() =>
      estimateMemory(GPT2, { batch: 1, seq: 8, precision: 'f16', lora: { rank: 4, targets: ['q_proj'] } }),
    ).toThrow("lora.targets: 'q_proj' is not a module of GPT2LMHeadModel (one of: c_attn, c_proj, c_fc)");
    expect(() => estimateMemory(GPT2, { batch: 0, seq: 8, precision: 'f16' })).toThrow(
      'batch: must be a positive integer, got 0',
    );
    expect(() => estimateMemory(GPT2, { batch: 1, seq: 2048, precision: 'f16' })).toThrow(
      'seq: 2048 is longer than the 1024 positions',
    );
    expect(() => loraParameterCount(GPT2, { rank: 0, targets: [] })).toThrow(
      'lora.rank: must be a positive integer',
    );
  });
});
