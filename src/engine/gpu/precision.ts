// The precision policy is decided once per device (DESIGN.md): with `shader-f16`, weights and activations are
// f16 and every accumulation, norm, softmax and loss is f32; without it everything is f32. The same WGSL serves
// both: kernels name storage types through aliases (`act`, ...) that the loader injects.

export type Precision = 'f16' | 'f32';
export type PrecisionChoice = Precision | 'auto';

/** WGSL scalar types a kernel alias may stand for. */
export type ScalarType = 'f16' | 'f32' | 'u32' | 'i32';

export function resolvePrecision(choice: PrecisionChoice, hasF16: boolean): Precision {
  if (choice === 'auto') return hasF16 ? 'f16' : 'f32';
  if (choice === 'f16' && !hasF16) {
    throw new Error(
      "precision 'f16' was requested but this adapter lacks the 'shader-f16' feature; use 'f32' or 'auto'",
    );
  }
  if (choice !== 'f16' && choice !== 'f32') {
    throw new Error(`precision must be 'auto', 'f16' or 'f32', got ${JSON.stringify(choice)}`);
  }
  return choice;
}

/** Bytes per element of a storage type. */
export function bytesPerElement(type: ScalarType): number {
  return type === 'f16' ? 2 : 4;
}
