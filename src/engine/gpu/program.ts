// A program is a small descriptor (onnxruntime-web style): WGSL source, entry point, type aliases and
// `override` constants. Only compile-time facts go into the cache key; shapes travel as uniforms.

import { GpuValidationError } from './errors.ts';
import type { Precision, ScalarType } from './precision.ts';

export interface Program {
  /** Kernel name used in errors, labels and benchmarks, e.g. 'matmul'. */
  name: string;
  /** WGSL without `enable` or `alias` lines: the loader adds them. */
  source: string;
  entryPoint: string;
  /** Storage-type aliases, e.g. { a_t: 'f16', out_t: 'f32' }. `act` defaults to the device precision. */
  aliases?: Readonly<Record<string, ScalarType>>;
  /** Values for WGSL `override` constants (tile sizes, workgroup sizes, flags as 0/1). */
  overrides?: Readonly<Record<string, number>>;
  /** WGSL extensions the source uses besides f16 (e.g. 'subgroups'); the device must have the feature. */
  enables?: readonly WgslExtension[];
}

/** Optional WGSL extensions a program may enable (f16 comes from the storage types). */
export type WgslExtension = 'subgroups';

/** The lines injected before a kernel's source: `enable f16;` when needed, then one alias per storage type. */
export function wgslPreamble(
  precision: Precision,
  aliases: Readonly<Record<string, ScalarType>> = {},
  enables: readonly WgslExtension[] = [],
): string {
  const all: Record<string, ScalarType> = { act: precision, ...aliases };
  const usesF16 = Object.values(all).includes('f16');
  const lines = usesF16 ? ['enable f16;'] : [];
  for (const extension of enables) lines.push(`enable ${extension};`);
  for (const [name, type] of Object.entries(all).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`alias ${name} = ${type};`);
  }
  return lines.join('\n') + '\n';
}

function cacheKey(program: Program, precision: Precision): string {
  const aliases = Object.entries(program.aliases ?? {}).sort();
  const overrides = Object.entries(program.overrides ?? {}).sort();
  const enables = [...(program.enables ?? [])].sort().join(',');
  return `${program.name}:${program.entryPoint}:${precision}:${JSON.stringify(aliases)}:${JSON.stringify(overrides)}:${enables}`;
}

/**
 * Compiles and caches compute pipelines. Creation is synchronous so kernels can be recorded without awaiting;
 * compile errors are collected asynchronously and surfaced, as GpuValidationError naming the kernel and the
 * WGSL line, by `check()` (called by `Gpu.settle()` after every wait on the GPU).
 */
export class PipelineCache {
  readonly #pipelines = new Map<string, GPUComputePipeline>();
  readonly #modules = new Map<string, GPUShaderModule>();
  #pending: Promise<void>[] = [];

  constructor(
    readonly device: GPUDevice,
    readonly precision: Precision,
  ) {}

  get size(): number {
    return this.#pipelines.size;
  }

  get(program: Program): GPUComputePipeline {
    const key = cacheKey(program, this.precision);
    const cached = this.#pipelines.get(key);
    if (cached) return cached;

    const code = wgslPreamble(this.precision, program.aliases, program.enables) + program.source;
    this.device.pushErrorScope('validation');
    let module = this.#modules.get(code);
    if (!module) {
      module = this.device.createShaderModule({ label: program.name, code });
      this.#modules.set(code, module);
    }
    const pipeline = this.device.createComputePipeline({
      label: `${program.name}.${program.entryPoint}`,
      layout: 'auto',
      compute: { module, entryPoint: program.entryPoint, constants: { ...program.overrides } },
    });
    const scope = this.device.popErrorScope();
    this.#pending.push(this.#diagnose(program, module, code, scope));
    this.#pipelines.set(key, pipeline);
    return pipeline;
  }

  /** Throws the first compile or pipeline error of any program created so far. */
  async check(): Promise<void> {
    const pending = this.#pending;
    this.#pending = [];
    await Promise.all(pending);
  }

  async #diagnose(
    program: Program,
    module: GPUShaderModule,
    code: string,
    scope: Promise<GPUError | null>,
  ): Promise<void> {
    const [info, error] = await Promise.all([module.getCompilationInfo(), scope]);
    const messages = info.messages.filter((m) => m.type === 'error');
    if (messages.length === 0 && !error) return;
    const lines = code.split('\n');
    const detail = messages
      .map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}\n    ${lines[m.lineNum - 1]?.trim() ?? ''}`)
      .join('\n');
    // Drop the cache entries so a retry compiles again instead of dispatching an invalid pipeline.
    this.#pipelines.delete(cacheKey(program, this.precision));
    this.#modules.delete(code);
    throw new GpuValidationError(
      `kernel '${program.name}' (entry '${program.entryPoint}') failed to compile` +
        (detail ? `:\n${detail}` : `: ${error?.message ?? 'unknown error'}`),
    );
  }
}
