// Column-block copies between row-major matrices (split a fused qkv projection, gather its gradient back).
import { grid1d, uniforms, type CommandRecorder, type TensorRef } from '../gpu/index.ts';
import copyWgsl from '../../../shaders/copy2d.wgsl?raw';

const WG = 256;

export interface ColumnBlock {
  tensor: TensorRef;
  /** Elements per row of the whole matrix. */
  stride: number;
  /** First column of the block. */
  column: number;
}

/** dst[n, dst.column + c] = src[n, src.column + c] for n < N, c < C. */
export function copyColumns(
  rec: CommandRecorder,
  dst: ColumnBlock,
  src: ColumnBlock,
  N: number,
  C: number,
): void {
  if (src.tensor.dtype !== dst.tensor.dtype) {
    throw new TypeError(`copyColumns: src is ${src.tensor.dtype} but dst is ${dst.tensor.dtype}`);
  }
  for (const [name, block] of [
    ['src', src],
    ['dst', dst],
  ] as const) {
    if (block.column + C > block.stride) {
      throw new RangeError(
        `copyColumns: ${name} columns ${block.column}..${block.column + C} exceed its row of ${block.stride}`,
      );
    }
  }
  rec.dispatch(
    {
      name: 'copy2d',
      source: copyWgsl,
      entryPoint: 'copy2d',
      aliases: { t: src.tensor.dtype },
      overrides: { WG },
    },
    {
      uniforms: uniforms()
        .u32(N)
        .u32(C)
        .u32(src.stride)
        .u32(src.column)
        .u32(dst.stride)
        .u32(dst.column)
        .u32(0)
        .u32(0),
      buffers: [src.tensor.binding, dst.tensor.binding],
      workgroups: grid1d(N * C, WG, rec.gpu.limits.maxComputeWorkgroupsPerDimension),
    },
  );
}
