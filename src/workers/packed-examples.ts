// Examples packed into a few flat typed arrays for a trip between threads: structured-cloning tens of thousands
// of small Int32Arrays (one buffer each) blocks the receiving thread for seconds, a handful of big ones does
// not. Unpacked examples are views into the shared arrays.
import type { Example } from '../engine/train/data.ts';

export interface PackedExamples {
  /** Every example's ids, one after another. */
  ids: Int32Array;
  /** Every example's labels, aligned with ids. */
  labels: Int32Array;
  /** Example i is ids[offsets[i] .. offsets[i + 1]). */
  offsets: Int32Array;
  promptLength: Int32Array;
  /** −1: no class (not a classification example). */
  classIndex: Int32Array;
  line: Int32Array;
}

export function packExamples(examples: readonly Example[]): PackedExamples {
  const n = examples.length;
  const offsets = new Int32Array(n + 1);
  for (let i = 0; i < n; i++) offsets[i + 1] = offsets[i] + examples[i].ids.length;
  const packed: PackedExamples = {
    ids: new Int32Array(offsets[n]),
    labels: new Int32Array(offsets[n]),
    offsets,
    promptLength: new Int32Array(n),
    classIndex: new Int32Array(n),
    line: new Int32Array(n),
  };
  examples.forEach((ex, i) => {
    packed.ids.set(ex.ids, offsets[i]);
    packed.labels.set(ex.labels, offsets[i]);
    packed.promptLength[i] = ex.promptLength;
    packed.classIndex[i] = ex.classIndex ?? -1;
    packed.line[i] = ex.line;
  });
  return packed;
}

/** Examples `from` to `to` (exclusive) of the packed ones, appended to `out`. */
export function unpackExamples(
  p: PackedExamples,
  out: Example[] = [],
  from = 0,
  to = p.line.length,
): Example[] {
  for (let i = from; i < to; i++) {
    const [from, to] = [p.offsets[i], p.offsets[i + 1]];
    const ex: Example = {
      ids: p.ids.subarray(from, to),
      labels: p.labels.subarray(from, to),
      promptLength: p.promptLength[i],
      line: p.line[i],
    };
    if (p.classIndex[i] >= 0) ex.classIndex = p.classIndex[i];
    out.push(ex);
  }
  return out;
}

/** Positions of `subset`'s examples in `all` (the same objects), to send a split as indices. */
export function indicesOf(all: readonly Example[], subset: readonly Example[]): Int32Array {
  const index = new Map(all.map((ex, i) => [ex, i]));
  return Int32Array.from(subset, (ex) => {
    const i = index.get(ex);
    if (i === undefined) throw new Error('indicesOf: an example of the split is not in the dataset');
    return i;
  });
}
