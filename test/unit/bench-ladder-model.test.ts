import { describe, expect, it } from 'vitest';
import {
  benchConfig,
  LADDER_NAMES,
  ladderModel,
  MIN_BENCH_VOCAB,
  randomCheckpoint,
} from '../../bench/ladder-model.ts';
import { memoryFiles } from '../../src/engine/checkpoint/byte-source.ts';
import { toFloat32 } from '../../src/engine/checkpoint/dtypes.ts';
import { parseModelConfig, type ModelSpec } from '../../src/engine/model/config.ts';
import { LADDER, ladderSpec } from '../../src/engine/model/ladder.ts';
import { estimateMemory } from '../../src/engine/model/memory.ts';
import { openModel } from '../../src/engine/model/open.ts';
import { tinyTokenizer } from '../fixtures/tiny-models.ts';

const parameters = (spec: ModelSpec) =>
  estimateMemory(spec, { batch: 1, seq: 16, precision: 'f16' }).parameters;
const entry = (name: string) => {
  const found = ladderModel(name);
  if (!found) throw new Error(`no ladder model ${name}`);
  return found;
};

describe("bench:train's ladder models", () => {
  it('names every ladder entry once, by its repo name', () => {
    expect(new Set(LADDER_NAMES).size).toBe(LADDER.length);
    expect(LADDER_NAMES).toEqual(expect.arrayContaining(['qwen3-0.6b', 'llama-3.2-1b', 'gemma-3-1b']));
    expect(ladderModel('gemma-3-1b')?.id).toBe('google/gemma-3-1b-pt');
    expect(ladderModel('smol')).toBeUndefined();
  });

  it.each(LADDER_NAMES)(
    '%s: the full config parses to the ladder entry’s shapes and parameter count',
    (name) => {
      const e = entry(name);
      const spec = parseModelConfig(benchConfig(e));
      const ladder = ladderSpec(e)!;
      for (const key of [
        'family',
        'layers',
        'hidden',
        'heads',
        'kvHeads',
        'headDim',
        'ffn',
        'vocab',
      ] as const) {
        expect(spec[key], key).toEqual(ladder[key]);
      }
      expect(parameters(spec)).toBe(parameters(ladder));
      expect(spec.torchDtype).toBe('float16');
    },
  );

  it("keeps each family's structure, cut to the depth asked", () => {
    const gemma = parseModelConfig(benchConfig(entry('gemma-3-1b')));
    expect(gemma.layerWindows?.map((w) => w ?? 'global')).toEqual(
      Array.from({ length: 26 }, (_, l) => ((l + 1) % 6 === 0 ? 'global' : 512)),
    );
    expect(gemma.slidingRope?.theta).toBe(10000);
    expect(gemma.attentionScale).toBeCloseTo(256 ** -0.5);
    const gemmaCut = parseModelConfig(benchConfig(entry('gemma-3-270m'), { layers: 7 }));
    expect(gemmaCut.layerWindows).toEqual([512, 512, 512, 512, 512, null, 512]);

    const qwen3 = parseModelConfig(benchConfig(entry('qwen3-0.6b'), { layers: 3 }));
    expect([qwen3.layers, qwen3.headDim, qwen3.qkNorm, qwen3.tieWordEmbeddings]).toEqual([
      3,
      128,
      true,
      true,
    ]);
    const llama = parseModelConfig(benchConfig(entry('llama-3.2-1b')));
    expect(llama.ropeScaling).not.toBeNull();
    expect(llama.tieWordEmbeddings).toBe(true);
    expect(parseModelConfig(benchConfig(entry('smollm3-3b'), { layers: 9 })).noRopeLayers).toEqual([3, 7]);
    expect(parseModelConfig(benchConfig(entry('qwen2.5-0.5b'))).qkvBias).toBe(true);
    expect(parseModelConfig(benchConfig(entry('qwen3-4b'), { vocab: 4096 })).vocab).toBe(4096);
  });

  it('refuses a depth or vocabulary the model does not have, naming the flag and the range', () => {
    const qwen = entry('qwen3-0.6b');
    expect(() => benchConfig(qwen, { layers: 0 })).toThrow('--layers: expected an integer from 1 to 28');
    expect(() => benchConfig(qwen, { layers: 29 })).toThrow('--layers: expected an integer from 1 to 28');
    expect(() => benchConfig(qwen, { layers: 1.5 })).toThrow('--layers');
    expect(() => benchConfig(qwen, { vocab: MIN_BENCH_VOCAB - 1 })).toThrow(
      `--vocab: expected an integer from ${MIN_BENCH_VOCAB} to 151936`,
    );
    expect(() => benchConfig(qwen, { vocab: 151937 })).toThrow('--vocab');
  });

  // One model per family: every tensor the loader expects, with the shape it expects, and values in range.
  it.each([
    ['smollm2-135m', 'F16'],
    ['qwen3-0.6b', 'BF16'],
    ['llama-3.2-1b', 'BF16'],
    ['gemma-3-270m', 'F16'],
    ['gemma-3-1b', 'BF16'],
    ['smollm3-3b', 'F16'],
    ['qwen2.5-0.5b', 'F16'],
  ] as const)('%s: its random %s checkpoint opens as a user’s would', async (name, dtype) => {
    const config = benchConfig(entry(name), { layers: 1, vocab: MIN_BENCH_VOCAB }, dtype);
    const spec = parseModelConfig(config);
    expect(spec.torchDtype).toBe(dtype === 'F16' ? 'float16' : 'bfloat16');
    const tokenizer = tinyTokenizer(false);
    const opened = await openModel(
      memoryFiles(name, {
        'config.json': JSON.stringify(config),
        'model.safetensors': randomCheckpoint(spec, dtype),
        'tokenizer.json': JSON.stringify(tokenizer.json),
        'tokenizer_config.json': JSON.stringify(tokenizer.config),
      }),
    );
    expect(opened.weights.parameterCount).toBe(parameters(spec));
    expect([...opened.checkpoint.tensors.values()].every((t) => t.dtype === dtype)).toBe(true);

    const values = async (tensor: string) => {
      const info = opened.checkpoint.tensors.get(tensor)!;
      return toFloat32(await opened.checkpoint.read(tensor), info.dtype);
    };
    const range = (v: Float32Array) =>
      v.reduce(([lo, hi], x) => [Math.min(lo, x), Math.max(hi, x)], [Infinity, -Infinity]);
    const [qMin, qMax] = range(await values('model.layers.0.self_attn.q_proj.weight'));
    // Rounding to the stored dtype moves a value by at most half a step: 2^-9 relative in bf16, 2^-12 in f16.
    const slack = 1 + (dtype === 'BF16' ? 2 ** -9 : 2 ** -12);
    const bound = 1 / Math.sqrt(spec.hidden);
    expect(qMin).toBeGreaterThanOrEqual(-bound * slack);
    expect(qMax).toBeLessThanOrEqual(bound * slack);
    expect(qMax - qMin).toBeGreaterThan(bound); // spread over the range, not one value
    const norm = range(await values('model.norm.weight'));
    // Gemma stores w of its (1 + w) norms, around 0; the others the scale, around 1.
    const centre = spec.family === 'gemma3' ? 0 : 1;
    const rounding = (centre + 0.1) * (slack - 1);
    expect(norm[0]).toBeGreaterThanOrEqual(centre - 0.1 - rounding);
    expect(norm[1]).toBeLessThanOrEqual(centre + 0.1 + rounding);
  });
});
