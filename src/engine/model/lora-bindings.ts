// The model's view of a flat LoRA buffer: one LoraAdapter per adapted module, its A and B bound as byte
// ranges of the parameter buffer (segments are 256-byte aligned for exactly this) and dA/dB of the gradients.

import type { BufferBinding } from '../gpu/index.ts';
import { loraScaling, type LoraConfig } from '../lora/config.ts';
import type { LoraLayout } from '../lora/init.ts';
import type { LoraAdapter } from './linear.ts';

/**
 * Adapters keyed by HF module path. Without `grads` (inference) dA/dB alias the weights; they are only written
 * by a backward pass. `dropoutSeed` keys each adapter's dropout stream (its module index).
 */
export function loraAdapters(
  config: LoraConfig,
  layout: LoraLayout,
  params: GPUBuffer,
  grads: GPUBuffer | null,
  dropoutSeed = 0,
): Map<string, LoraAdapter> {
  const scaling = loraScaling(config);
  const range = (buffer: GPUBuffer, s: { byteOffset: number; length: number }): BufferBinding => ({
    buffer,
    offset: s.byteOffset,
    size: 4 * s.length,
  });
  const adapters = new Map<string, LoraAdapter>();
  layout.modules.forEach((module, i) => {
    const [a, b] = layout.segments.filter((s) => s.module === i);
    adapters.set(module.path, {
      r: config.r,
      scaling,
      a: range(params, a),
      b: range(params, b),
      dA: range(grads ?? params, a),
      dB: range(grads ?? params, b),
      dropout: config.dropout > 0 ? { p: config.dropout, seed: dropoutSeed >>> 0, stream: i } : undefined,
    });
  });
  return adapters;
}
