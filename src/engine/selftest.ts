// The GPU self-test: a matmul on random data checked against an f64 CPU reference, then timed. It proves the
// whole path (device, shader loader, recorder, readback) on whatever adapter the page or worker has.

import {
  BufferArena,
  CommandRecorder,
  roundToF16,
  toF16Array,
  type Gpu,
  type ScalarType,
} from './gpu/index.ts';
import { matmul } from './kernels/matmul.ts';

export interface SelfTestResult {
  dtype: ScalarType;
  shape: { M: number; N: number; K: number };
  /** max |gpu − reference| / max |reference| */
  maxRelError: number;
  passed: boolean;
  /** Mean time of one matmul over the timed runs, measured around submit → onSubmittedWorkDone. */
  ms: number;
  gflops: number;
}

/** Tolerances from the kernel tests: f32 1e-5, f16 inputs 1e-2. */
const TOLERANCE: Record<string, number> = { f32: 1e-5, f16: 1e-2 };

function seededRandom(n: number, seed: number): Float64Array {
  let state = seed >>> 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    out[i] = state / 2 ** 31 - 1;
  }
  return out;
}

export async function runMatmulSelfTest(
  gpu: Gpu,
  options: { M?: number; N?: number; K?: number; dtype?: ScalarType; runs?: number } = {},
): Promise<SelfTestResult> {
  const { M = 256, N = 256, K = 256, runs = 5 } = options;
  const dtype = options.dtype ?? gpu.precision;
  const round = (x: Float64Array) => (dtype === 'f16' ? roundToF16(x) : x);
  const a = round(seededRandom(M * K, 1));
  const b = round(seededRandom(K * N, 2));
  const encode = (x: Float64Array) => (dtype === 'f16' ? toF16Array(x) : Float32Array.from(x));

  const arena = new BufferArena(gpu);
  try {
    const aBuf = arena.upload('selftest.a', encode(a));
    const bBuf = arena.upload('selftest.b', encode(b));
    const cBuf = arena.alloc('selftest.c', 4 * M * N);
    const rec = new CommandRecorder(gpu, { label: 'selftest' });
    const launch = () =>
      matmul(
        rec,
        { binding: cBuf, dtype: 'f32' },
        { binding: aBuf, dtype },
        { binding: bBuf, dtype },
        { M, N, K },
      );

    launch(); // first run compiles the pipeline and is checked
    const pending = rec.readback(cBuf);
    rec.submit();
    const c = new Float32Array(await pending.read());

    let maxError = 0;
    let scale = 1e-30;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let sum = 0;
        for (let k = 0; k < K; k++) sum += a[m * K + k] * b[k * N + n];
        scale = Math.max(scale, Math.abs(sum));
        const error = Math.abs(c[m * N + n] - sum);
        maxError = Number.isNaN(error) ? Infinity : Math.max(maxError, error);
      }
    }
    const maxRelError = maxError / scale;

    const start = performance.now();
    for (let i = 0; i < runs; i++) launch();
    await rec.submitAndWait();
    const ms = (performance.now() - start) / runs;
    rec.destroy();
    return {
      dtype,
      shape: { M, N, K },
      maxRelError,
      passed: maxRelError < TOLERANCE[dtype],
      ms,
      gflops: (2 * M * N * K) / (ms * 1e6),
    };
  } finally {
    arena.destroy();
  }
}
