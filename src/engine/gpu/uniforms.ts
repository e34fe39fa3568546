// Uniform structs are packed by hand in WGSL declaration order. Every field tunelab uses is 4 bytes
// (u32, i32, f32), so the layout is a plain array of words; the struct is padded to 16 bytes.

export class Uniforms {
  readonly #words: number[] = [];
  readonly #types: ('u32' | 'i32' | 'f32')[] = [];

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

  f32(value: number): this {
    this.#words.push(value);
    this.#types.push('f32');
    return this;
  }

  /** The packed contents as a string: equal keys mean byte-identical structs (uniform slots are shared by content). */
  get key(): string {
    return this.#types
      .map((t, i) => {
        const word = this.#words[i];
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
    this.#words.forEach((word, i) => {
      const at = offset + 4 * i;
      const type = this.#types[i];
      if (type === 'f32') view.setFloat32(at, word, true);
      else if (type === 'i32') view.setInt32(at, word, true);
      else view.setUint32(at, word, true);
    });
  }
}

export function uniforms(): Uniforms {
  return new Uniforms();
}
