// Uniform structs are packed by hand in WGSL declaration order. Every field tunelab uses is 4 bytes
// (u32, i32, f32), so the layout is a plain array of words; the struct is padded to 16 bytes.
//
// A word may be a StepScalar: a value that changes from step to step (the learning rate, the loss scale, the
// step's token normaliser). Its struct is keyed by the scalar's identity, not its value, so it keeps one slot and
// one bind group for the whole run and a recorded step can be replayed as is; the command recorder writes the
// scalar's current value into that slot at every submit.

let nextScalarId = 1;

/** A per-step f32 that uniforms read at submit time (see above). */
export class StepScalar {
  readonly id = nextScalarId++;
  #value: number;

  /** `compute` makes a derived scalar (a product or inverse of others), evaluated at every read. */
  constructor(
    value = 0,
    readonly compute?: () => number,
  ) {
    this.#value = value;
  }

  get value(): number {
    return this.compute ? this.compute() : this.#value;
  }

  set value(value: number) {
    if (this.compute) throw new Error('a derived StepScalar cannot be set');
    this.#value = value;
  }
}

/** A number, or a StepScalar read when the step is submitted. */
export type Scalar = number | StepScalar;

export function scalarValue(x: Scalar): number {
  return typeof x === 'number' ? x : x.value;
}

/**
 * Derived scalars made once per (operation, operands), held by their first StepScalar operand: the same operands
 * give the same identity, so the same uniform key, and a finished run's scalars are collected with it.
 */
const derived = new WeakMap<StepScalar, Map<string, StepScalar>>();

function derive(owner: StepScalar, key: string, compute: () => number): StepScalar {
  let byKey = derived.get(owner);
  if (!byKey) derived.set(owner, (byKey = new Map()));
  let scalar = byKey.get(key);
  if (!scalar) byKey.set(key, (scalar = new StepScalar(0, compute)));
  return scalar;
}

const scalarKey = (x: Scalar): string => (typeof x === 'number' ? `n${x}` : `s${x.id}`);

/** a · b: a number when both are numbers, else a derived StepScalar. */
export function scalarProduct(a: Scalar, b: Scalar): Scalar {
  if (typeof a === 'number' && typeof b === 'number') return a * b;
  const owner = typeof a === 'number' ? (b as StepScalar) : a;
  return derive(owner, `*${scalarKey(a)},${scalarKey(b)}`, () => scalarValue(a) * scalarValue(b));
}

/** 1 / a: a number when a is one, else a derived StepScalar. */
export function scalarInverse(a: Scalar): Scalar {
  if (typeof a === 'number') return 1 / a;
  return derive(a, '/', () => 1 / a.value);
}

export class Uniforms {
  readonly #words: Scalar[] = [];
  readonly #types: ('u32' | 'i32' | 'f32')[] = [];
  /** Holds a StepScalar: its slot is rewritten at every submit. */
  live = false;

  u32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
      throw new RangeError(`uniform u32 out of range: ${value}`);
    }
    this.#words.push(value);
    this.#types.push('u32');
    return this;
  }

  i32(value: number): this {
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0x7fffffff) {
      throw new RangeError(`uniform i32 out of range: ${value}`);
    }
    this.#words.push(value);
    this.#types.push('i32');
    return this;
  }

  f32(value: Scalar): this {
    if (typeof value !== 'number') this.live = true;
    this.#words.push(value);
    this.#types.push('f32');
    return this;
  }

  /** The packed contents as a string: equal keys mean byte-identical structs (uniform slots are shared by content). */
  get key(): string {
    return this.#types
      .map((t, i) => {
        const word = this.#words[i];
        if (typeof word !== 'number') return `s${word.id}`;
        // f32 words are keyed by the value stored (fround), with −0 apart from 0: its bytes differ.
        if (t === 'f32') return Object.is(word, -0) ? 'f-0' : `f${Math.fround(word)}`;
        return t[0] + word;
      })
      .join(',');
  }

  get byteLength(): number {
    return Math.max(16, Math.ceil(this.#words.length / 4) * 16);
  }

  /** Writes the packed struct into `view` at `offset`. */
  writeTo(view: DataView, offset: number): void {
    this.#words.forEach((scalar, i) => {
      const at = offset + 4 * i;
      const type = this.#types[i];
      const word = scalarValue(scalar);
      if (type === 'f32') view.setFloat32(at, word, true);
      else if (type === 'i32') view.setInt32(at, word, true);
      else view.setUint32(at, word, true);
    });
  }
}

export function uniforms(): Uniforms {
  return new Uniforms();
}
