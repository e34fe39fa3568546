import { describe, expect, it } from 'vitest';
import {
  LADDER,
  ladderRows,
  pendingLadderEntries,
  scaleUpSibling,
} from '../../../src/engine/model/ladder.ts';

const RUN = { batch: 4, seq: 256, precision: 'f16', lora: { rank: 16, targets: 'all-linear' } } as const;
const GIB = 2 ** 30;
const limits = (gib: number) => ({
  maxBufferSize: 4 * GIB,
  maxStorageBufferBindingSize: 4 * GIB,
  budgetBytes: gib * GIB,
});

describe('the model ladder', () => {
  it('counts the parameters the model cards state, from the configs alone', () => {
    const params = new Map(ladderRows(RUN).map((r) => [r.entry.id, r.parameters]));
    expect(params.get('HuggingFaceTB/SmolLM2-135M')).toBe(134_515_008);
    expect(params.get('meta-llama/Llama-3.2-1B')).toBe(1_235_814_400);
    expect(params.get('Qwen/Qwen2.5-0.5B')).toBe(494_032_768);
    expect(params.get('Qwen/Qwen3-0.6B')).toBe(596_049_920);
    expect(params.get('google/gemma-3-270m')).toBe(268_098_176);
    expect(params.get('google/gemma-3-1b-pt')).toBe(999_885_952);
  });

  it('lists every entry: each family of the ladder loads in this build (Gemma 3 included)', () => {
    const families = new Set(ladderRows(RUN).map((r) => r.spec.family));
    expect([...families].sort()).toEqual(['gemma3', 'llama', 'qwen2', 'qwen3', 'smollm3']);
    expect(pendingLadderEntries()).toEqual([]);
    expect(ladderRows(RUN).length).toBe(LADDER.length);
    expect(scaleUpSibling('google/gemma-3-270m')?.id).toBe('google/gemma-3-1b-pt');
  });

  it('sorts each row into fits / needs recompute / does not fit against the GPU memory', () => {
    const fit = (gib: number) =>
      new Map(ladderRows({ ...RUN, limits: limits(gib) }).map((r) => [r.entry.id, r.fit]));
    const at4 = fit(4);
    expect(at4.get('HuggingFaceTB/SmolLM2-135M')).toBe('fits');
    // Llama-3.2-1B: 3.8 GiB with every block's activations, 2.8 GiB recomputing them.
    expect(at4.get('meta-llama/Llama-3.2-1B')).toBe('fits');
    expect(fit(3).get('meta-llama/Llama-3.2-1B')).toBe('needs recompute');
    expect(at4.get('Qwen/Qwen3-4B')).toBe('does not fit');
    expect(ladderRows(RUN).every((r) => r.fit === null)).toBe(true);
    for (const r of ladderRows(RUN)) expect(r.recomputed.totalBytes).toBeLessThan(r.estimate.totalBytes);
  });

  it('names the next size up in the same ladder', () => {
    expect(scaleUpSibling('HuggingFaceTB/SmolLM2-135M')?.id).toBe('HuggingFaceTB/SmolLM2-360M');
    expect(scaleUpSibling('huggingfacetb/smollm2-360m')?.id).toBe('HuggingFaceTB/SmolLM2-1.7B');
    expect(scaleUpSibling('Qwen/Qwen3-0.6B')?.id).toBe('Qwen/Qwen3-1.7B');
    expect(scaleUpSibling('meta-llama/Llama-3.2-1B')?.id).toBe('meta-llama/Llama-3.2-3B');
    expect(scaleUpSibling('HuggingFaceTB/SmolLM2-135M-Instruct')?.id).toBe('HuggingFaceTB/SmolLM2-360M');
    expect(scaleUpSibling('Qwen/Qwen2.5-0.5B-Instruct')?.id).toBe('Qwen/Qwen2.5-1.5B');
    expect(scaleUpSibling('Qwen/Qwen3-4B')).toBeNull(); // the top
    expect(scaleUpSibling('someone/else')).toBeNull();
    expect(scaleUpSibling('constructor')).toBeNull();
  });
});
