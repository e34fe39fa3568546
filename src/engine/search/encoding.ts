// Unit-cube encoding of parameter sets for the GP: numeric params take one coordinate in [0,1] (log space
// for log params, ints widened by half a step so that rounding is fair), categoricals one-hot. Inactive
// conditional params take a fixed neutral code (0.5, or all-zero one-hot) so they add no spurious distance.
import { fromUnit, isActive, toUnit } from './space.ts';
import type { Params, SampledDef, SearchSpace } from './space.ts';

export interface Slot {
  def: SampledDef;
  /** First coordinate of this param. */
  offset: number;
  /** Coordinates it takes (1, or the number of choices). */
  width: number;
}

export class UnitEncoding {
  readonly dims: number;
  readonly slots: readonly Slot[];
  /** Coordinates that vary continuously (numeric params), for gradient refinement. */
  readonly continuous: readonly number[];

  constructor(readonly space: SearchSpace) {
    const slots: Slot[] = [];
    const continuous: number[] = [];
    let offset = 0;
    for (const def of space.sampled) {
      const width = def.kind === 'categorical' ? def.choices.length : 1;
      if (def.kind !== 'categorical') continuous.push(offset);
      slots.push({ def, offset, width });
      offset += width;
    }
    this.dims = offset;
    this.slots = slots;
    this.continuous = continuous;
  }

  encode(params: Params, out: Float64Array = new Float64Array(this.dims)): Float64Array {
    for (const { def, offset, width } of this.slots) {
      const v = params[def.name];
      if (def.kind === 'categorical') {
        for (let k = 0; k < width; k++) out[offset + k] = 0;
        const idx = v === undefined ? -1 : def.choices.indexOf(v);
        if (idx >= 0) out[offset + idx] = 1;
      } else {
        out[offset] = typeof v === 'number' ? toUnit(def, v) : 0.5;
      }
    }
    return out;
  }

  /** Sampled params of a point (categorical = argmax of its block), with inactive ones left out. */
  decode(x: ArrayLike<number>): Params {
    const out: Params = {};
    for (const { def, offset, width } of this.slots) {
      if (!isActive(def, out)) continue;
      if (def.kind === 'categorical') {
        let best = 0;
        for (let k = 1; k < width; k++) if (x[offset + k] > x[offset + best]) best = k;
        out[def.name] = def.choices[best];
      } else {
        out[def.name] = fromUnit(def, x[offset]);
      }
    }
    return out;
  }

  /** Round a point onto the space (ints, one-hot, neutral codes for inactive params), in place. */
  canonicalize(x: Float64Array): Float64Array {
    return this.encode(this.decode(x), x);
  }
}
