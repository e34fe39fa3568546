import type { ScalarType } from './precision.ts';
import type { BufferBinding } from './recorder.ts';

/** A GPU buffer (or a byte range of one) holding elements of one storage type. */
export interface TensorRef {
  binding: BufferBinding;
  dtype: ScalarType;
}
