// The flat f32 buffer that holds every LoRA parameter, and PEFT's initialisation of it.
//
// Layout: layer by layer (layer 0's adapters first), each layer's A (r, in) matrices in execution order, then its
// B (out, r) matrices, row-major as torch stores lora_A.weight / lora_B.weight. Every segment starts at a byte offset that is a multiple of
// LORA_ALIGN_BYTES = 256 (WebGPU's minStorageBufferOffsetAlignment), so the GPU binds segments directly; the
// gaps are zero and stay zero (optimizerSegments gives them lr and weight-decay multipliers of 0). Gradients
// and optimizer moments use the same layout, so one offset addresses a tensor in all of them.
//
// Init (PEFT, init_lora_weights=True): A ~ kaiming_uniform_(a=√5) on (r, in) = U(−1/√in, 1/√in), B = 0.
// Values come from Philox4x32-10, a counter-based generator: element j of tensor `name` is a pure function
// of (seed, name, j), so the initial adapter does not depend on the order tensors are created, on the rank of
// other tensors, or on anything that happens later (the number of steps, data order).

import type { AdaptedModule } from './config.ts';

export const LORA_ALIGN_BYTES = 256;
const ALIGN = LORA_ALIGN_BYTES / 4; // elements

export interface LoraSegment {
  /** Parameter name under the model, as PEFT names it without its 'base_model.model.' prefix. */
  name: string;
  /** Index into LoraLayout.modules. */
  module: number;
  kind: 'A' | 'B';
  /** Block index (layer-wise LR decay). */
  layer: number;
  /** [r, in] for A, [out, r] for B. */
  shape: [number, number];
  /** First element in the flat buffer; a multiple of 64 (256 bytes). */
  offset: number;
  /** Elements: shape[0] · shape[1]. */
  length: number;
  /** offset · 4. */
  byteOffset: number;
}

export interface LoraLayout {
  r: number;
  modules: AdaptedModule[];
  /** In buffer order: layer 0's A of each module, layer 0's B of each module, layer 1's ... */
  segments: LoraSegment[];
  /** Elements of the whole buffer, padding included (a multiple of 64). */
  totalElements: number;
  totalBytes: number;
  /** Elements that are parameters (sum of segment lengths). */
  paramCount: number;
}

