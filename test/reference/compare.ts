// Normwise comparison for kernel tests: max |actual − expected| / max |expected|, with the first mismatches
// printed so a failing kernel can be read, not guessed at.

export interface Comparison {
  relError: number;
  maxAbsError: number;
  mismatches: string[];
}

export function compare(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
): Comparison {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: actual ${actual.length}, expected ${expected.length}`);
  }
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i]));
  scale = Math.max(scale, 1e-30);
  let maxAbsError = 0;
  const mismatches: string[] = [];
  for (let i = 0; i < actual.length; i++) {
    const error = Math.abs(actual[i] - expected[i]);
    const bad = !(error <= tolerance * scale); // NaN counts as bad
    if (bad && mismatches.length < 8) mismatches.push(`[${i}] got ${actual[i]}, want ${expected[i]}`);
    if (bad && Number.isNaN(error)) maxAbsError = NaN;
    else if (!Number.isNaN(maxAbsError)) maxAbsError = Math.max(maxAbsError, error);
  }
  return { relError: maxAbsError / scale, maxAbsError, mismatches };
}

/** Throws with the first mismatches and the max error when the comparison fails. */
export function expectClose(
  label: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: number,
): number {
  const { relError, mismatches } = compare(actual, expected, tolerance);
  if (!(relError < tolerance)) {
    throw new Error(
      `${label}: relative error ${relError.toExponential(3)} exceeds ${tolerance}\n  ` +
        mismatches.join('\n  '),
    );
  }
  return relError;
}
