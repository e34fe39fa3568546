// The `skinny` matmul variant (shaders/matmul-skinny.wgsl): C = alpha·A·B + beta·C for N ≤ 64 outputs per row,
// the LoRA rank-r side products u = dropout(x)·Aᵀ and v = dy·B. K is split across the 32 lanes of each row
// inside a workgroup, so a product with M = tokens fills the GPU where the tiled kernel's M/BM workgroups each
// walk all of K. What it cannot do (refused here, the caller falls back to a tiled variant): a transposed A, an
// A it cannot read as vec4, N > 64, split-K and the fused extras other than dropout on A.

import {
  keepProgram,
  selectSections,
  uniforms,
  type BufferBinding,
  type CommandRecorder,
  type DispatchCost,
  type Gpu,
  type Program,
  type TensorRef,
} from '../gpu/index.ts';
import dropoutHashWgsl from '../../../shaders/dropout-hash.wgsl?raw';
import skinnyWgsl from '../../../shaders/matmul-skinny.wgsl?raw';

/** Lanes sharing one row of C (one 32-wide SIMD group on most GPUs: coalesced 512-byte reads of A's row). */
const LANES = 32;
/** Rows of C per workgroup: 256 threads. */
const ROWS = 8;
/** Widest C it computes; N is rounded up to 16, 32 or 64 (the register accumulators' size). */
export const SKINNY_MAX_N = 64;
/** Workgroup bytes: ROWS · 8 columns of (LANES + 1) f32 partials (see the shader). */
const SHARED_BYTES = ROWS * 8 * (LANES + 1) * 4;

/** The skinny kernel's compile-time width for N outputs (16, 32 or 64). */
export function skinnyWidth(N: number): number {
  return N <= 16 ? 16 : N <= 32 ? 32 : 64;
}

/** Whether this device's workgroup limits allow the skinny kernel. */
export function skinnyFits(gpu: Gpu): boolean {
  const l = gpu.limits;
  return (
    LANES * ROWS <= l.maxComputeInvocationsPerWorkgroup &&
    LANES <= l.maxComputeWorkgroupSizeX &&
    ROWS <= l.maxComputeWorkgroupSizeY &&
    SHARED_BYTES <= l.maxComputeWorkgroupStorageSize
  );
}

/** A skinny launch: the product, its operands' strides (elements) and what it adds to plain A·B. */
export interface SkinnyLaunch {
  M: number;
  N: number;
  K: number;
  batch: number;
  transA: boolean;
  transB: boolean;
  lda: number;
  ldb: number;
  ldc: number;
  aOffset: number;
  bOffset: number;
  cOffset: number;
  aBatch: number;
  bBatch: number;
  cBatch: number;
  alpha: number;
  beta: number;
  splits: number;
  /** Extras it cannot fuse (extension, mask on B, bias, residual, row scale), by name. */
  unsupported: readonly string[];
  /** Dropout on A, as matmul.ts's maskParams gives it; undefined when none. */
  maskA?: SkinnyMask;
}

export interface SkinnyMask {
  threshold: number;
  keepScale: number;
  seed: number;
  stream: number;
  streamStride: number;
  rowLength: number;
  stepOffset: number;
  rng: BufferBinding;
}

/** Why the skinny kernel cannot run this launch on this device, or null when it can. */
export function skinnyRefusal(gpu: Gpu, l: SkinnyLaunch): string | null {
  if (l.transA) return 'A must be K-contiguous (not transposed)';
  if (l.N < 1 || l.N > SKINNY_MAX_N) return `N must be in [1, ${SKINNY_MAX_N}], got ${l.N}`;
  if (![l.K, l.lda, l.aOffset, l.aBatch].every((n) => n % 4 === 0)) {
    return "A must be readable as vec4 (K, lda, A's offset and batch stride multiples of 4)";
  }
  if (l.splits > 1) return 'no split-K';
  if (l.unsupported.length > 0) return `cannot fuse ${l.unsupported.join(', ')}`;
  if (Math.ceil(l.M / ROWS) > gpu.limits.maxComputeWorkgroupsPerDimension) return `M = ${l.M} is too tall`;
  if (!skinnyFits(gpu)) return "exceeds this GPU's workgroup limits";
  return null;
}

/** Whether the skinny kernel reads B as vec4 along its contiguous axis (else scalar loads). */
function bReadsVec4(l: SkinnyLaunch): boolean {
  const contiguous = l.transB ? l.K : l.N; // K is a multiple of 4 already (A's vec4)
  return [contiguous, l.ldb, l.bOffset, l.bBatch].every((n) => n % 4 === 0);
}

const programs = new Map<string, Program>();

function skinnyProgram(l: SkinnyLaunch, c: TensorRef, a: TensorRef, b: TensorRef): Program {
  const width = skinnyWidth(l.N);
  const vecB = bReadsVec4(l);
  const masked = l.maskA !== undefined;
  const name = `matmul.skinny${width}${vecB ? '' : '.sb'}${masked ? '+mask_a+rng' : ''}`;
  const key = `${name}|${l.transB ? 1 : 0}|${a.dtype},${b.dtype},${c.dtype}`;
  let program = programs.get(key);
  if (!program) {
    const sections = { b: vecB ? 'vec4' : 'scalar', mask_a: masked ? 'on' : 'off' };
    const source = selectSections(skinnyWgsl, sections);
    program = keepProgram({
      name,
      source: masked ? `${source}\n${dropoutHashWgsl}` : source,
      entryPoint: 'matmul_skinny',
      aliases: { a_t: a.dtype, b_t: b.dtype, c_t: c.dtype },
      consts: { NMAX: width, LANES, ROWS, B_K: l.transB ? 1 : 0 },
    });
    programs.set(key, program);
  }
  return program;
}

/** Records one skinny launch; `skinnyRefusal` must have passed. */
export function recordSkinny(
  rec: CommandRecorder,
  c: TensorRef,
  a: TensorRef,
  b: TensorRef,
  l: SkinnyLaunch,
  cost: DispatchCost,
): void {
  const mask = l.maskA;
  const params = uniforms()
    .u32(l.M)
    .u32(l.N)
    .u32(l.K)
    .u32(l.batch)
    .u32(l.lda)
    .u32(l.ldb)
    .u32(l.ldc)
    .u32(mask?.rowLength ?? 0)
    .u32(l.aBatch)
    .u32(l.bBatch)
    .u32(l.cBatch)
    .u32(mask?.seed ?? 0)
    .u32(l.aOffset)
    .u32(l.bOffset)
    .u32(l.cOffset)
    .u32(mask?.threshold ?? 0)
    .f32(l.alpha)
    .f32(l.beta)
    .f32(mask?.keepScale ?? 1)
    .u32(mask?.stream ?? 0)
    .u32(mask?.streamStride ?? 0)
    .u32(mask?.stepOffset ?? 0)
    .u32(0)
    .u32(0);
  rec.dispatch(skinnyProgram(l, c, a, b), {
    uniforms: params,
    buffers: [a.binding, b.binding, c.binding, mask?.rng ?? null],
    workgroups: [Math.ceil(l.M / ROWS), 1, l.batch],
    cost,
  });
}
