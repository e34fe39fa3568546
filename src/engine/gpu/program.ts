// A program is a small descriptor (onnxruntime-web style): WGSL source, entry point, type aliases and
// `override` constants. Only compile-time facts go into the cache key; shapes travel as uniforms.

import { GpuValidationError } from './errors.ts';
import type { Precision, ScalarType } from './precision.ts';

/** WGSL extensions beyond f16 (which follows from the aliases); each becomes an `enable` line. */
export type WgslExtension = 'subgroups';

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
  /** Extensions the source uses, e.g. ['subgroups'] for a variant chosen when the device has the feature. */
  enables?: readonly WgslExtension[];
  /**
   * Compile-time `const NAME: u32 = value;` lines added to the preamble. Unlike overrides they can size private
   * arrays (register tiles), so kernel variants that differ in register blocking are instances of one source.
   */
  consts?: Readonly<Record<string, number>>;
}

/** The lines injected before a kernel's source: `enable f16;` when needed, then one alias per storage type. */
export function wgslPreamble(
  precision: Precision,
  aliases: Readonly<Record<string, ScalarType>> = {},
  enables: readonly WgslExtension[] = [],
  consts: Readonly<Record<string, number>> = {},
): string {
  const all: Record<string, ScalarType> = { act: precision, ...aliases };
  const usesF16 = Object.values(all).includes('f16');
  const lines = usesF16 ? ['enable f16;'] : [];
  for (const extension of enables) lines.push(`enable ${extension};`);
  for (const [name, type] of Object.entries(all).sort(([a], [b]) => a.localeCompare(b))) {
    lines.push(`alias ${name} = ${type};`);
  }
  for (const [name, value] of Object.entries(consts).sort(([a], [b]) => a.localeCompare(b))) {
    if (!Number.isInteger(value) || value < 0)
      throw new RangeError(`const ${name} must be a u32, got ${value}`);
    lines.push(`const ${name}: u32 = ${value}u;`);
  }
  return lines.join('\n') + '\n';
}

/** `k=v,` pairs in key order: the same facts give the same text whatever order they were written in. */
function facts(o: Readonly<Record<string, string | number>> | undefined): string {
  if (!o) return '';
  const keys = Object.keys(o);
  if (keys.length > 1) keys.sort();
  let text = '';
  for (const k of keys) text += `${k}=${o[k]},`;
  return text;
}

/** Programs kept by their kernels (matmul keeps its variants): their key is computed once. */
const keptKeys = new WeakMap<Program, string>();

/** Marks a program its kernel keeps and reuses, so the pipeline cache computes its key once. */
export function keepProgram<P extends Program>(program: P): P {
  keptKeys.set(program, cacheKey(program));
  return program;
}

/** The compile-time facts of a program (a cache is per device and precision: those are not in it). */
function cacheKey(program: Program): string {
  const enables = (program.enables ?? []).join(',');
  return `${program.name}:${program.entryPoint}:${facts(program.aliases)}:${facts(program.overrides)}:${facts(program.consts)}:${enables}`;
}

function pipelineKey(program: Program): string {
  return keptKeys.get(program) ?? cacheKey(program);
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
    const key = pipelineKey(program);
    const cached = this.#pipelines.get(key);
    if (cached) return cached;

    const code =
      wgslPreamble(this.precision, program.aliases, program.enables, program.consts) + program.source;
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
    this.#pipelines.delete(pipelineKey(program));
    this.#modules.delete(code);
    throw new GpuValidationError(
      `kernel '${program.name}' (entry '${program.entryPoint}') failed to compile` +
        (detail ? `:\n${detail}` : `: ${error?.message ?? 'unknown error'}`),
    );
  }
}

const SECTION_MARKER = /^\/\/ ---- ([\w-]+): ([\w-]+) ----$/gm;
const parsedSources = new Map<string, { core: string; sections: Map<string, Map<string, string>> }>();

function parseSections(source: string) {
  let parsed = parsedSources.get(source);
  if (parsed) return parsed;
  const markers = [...source.matchAll(SECTION_MARKER)];
  const sections = new Map<string, Map<string, string>>();
  markers.forEach((m, i) => {
    const end = i + 1 < markers.length ? markers[i + 1].index : source.length;
    const [, name, choice] = m;
    const choices = sections.get(name) ?? new Map<string, string>();
    choices.set(choice, source.slice(m.index, end));
    sections.set(name, choices);
  });
  parsed = { core: markers.length > 0 ? source.slice(0, markers[0].index) : source, sections };
  parsedSources.set(source, parsed);
  return parsed;
}

/**
 * A source made of a core and alternative sections, each starting at a line `// ---- NAME: CHOICE ----` and
 * running to the next such line: keeps the core and, for every NAME, the section of the chosen CHOICE. Kernel
 * variants that differ in which bindings exist (WGSL counts a binding as used wherever it is named, even in a
 * branch that can never run) are instances of one source this way.
 */
export function selectSections(source: string, choices: Readonly<Record<string, string>>): string {
  const { core, sections } = parseSections(source);
  const parts = [core];
  for (const [name, options] of sections) {
    const choice = choices[name];
    const text = choice === undefined ? undefined : options.get(choice);
    if (text === undefined) {
      throw new Error(`section '${name}' needs one of ${[...options.keys()].join(', ')}, got '${choice}'`);
    }
    parts.push(text);
  }
  for (const name of Object.keys(choices)) {
    if (!sections.has(name)) throw new Error(`the source has no section '${name}'`);
  }
  return parts.join('\n');
}