function alignUp(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

export function loraLayout(modules: readonly AdaptedModule[], r: number): LoraLayout {
  if (!Number.isInteger(r) || r < 1)
    throw new RangeError(`loraLayout: r must be a whole number ≥ 1, got ${r}`);
  if (modules.length === 0) throw new RangeError('loraLayout: no modules to adapt');
  const segments: LoraSegment[] = [];
  const seen = new Set<string>();
  let offset = 0;
  let paramCount = 0;
  modules.forEach((m) => {
    if (seen.has(m.path)) throw new RangeError(`loraLayout: module '${m.path}' listed twice`);
    seen.add(m.path);
  });
  // Per layer, every A first, then every B: the A matrices of linears that share an input (q, k, v) lie at
  // equal strides, so one batched product computes all their x·Aᵀ (model/linear.ts loraDown).
  const layers = [...new Set(modules.map((m) => m.layer))];
  for (const layer of layers) {
    for (const kind of ['A', 'B'] as const) {
      modules.forEach((m, module) => {
        if (m.layer !== layer) return;
        const shape: [number, number] = kind === 'A' ? [r, m.inFeatures] : [m.outFeatures, r];
        const length = shape[0] * shape[1];
        segments.push({
          name: `${m.path}.lora_${kind}.weight`,
          module,
          kind,
          layer: m.layer,
          shape,
          offset,
          length,
          byteOffset: offset * 4,
        });
        paramCount += length;
        offset = alignUp(offset + length);
      });
    }
  }
  return { r, modules: [...modules], segments, totalElements: offset, totalBytes: offset * 4, paramCount };
}

/** A view of one segment of a flat buffer laid out by `layout`. */
export function segmentView(buffer: Float32Array, segment: LoraSegment): Float32Array {
  return buffer.subarray(segment.offset, segment.offset + segment.length);
}

/** Structurally the optimizer's ParamSegment (src/engine/kernels/optimizer.ts): consecutive, in buffer order. */
export interface OptimizerSegment {
  length: number;
  lrMult: number;
  wdMult: number;
}

/**
 * Consecutive segments covering the whole flat buffer, alignment gaps included (multipliers 0), for the
 * optimizer's segment table. `lrMultForLayer` gives layer-wise LR decay (see schedule.ts `layerDecay`);
 * `bRatio` is LoRA+'s: every B matrix learns at bRatio × the rate of its A (Hayou et al. 2024).
 */
export function optimizerSegments(
  layout: LoraLayout,
  lrMultForLayer: (layer: number) => number = () => 1,
  wdMult = 1,
  bRatio = 1,
): OptimizerSegment[] {
  const out: OptimizerSegment[] = [];
  let at = 0;
  for (const s of layout.segments) {
    if (s.offset > at) out.push({ length: s.offset - at, lrMult: 0, wdMult: 0 });
    out.push({ length: s.length, lrMult: lrMultForLayer(s.layer) * (s.kind === 'B' ? bRatio : 1), wdMult });
    at = s.offset + s.length;
  }
  if (layout.totalElements > at) out.push({ length: layout.totalElements - at, lrMult: 0, wdMult: 0 });
  return out;
}

// ---- Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11) ----

const PHILOX_M0 = 0xd2511f53;
const PHILOX_M1 = 0xcd9e8d57;
const PHILOX_W0 = 0x9e3779b9;
const PHILOX_W1 = 0xbb67ae85;

/** High 32 bits of the 64-bit product of two u32, exactly, in 16-bit limbs. */
function mulhi32(a: number, b: number): number {
  const aL = a & 0xffff;
  const aH = a >>> 16;
  const bL = b & 0xffff;
  const bH = b >>> 16;
  const lh = aL * bH;
  const hl = aH * bL;
  const mid = ((aL * bL) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (aH * bH + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0;
}

/** Philox4x32 with 10 rounds: four u32 from a 128-bit counter and a 64-bit key. Writes into `out`. */
export function philox4x32(
  counter: readonly [number, number, number, number],
  key: readonly [number, number],
  out: Uint32Array = new Uint32Array(4),
): Uint32Array {
  let [c0, c1, c2, c3] = counter;
  let [k0, k1] = key;
  c0 >>>= 0;
  c1 >>>= 0;
  c2 >>>= 0;
  c3 >>>= 0;
  k0 >>>= 0;
  k1 >>>= 0;
  for (let round = 0; round < 10; round++) {
    if (round > 0) {
      k0 = (k0 + PHILOX_W0) >>> 0;
      k1 = (k1 + PHILOX_W1) >>> 0;
    }
    const hi0 = mulhi32(PHILOX_M0, c0);
    const lo0 = Math.imul(PHILOX_M0, c0) >>> 0;
    const hi1 = mulhi32(PHILOX_M1, c2);
    const lo1 = Math.imul(PHILOX_M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
  return out;
}

/** Two independent 32-bit FNV-1a hashes of a name (64 bits of stream identity). */
function nameStream(name: string): [number, number] {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ 0x5bd1e995;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x01000193) ^ (h2 >>> 15);
  }
  return [h1 >>> 0, h2 >>> 0];
}

function seedKey(seed: number): [number, number] {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`lora init: seed must be a whole number ≥ 0, got ${seed}`);
  }
  return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
}

/**
 * Fills `out` with U(−bound, bound) from the stream (seed, name): element j is word j mod 4 of Philox block
 * ⌊j/4⌋ with counter (⌊j/4⌋, name hash, 0). 24 random bits per value, so every value is an exact f32 before
 * scaling.
 */
export function uniformStream(seed: number, name: string, bound: number, out: Float32Array): Float32Array {
  const key = seedKey(seed);
  const [s0, s1] = nameStream(name);
  const words = new Uint32Array(4);
  const ctr: [number, number, number, number] = [0, s0, s1, 0];
  for (let j = 0; j < out.length; j += 4) {
    ctr[0] = j / 4;
    philox4x32(ctr, key, words);
    const n = Math.min(4, out.length - j);
    for (let w = 0; w < n; w++) {
      const u = (words[w] >>> 8) / 16777216; // [0, 1)
      out[j + w] = bound * (2 * u - 1);
    }
  }
  return out;
}

/** PEFT's A bound: kaiming_uniform_(a=√5) gives gain √(2/(1+5)) and bound gain·√3/√fan_in = 1/√in. */
export function loraABound(inFeatures: number): number {
  return 1 / Math.sqrt(inFeatures);
}

/**
 * A new flat buffer with every A drawn from its own stream and every B (and gap) zero. The same seed gives
 * the same A for the same parameter name whatever else is in the layout.
 */
export function initLoraParams(layout: LoraLayout, seed: number): Float32Array<ArrayBuffer> {
  seedKey(seed);
  const buffer = new Float32Array(layout.totalElements);
  for (const s of layout.segments) {
    if (s.kind !== 'A') continue;
    uniformStream(seed, s.name, loraABound(s.shape[1]), segmentView(buffer, s));
  }
  return buffer;
}
