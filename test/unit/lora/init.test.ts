import { describe, expect, it } from 'vitest';
import { ALL_LINEAR, resolveTargets, type LoraModelShape } from '../../../src/engine/lora/config.ts';
import {
  LORA_ALIGN_BYTES,
  initLoraParams,
  loraLayout,
  optimizerSegments,
  philox4x32,
  segmentView,
} from '../../../src/engine/lora/init.ts';

const tiny: LoraModelShape = {
  family: 'llama',
  hidden: 40,
  ffn: 72,
  heads: 4,
  kvHeads: 2,
  headDim: 10,
  layers: 3,
};
const cfg = { r: 5, alpha: 10, dropout: 0, rslora: false, targets: ALL_LINEAR } as const;

const hex = (a: Uint32Array): string[] => [...a].map((x) => x.toString(16).padStart(8, '0'));

describe('Philox4x32-10', () => {
  it('reproduces the Random123 known-answer vectors', () => {
    expect(hex(philox4x32([0, 0, 0, 0], [0, 0]))).toEqual(['6627e8d5', 'e169c58d', 'bc57ac4c', '9b00dbd8']);
    const ff = 0xffffffff;
    expect(hex(philox4x32([ff, ff, ff, ff], [ff, ff]))).toEqual([
      '408f276d',
      '41c83b0e',
      'a20bc7c6',
      '6d5451fd',
    ]);
    expect(
      hex(philox4x32([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])),
    ).toEqual(['d16cfe09', '94fdcceb', '5001e420', '24126ea1']);
  });
});

describe('flat LoRA layout', () => {
  const mods = resolveTargets(cfg, tiny);
  const layout = loraLayout(mods, cfg.r);

  it('aligns every segment to 256 bytes, a layer’s A (r, in) matrices then its B (out, r), without overlap', () => {
    expect(layout.segments).toHaveLength(2 * mods.length);
    let end = 0;
    for (const s of layout.segments) {
      expect(s.byteOffset % LORA_ALIGN_BYTES).toBe(0);
      expect(s.byteOffset).toBe(4 * s.offset);
      expect(s.offset).toBeGreaterThanOrEqual(end);
      expect(s.length).toBe(s.shape[0] * s.shape[1]);
      end = s.offset + s.length;
    }
    expect(layout.totalElements).toBeGreaterThanOrEqual(end);
    expect(layout.totalBytes % LORA_ALIGN_BYTES).toBe(0);
    const [a] = layout.segments;
    expect([a.name, a.kind, a.shape, a.layer]).toEqual([
      'model.layers.0.self_attn.q_proj.lora_A.weight',
      'A',
      [5, 40],
      0,
    ]);
    // Layer 0's A matrices come first, in execution order, then its B matrices: q, k and v's A at one stride.
    const layer0 = layout.segments.filter((s) => s.layer === 0);
    const firstB = layer0.findIndex((s) => s.kind === 'B');
    expect(layer0.slice(0, firstB).every((s) => s.kind === 'A')).toBe(true);
    expect(layer0.slice(firstB).every((s) => s.kind === 'B')).toBe(true);
    expect(layer0[firstB].name).toBe('model.layers.0.self_attn.q_proj.lora_B.weight');
    const [q, k, v] = layer0;
    expect(k.offset - q.offset).toBe(v.offset - k.offset);
    expect(layout.segments.at(-1)?.layer).toBe(2);
    expect(layout.paramCount).toBe(layout.segments.reduce((n, s) => n + s.length, 0));
  });

  it('gives the optimizer consecutive segments with zero multipliers on the gaps', () => {
    const segs = optimizerSegments(layout, (l) => 0.5 ** (2 - l), 1);
    expect(segs.reduce((n, s) => n + s.length, 0)).toBe(layout.totalElements);
    const params = segs.filter((s) => s.lrMult > 0);
    expect(params.map((s) => s.length)).toEqual(layout.segments.map((s) => s.length));
    expect(params[0].lrMult).toBe(0.25);
    expect(params.at(-1)?.lrMult).toBe(1);
    expect(segs.filter((s) => s.lrMult === 0).every((s) => s.wdMult === 0)).toBe(true);
  });

  it('initialises A in ±1/√in with the uniform moments, B and gaps at zero', () => {
    const buf = initLoraParams(layout, 1234);
    const covered = new Uint8Array(layout.totalElements);
    for (const s of layout.segments) {
      const v = segmentView(buf, s);
      covered.fill(1, s.offset, s.offset + s.length);
      if (s.kind === 'B') {
        expect(v.every((x) => x === 0)).toBe(true);
        continue;
      }
      const bound = 1 / Math.sqrt(s.shape[1]);
      expect(v.every((x) => Math.abs(x) <= bound)).toBe(true);
    }
    for (let i = 0; i < buf.length; i++) if (!covered[i]) expect(buf[i]).toBe(0);
    // Moments over one big A: mean 0, variance bound²/3.
    const big = loraLayout(
      [{ layer: 0, name: 'x', path: 'x', inFeatures: 4096, outFeatures: 1, fanInFanOut: false }],
      16,
    );
    const a = segmentView(initLoraParams(big, 7), big.segments[0]);
    const bound = 1 / 64;
    let mean = 0;
    let sq = 0;
    for (const x of a) {
      mean += x;
      sq += x * x;
    }
    mean /= a.length;
    const variance = sq / a.length - mean * mean;
    expect(Math.abs(mean)).toBeLessThan((4 * bound) / Math.sqrt(3 * a.length));
    expect(variance / ((bound * bound) / 3)).toBeCloseTo(1, 1);
  });

  it('is deterministic per seed and independent of creation order and of other tensors', () => {
    const one = initLoraParams(layout, 42);
    expect(initLoraParams(layout, 42)).toEqual(one);
    expect(initLoraParams(layout, 43)).not.toEqual(one);
    const reversed = loraLayout([...mods].reverse(), cfg.r);
    const two = initLoraParams(reversed, 42);
    const subset = loraLayout(resolveTargets({ ...cfg, targets: ['v_proj'] }, tiny), cfg.r);
    const three = initLoraParams(subset, 42);
    for (const other of [
      { layout: reversed, buf: two },
      { layout: subset, buf: three },
    ]) {
      for (const s of other.layout.segments) {
        const mine = layout.segments.find((t) => t.name === s.name);
        expect(mine).toBeDefined();
        if (mine) expect(segmentView(other.buf, s)).toEqual(segmentView(one, mine));
      }
    }
    // Different tensors of the same shape draw different values.
    const [qA, , kA] = layout.segments;
    expect(segmentView(one, qA).slice(0, 8)).not.toEqual(segmentView(one, kA).slice(0, 8));
  });

  it('refuses bad seeds, ranks and duplicate modules', () => {
    expect(() => initLoraParams(layout, -1)).toThrow(/seed/);
    expect(() => loraLayout(mods, 0)).toThrow(/r must be/);
    expect(() => loraLayout([mods[0], mods[0]], 4)).toThrow(/listed twice/);
  });
});
