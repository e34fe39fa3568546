// Pointwise activations: SwiGLU (Llama/Qwen2 MLP: silu(gate)·up), GELU with the tanh approximation
// (GPT-2's gelu_new) and GeGLU (Gemma's MLP: gelu_tanh(gate)·up), forward and backward over flat arrays of n
// elements. Backward launches overwrite their
// input gradients (they are activations' gradients, never parameters').

import { grid1d, uniforms, type CommandRecorder, type ScalarType, type TensorRef } from '../gpu/index.ts';
import activationsWgsl from '../../../shaders/activations.wgsl?raw';

const WG = 256;

function launch(
  rec: CommandRecorder,
  entryPoint: string,
  n: number,
  types: { in_t: ScalarType; out_t: ScalarType; dy_t?: ScalarType },
  buffers: TensorRef[],
): void {
  if (!Number.isInteger(n) || n < 0)
    throw new RangeError(`${entryPoint}: n must be a whole number ≥ 0, got ${n}`);
  rec.dispatch(
    {
      name: entryPoint,
      source: activationsWgsl,
      entryPoint,
      // Every alias of the file must exist whichever entry point compiles.
      aliases: { dy_t: 'f32', ...types },
      overrides: { WG },
    },
    {
      uniforms: uniforms().u32(n).u32(0).u32(0).u32(0),
      buffers: buffers.map((t) => t.binding),
      workgroups: grid1d(n, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    },
  );
}

function sameType(kernel: string, a: TensorRef, b: TensorRef, names: string): void {
  if (a.dtype !== b.dtype)
    throw new TypeError(`${kernel}: ${names} must share a dtype (${a.dtype} vs ${b.dtype})`);
}

/** A gated MLP's activation of the gate: silu (SwiGLU) or gelu_tanh (GeGLU). */
export type GateActivation = 'silu' | 'gelu_tanh';
const GATED = { silu: 'swiglu', gelu_tanh: 'geglu' } as const;

/** out (n) = act(gate (n)) · up (n). */
export function gatedForward(
  rec: CommandRecorder,
  out: TensorRef,
  gate: TensorRef,
  up: TensorRef,
  n: number,
  act: GateActivation,
): void {
  const kernel = GATED[act];
  sameType(`${kernel}Forward`, gate, up, 'gate and up');
  launch(rec, `${kernel}_forward`, n, { in_t: gate.dtype, out_t: out.dtype }, [out, gate, up]);
}

/** dgate (n) = dy·up·act'(gate), dup (n) = dy·act(gate); both overwritten and of one dtype. */
export function gatedBackward(
  rec: CommandRecorder,
  dgate: TensorRef,
  dup: TensorRef,
  dy: TensorRef,
  gate: TensorRef,
  up: TensorRef,
  n: number,
  act: GateActivation,
): void {
  const kernel = GATED[act];
  sameType(`${kernel}Backward`, gate, up, 'gate and up');
  sameType(`${kernel}Backward`, dgate, dup, 'dgate and dup');
  launch(rec, `${kernel}_backward`, n, { in_t: gate.dtype, out_t: dgate.dtype, dy_t: dy.dtype }, [
    dgate,
    dup,
    dy,
    gate,
    up,
  ]);
}

/** out (n) = silu(gate (n)) · up (n). */
export function swigluForward(
  rec: CommandRecorder,
  out: TensorRef,
  gate: TensorRef,
  up: TensorRef,
  n: number,
): void {
  gatedForward(rec, out, gate, up, n, 'silu');
}

/** dgate (n) = dy·up·silu'(gate), dup (n) = dy·silu(gate); both overwritten and of one dtype. */
export function swigluBackward(
  rec: CommandRecorder,
  dgate: TensorRef,
  dup: TensorRef,
  dy: TensorRef,
  gate: TensorRef,
  up: TensorRef,
  n: number,
): void {
  gatedBackward(rec, dgate, dup, dy, gate, up, n, 'silu');
}

/** out (n) = gelu_tanh(x (n)). */
export function geluForward(rec: CommandRecorder, out: TensorRef, x: TensorRef, n: number): void {
  launch(rec, 'gelu_forward', n, { in_t: x.dtype, out_t: out.dtype }, [out, x]);
}

/** dx (n) = dy (n) · gelu_tanh'(x (n)); overwritten. */
export function geluBackward(
  rec: CommandRecorder,
  dx: TensorRef,
  dy: TensorRef,
  x: TensorRef,
  n: number,
): void {
  launch(rec, 'gelu_backward', n, { in_t: x.dtype, out_t: dx.dtype, dy_t: dy.dtype }, [dx, dy, x]);
}
