// ONNX Runtime (wasm backend, in Node) as a reference independent of ours: the tiny models exported to a
// float32 ONNX graph by test/reference/onnx.ts, run by onnxruntime-web, against the f64 reference forward.

import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-web';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseModelConfig } from '../../../src/engine/model/config.ts';
import type { SafetensorsDtype } from '../../../src/engine/checkpoint/dtypes.ts';
import { expectClose } from '../../reference/compare.ts';
import { exportOnnx } from '../../reference/onnx.ts';
import { randomArray } from '../../reference/random.ts';
import type { RefLora, RefTensor } from '../../reference/transformer.ts';
import { crossEntropyRef, transformerForwardRef } from '../../reference/transformer.ts';
import type { TinyArch } from '../../fixtures/tiny-models.ts';
import { buildTinyModel } from '../../fixtures/tiny-models.ts';

beforeAll(() => {
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = fileURLToPath(
    new URL('../../../node_modules/onnxruntime-web/dist/', import.meta.url),
  );
});

async function runOrt(model: Uint8Array, tokens: number[], B: number, T: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(model);
  try {
    const input = new ort.Tensor(
      'int64',
      BigInt64Array.from(tokens, (t) => BigInt(t)),
      [B, T],
    );
    const out = await session.run({ input_ids: input });
    return out.logits.data as Float32Array;
  } finally {
    await session.release();
  }
}

/** Random adapters (B non-zero, unlike PEFT's init, so they change the output) on `modules`. */
function randomLora(modules: [string, number, number][], r: number, seed: number): RefLora {
  const adapters = new Map<string, { A: RefTensor; B: RefTensor }>();
  modules.forEach(([name, inF, outF], i) => {
    adapters.set(name, {
      A: { shape: [r, inF], data: randomArray(r * inF, seed + 2 * i, 1 / Math.sqrt(inF)) },
      B: { shape: [outF, r], data: randomArray(outF * r, seed + 2 * i + 1, 0.5) },
    });
  });
  return { scaling: 16 / r, adapters };
}

const B = 2;
const T = 9;
const tokensFor = (seed: number) => Array.from({ length: B * T }, (_, i) => (i * 97 + seed * 31 + 7) % 289);

describe('f64 reference forward vs ONNX Runtime (wasm, f32)', () => {
  const cases: [TinyArch, SafetensorsDtype][] = [
    ['llama', 'F32'],
    ['qwen2', 'BF16'],
    ['gpt2', 'F16'],
    ['mistral', 'BF16'],
    ['llama3', 'BF16'],
    ['qwen3', 'F32'],
    ['smollm3', 'BF16'],
  ];
  for (const [arch, dtype] of cases) {
    it(`${arch} (${dtype} weights): logits agree to f32 precision`, async () => {
      const model = buildTinyModel({ arch, dtype, seed: 3 });
      const spec = parseModelConfig(model.config);
      const tokens = tokensFor(1);
      const ref = transformerForwardRef(spec, model.tensors, tokens, B, T);
      const got = await runOrt(exportOnnx(spec, model.tensors, B, T), tokens, B, T);
      const err = expectClose(`${arch} logits`, got, ref, 1e-4);
      expect(err).toBeLessThan(1e-4);
      // Sanity: logits are not degenerate (a broken forward tends to flatten them).
      const loss = crossEntropyRef(ref, tokens.slice(1).concat([0]), spec.vocab);
      expect(loss).toBeGreaterThan(1);
      expect(Number.isFinite(loss)).toBe(true);
    });
  }

  it('llama with unmerged LoRA on q, v and down: both references agree and the adapter matters', async () => {
    const model = buildTinyModel({ arch: 'llama', seed: 5 });
    const spec = parseModelConfig(model.config);
    const lora = randomLora(
      [
        ['model.layers.0.self_attn.q_proj', 64, 64],
        ['model.layers.1.self_attn.v_proj', 64, 32],
        ['model.layers.1.mlp.down_proj', 96, 64],
      ],
      4,
      100,
    );
    const tokens = tokensFor(2);
    const ref = transformerForwardRef(spec, model.tensors, tokens, B, T, { lora });
    const base = transformerForwardRef(spec, model.tensors, tokens, B, T);
    const got = await runOrt(exportOnnx(spec, model.tensors, B, T, { lora }), tokens, B, T);
    expectClose('llama+lora logits', got, ref, 1e-4);
    let diff = 0;
    for (let i = 0; i < ref.length; i++) diff = Math.max(diff, Math.abs(ref[i] - base[i]));
    expect(diff).toBeGreaterThan(1e-2);
  });

  it('gpt2 (no transformer. prefix) with LoRA on c_attn and mlp.c_fc', async () => {
    const model = buildTinyModel({ arch: 'gpt2', seed: 6, unprefixed: true });
    const spec = parseModelConfig(model.config);
    const lora = randomLora(
      [
        ['h.0.attn.c_attn', 64, 192],
        ['h.1.mlp.c_fc', 64, 256],
      ],
      2,
      200,
    );
    const tokens = tokensFor(3);
    const ref = transformerForwardRef(spec, model.tensors, tokens, B, T, { lora, prefix: '' });
    const got = await runOrt(exportOnnx(spec, model.tensors, B, T, { lora, prefix: '' }), tokens, B, T);
    expectClose('gpt2+lora logits', got, ref, 1e-4);
  });
});

describe('f64 reference forward', () => {
  it('is causal: a later token does not change earlier logits', () => {
    const model = buildTinyModel({ arch: 'qwen2', seed: 7 });
    const spec = parseModelConfig(model.config);
    const a = tokensFor(4);
    const b = [...a];
    b[T - 1] = (b[T - 1] + 1) % 289;
    const la = transformerForwardRef(spec, model.tensors, a, B, T);
    const lb = transformerForwardRef(spec, model.tensors, b, B, T);
    const V = spec.vocab;
    expect(Array.from(la.subarray(0, (T - 1) * V))).toEqual(Array.from(lb.subarray(0, (T - 1) * V)));
    expect(la[(T - 1) * V]).not.toBe(lb[(T - 1) * V]);
  });
});
