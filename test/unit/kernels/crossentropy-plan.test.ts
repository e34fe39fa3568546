// The chunked cross-entropy's plan at Gemma 3's 262,144-token vocabulary: the (N, V) logits never fit one
// binding, so the head must run in chunks that each fit, start on the storage alignment and cover V exactly.
import { describe, expect, it } from 'vitest';
import { crossEntropyPlan, DEFAULT_CE_CHUNK } from '../../../src/engine/kernels/crossentropy.ts';

const GEMMA3_VOCAB = 262_144;
// The WebGPU defaults every device has.
const limits = {
  minStorageBufferOffsetAlignment: 256,
  maxStorageBufferBindingSize: 2 ** 27,
  maxBufferSize: 2 ** 28,
};

describe('crossEntropyPlan at a 262,144-token vocabulary (Gemma 3)', () => {
  // Gemma-3-270M (C = 640) and 1B (C = 1152); a batch of 4 × 256 tokens, and 8 × 1024 (the logits chunk
  // shrinks to fit a binding).
  const cases = [640, 1152].flatMap((C) =>
    (['f16', 'f32'] as const).flatMap((dtype) => [1024, 8192].map((N) => [C, dtype, N] as const)),
  );

  it.each(cases)('C = %i, W in %s, N = %i: chunks that fit, aligned, covering V', (C, dtype, N) => {
    const V = GEMMA3_VOCAB;
    const plan = crossEntropyPlan({ limits }, { N, C, V }, dtype);
    const rowBytes = C * (dtype === 'f16' ? 2 : 4);
    expect(4 * N * V).toBeGreaterThan(limits.maxStorageBufferBindingSize); // unchunked logits cannot bind
    expect(plan.chunk).toBeLessThanOrEqual(DEFAULT_CE_CHUNK);
    expect(4 * N * plan.chunk).toBeLessThanOrEqual(limits.maxStorageBufferBindingSize);
    expect(rowBytes * plan.chunk).toBeLessThanOrEqual(limits.maxStorageBufferBindingSize);
    expect(plan.chunks).toBe(Math.ceil(V / plan.chunk));
    expect((plan.chunks - 1) * plan.chunk).toBeLessThan(V);
    for (let c = 0; c < plan.chunks; c++) expect((c * plan.chunk * rowBytes) % 256).toBe(0);
    expect(plan.scratchBytes).toBeLessThanOrEqual(limits.maxBufferSize);
    if (N === 8192)
      expect(plan.chunk).toBe(4096); // 128 MiB / (4 bytes × 8192 rows)
    else expect(plan.chunks).toBe(GEMMA3_VOCAB / DEFAULT_CE_CHUNK);
  });
});
