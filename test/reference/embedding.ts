// f64 reference for the embedding gather: rows of wte (plus learned positions), zeros for bad ids.

export function embeddingRef(
  tokens: ArrayLike<number>,
  wte: ArrayLike<number>,
  C: number,
  V: number,
  positions?: { wpe: ArrayLike<number>; T: number; offset?: number },
): Float64Array {
  const N = tokens.length;
  const out = new Float64Array(N * C);
  for (let n = 0; n < N; n++) {
    const id = tokens[n];
    if (id >= V) continue;
    const pos = positions ? (positions.offset ?? 0) + (n % positions.T) : 0;
    for (let c = 0; c < C; c++) {
      out[n * C + c] = wte[id * C + c] + (positions ? positions.wpe[pos * C + c] : 0);
    }
  }
  return out;
}
