import { describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../../src/engine/model/config.ts';
import {
  checkMemoryFits,
  estimateMemory,
  loraParameterCount,
  memoryProblems,
  optimizerMoments,
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

  it('counts each block by its table, u in f32, and LoRA state without f16 copies', () => {
    const [B, T, r] = [2, 512, 8];
    const lora = { rank: r, targets: ['q_proj', 'v_proj'] };
    const e = estimateMemory(SMOLLM2_135M, { batch: B, seq: T, precision: 'f16', lora });
    const { hidden: C, heads: H, kvHeads: Hkv, headDim: D, ffn: F, layers: L } = SMOLLM2_135M;
    const N = B * T;
    const s = 2;
    // x, rstd1, xn1, q, k, v, att, x2, rstd2, xn2, gate, up, h, lse, and u (N, r) f32 of q_proj and v_proj.
    const perLayer = N * (s * (4 * C + 2 * H * D + 2 * Hkv * D + 3 * F) + 8) + 4 * B * H * T + 2 * 4 * N * r;
    const once = e.activations.items.filter((i) => i.count === 1);
    const onceBytes = once.reduce((sum, i) => sum + i.bytes, 0);
    expect(e.activations.bytes).toBe(L * perLayer + onceBytes);
    // The head's chunk, not (N, V): 8192 vocabulary rows of f32 logits per token and 4 running statistics
    // (max, sum, target logit, the rescale α); the fused pass's G and target rows, (2, N, C) f32.
    const ce = once.find((i) => i.name === 'ceScratch')!;
    expect(ce.bytes).toBe(4 * N * 8192 + 16 * N);
    expect(once.find((i) => i.name === 'ceGrad')!.bytes).toBe(8 * N * C);
    // The backward scratch: dResidual, dNormed, dAtt, dq, dk, dv, dGate, dUp, dH.
    const grads = ['dResidual', 'dNormed', 'dAtt', 'dq', 'dk', 'dv', 'dGate', 'dUp', 'dH'];
    const gradBytes = once.filter((i) => grads.includes(i.name)).reduce((sum, i) => sum + i.bytes, 0);
    expect(gradBytes).toBe(N * s * (2 * C + 2 * H * D + 2 * Hkv * D + 3 * F));
    // q: r·(576 + 576), v: r·(576 + 192), per layer
    expect(e.loraParameters).toBe(30 * 8 * (1152 + 768));
    expect(loraParameterCount(SMOLLM2_135M, { rank: 8, targets: ['q_proj', 'v_proj'] })).toBe(460_800);
    // One flat f32 buffer each for params, grads, AdamW m and v (segments 256-byte aligned), and the segment
    // table: no f16 copy of A or B exists (the matmuls read the f32 masters).
    const flat = e.lora.items.filter((i) => i.name.startsWith('lora.'));
    expect(flat.map((i) => i.bytes)).toEqual(Array(4).fill(4 * 460_800));
    expect(e.lora.bytes).toBe(
      4 * 4 * 460_800 + e.lora.items.find((i) => i.name === 'optimizer.segments')!.bytes,
    );
    expect(e.weights.bytes).toBe(2 * 134_515_008);
    expect(e.totalBytes).toBe(e.weights.bytes + e.activations.bytes + e.lora.bytes + e.scratch.bytes);
    expect(e.largestBuffer).toEqual({
      name: 'model.embed_tokens.weight (49152, 576)',
      bytes: 49152 * 576 * 2,
    });
  });

  it('recompute keeps one block input per layer plus one block of workspace', () => {
    const lora = { rank: 4, targets: 'all-linear' as const };
    const full = estimateMemory(SMOLLM2_135M, { batch: 4, seq: 256, precision: 'f16', lora });
    const rec = estimateMemory(SMOLLM2_135M, { batch: 4, seq: 256, precision: 'f16', lora, recompute: true });
    expect(rec.activations.bytes).toBeLessThan(full.activations.bytes / 5);
    // Exactly: L − 1 fewer blocks of internals (everything per layer but its input x).
    const L = SMOLLM2_135M.layers;
    const perLayer = full.activations.items.filter((i) => i.count === L && !i.name.startsWith('x '));
    const internals = perLayer.reduce((sum, i) => sum + i.bytes, 0);
    expect(full.activations.bytes - rec.activations.bytes).toBe((L - 1) * internals);
  });

  it('stages every micro-batch and keeps as many moments as the optimizer has', () => {
    const lora = { rank: 4, targets: ['q_proj'] };
    const base = { batch: 2, seq: 64, precision: 'f32' as const, lora };
    const one = estimateMemory(SMOLLM2_135M, base);
    const four = estimateMemory(SMOLLM2_135M, { ...base, accum: 4 });
    expect(four.scratch.bytes - one.scratch.bytes).toBe(2 * 3 * 4 * 2 * 64);
    const sgd = estimateMemory(SMOLLM2_135M, { ...base, moments: optimizerMoments({ optimizer: 'sgd' }) });
    expect(one.lora.bytes - sgd.lora.bytes).toBe(2 * 4 * one.loraParameters);
    expect(optimizerMoments({ optimizer: 'sgd', momentum: 0.9 })).toBe(1);
    // LoRA dropout costs no memory: the masks are recomputed where they are applied.
    const dropout = estimateMemory(SMOLLM2_135M, { ...base, lora: { ...lora, dropout: 0.1 } });
    expect(dropout.activations.bytes).toBe(one.activations.bytes);
  });

  it('fits a 128 MiB binding for SmolLM2 but names the Qwen embedding that does not', () => {
    const limits = { maxBufferSize: 256 * MiB, maxStorageBufferBindingSize: 128 * MiB };
    const smol = estimateMemory(SMOLLM2_135M, { batch: 1, seq: 512, precision: 'f16' });
    expect(memoryProblems(smol, limits)).toEqual([]);
    expect(() => checkMemoryFits(smol, limits)).not.toThrow();
    const qwen = estimateMemory(QWEN25_05B, { batch: 1, seq: 256, precision: 'f16' });
    expect(() => checkMemoryFits(qwen, limits)).toThrow(
      "does not fit this device: weight 'model.embed_tokens.weight' (151936, 896) needs 259.7 MiB in one buffer; the device's maxStorageBufferBindingSize is 128.0 MiB",
    );
    expect(() => checkMemoryFits(smol, { ...limits, budgetBytes: 100 * MiB })).toThrow(
      /the step needs .* \(weights 256\.6 MiB, activations .*\), over the budget of 100\.0 MiB/,
    );
  });

  it('fits Qwen2.5-0.5B on a 512 MiB binding: the head needs one vocabulary chunk, not (B·T, V) logits', () => {
    const limits = { maxBufferSize: 1024 * MiB, maxStorageBufferBindingSize: 512 * MiB };
    const qwen = estimateMemory(QWEN25_05B, {
      batch: 4,
      seq: 512,
      precision: 'f16',
      lora: { rank: 16, targets: 'all-linear' },
      limits: { ...limits, minStorageBufferOffsetAlignment: 256 },
    });
    expect(memoryProblems(qwen, limits)).toEqual([]);
    const ce = qwen.activations.items.find((i) => i.name === 'ceScratch')!;
    expect(ce.bytes).toBeLessThan(4 * 2048 * 151936);
  });

  it("names the head's logits chunk when no chunk fits a binding, instead of failing without an account", () => {
    // 2^27 tokens: even one f32 logit per token is 512 MiB, over a 128 MiB binding.
    const huge = estimateMemory(SMOLLM2_135M, { batch: 2 ** 14, seq: 8192, precision: 'f16' });
    const problems = memoryProblems(huge, {
      maxBufferSize: 256 * MiB,
      maxStorageBufferBindingSize: 128 * MiB,
    });
    expect(problems.some((p) => p.startsWith("activation 'ceScratch'"))).toBe(true);
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
    // One u per layer: (N, Σr) f32 with the columns of c_attn, attn.c_proj and mlp.c_proj; none for c_fc.
    expect(e.activations.items.filter((i) => i.name === 'u').map((i) => [i.bytes, i.count])).toEqual([
      [4 * 64 * 3 * 4, 12],
    ]);
    expect(() =>
      estimateMemory(GPT2, { batch: 1, seq: 8, precision: 'f16', lora: { rank: 4, targets: ['q_proj'] } }),
    ).toThrow(
      "LoraConfig.targets: 'q_proj' matches no linear layer of this gpt2 model (its layers: c_attn, c_proj, c_fc)",
    );
    expect(() => estimateMemory(GPT2, { batch: 0, seq: 8, precision: 'f16' })).toThrow(
      'batch: must be a positive integer, got 0',
    );
    expect(() => estimateMemory(GPT2, { batch: 1, seq: 2048, precision: 'f16' })).toThrow(
      'seq: 2048 is longer than the 1024 positions',
    );
    expect(() => loraParameterCount(GPT2, { rank: 0, targets: ['c_attn'] })).toThrow(
      'LoraConfig.r: must be a whole number ≥ 1, got 0',
    );
  });
});
