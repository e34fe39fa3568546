// LoRA hyperparameters and target resolution, with PEFT's semantics:
//   y = x·Wᵀ + scaling · dropout(x)·Aᵀ·Bᵀ,   scaling = alpha / r   (alpha / √r with rsLoRA)
// A target name matches a module whose full path equals it or ends with '.' + name (PEFT's suffix match), so
// GPT-2's `c_proj` adapts both attn.c_proj and mlp.c_proj, while `attn.c_proj` adapts only the first.
// `all-linear` is every linear layer of the blocks, never the LM head (PEFT's INCLUDE_LINEAR_LAYERS_SHORTHAND).

/** Same union as ModelFamily in src/engine/model/config.ts (kept structural so this file stands alone). */
export type LoraFamily = 'llama' | 'qwen2' | 'qwen3' | 'smollm3' | 'mistral' | 'gemma3' | 'gpt2';

/**
 * The structural facts target resolution needs. ModelSpec (src/engine/model/config.ts) satisfies it as is.
 */
export interface LoraModelShape {
  family: LoraFamily;
  /** C: hidden size. */
  hidden: number;
  /** F: MLP inner size. */
  ffn: number;
  /** H: query heads. */
  heads: number;
  /** Hkv: key/value heads. */
  kvHeads: number;
  /** D: head dimension. */
  headDim: number;
  /** L: transformer blocks. */
  layers: number;
}

export const ALL_LINEAR = 'all-linear';

export interface LoraConfig {
  /** Rank, a whole number ≥ 1. */
  r: number;
  /** lora_alpha, > 0. */
  alpha: number;
  /** lora_dropout on the adapter input, in [0, 1). */
  dropout: number;
  /** PEFT target_modules: module names (suffixes of module paths) or 'all-linear'. */
  targets: readonly string[] | typeof ALL_LINEAR;
  /** use_rslora: scaling = alpha / √r instead of alpha / r. */
  rslora: boolean;
}

export class LoraConfigError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`LoraConfig.${field}: ${message}`);
    this.name = 'LoraConfigError';
  }
}

/** Leaf module names per family, in the order the blocks register (and run) them. */
export const FAMILY_LINEARS: Record<LoraFamily, readonly string[]> = {
  llama: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  qwen2: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  qwen3: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  smollm3: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  mistral: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  gemma3: ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj'],
  gpt2: ['c_attn', 'c_proj', 'c_fc'],
};

/** One linear layer that gets an adapter. */
export interface AdaptedModule {
  /** Block index, 0-based. */
  layer: number;
  /** Leaf module name as PEFT sees it ('q_proj', 'c_proj', ...). */
  name: string;
  /** HF module path, e.g. 'model.layers.0.self_attn.q_proj' or 'transformer.h.0.mlp.c_proj'. */
  path: string;
  inFeatures: number;
  outFeatures: number;
  /** GPT-2's Conv1D stores its weight (in, out): PEFT's fan_in_fan_out. A and B are (r, in), (out, r) anyway. */
  fanInFanOut: boolean;
}

/** Throws a LoraConfigError naming the field for anything out of range; returns the config. */
export function validateLoraConfig(config: LoraConfig): LoraConfig {
  const { r, alpha, dropout, targets, rslora } = config;
  if (!Number.isInteger(r) || r < 1) throw new LoraConfigError('r', `must be a whole number ≥ 1, got ${r}`);
  if (typeof alpha !== 'number' || !Number.isFinite(alpha) || alpha <= 0) {
    throw new LoraConfigError('alpha', `must be a finite number > 0, got ${alpha}`);
  }
  if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1)) {
    throw new LoraConfigError('dropout', `must be in [0, 1), got ${dropout}`);
  }
  if (typeof rslora !== 'boolean')
    throw new LoraConfigError('rslora', `must be true or false, got ${rslora}`);
  if (targets !== ALL_LINEAR) {
    if (!Array.isArray(targets) || targets.length === 0) {
      throw new LoraConfigError('targets', `must be '${ALL_LINEAR}' or a non-empty list of module names`);
    }
    for (const t of targets) {
      if (typeof t !== 'string' || !/^[A-Za-z_][\w.]*$/.test(t) || t.endsWith('.')) {
        throw new LoraConfigError('targets', `'${String(t)}' is not a module name`);
      }
    }
  }
  return config;
}

/** alpha / r, or alpha / √r with rsLoRA. */
export function loraScaling(config: Pick<LoraConfig, 'r' | 'alpha' | 'rslora'>): number {
  return config.rslora ? config.alpha / Math.sqrt(config.r) : config.alpha / config.r;
}

/** Parses PEFT's comma-separated spelling ('q_proj,v_proj' or 'all-linear') into `targets`. */
export function parseTargets(text: string): readonly string[] | typeof ALL_LINEAR {
  const trimmed = text.trim();
  if (trimmed === ALL_LINEAR) return ALL_LINEAR;
  return trimmed
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Every linear layer of the blocks, in execution order, with its dimensions. */
export function blockLinears(shape: LoraModelShape): AdaptedModule[] {
  checkShape(shape);
  const { hidden: C, ffn: F, heads: H, kvHeads: Hkv, headDim: D } = shape;
  const out: AdaptedModule[] = [];
  for (let l = 0; l < shape.layers; l++) {
    if (shape.family === 'gpt2') {
      const p = `transformer.h.${l}`;
      out.push(mod(l, 'c_attn', `${p}.attn.c_attn`, C, 3 * C, true));
      out.push(mod(l, 'c_proj', `${p}.attn.c_proj`, C, C, true));
      out.push(mod(l, 'c_fc', `${p}.mlp.c_fc`, C, F, true));
      out.push(mod(l, 'c_proj', `${p}.mlp.c_proj`, F, C, true));
    } else {
      const p = `model.layers.${l}`;
      out.push(mod(l, 'q_proj', `${p}.self_attn.q_proj`, C, H * D, false));
      out.push(mod(l, 'k_proj', `${p}.self_attn.k_proj`, C, Hkv * D, false));
      out.push(mod(l, 'v_proj', `${p}.self_attn.v_proj`, C, Hkv * D, false));
      out.push(mod(l, 'o_proj', `${p}.self_attn.o_proj`, H * D, C, false));
      out.push(mod(l, 'gate_proj', `${p}.mlp.gate_proj`, C, F, false));
      out.push(mod(l, 'up_proj', `${p}.mlp.up_proj`, C, F, false));
      out.push(mod(l, 'down_proj', `${p}.mlp.down_proj`, F, C, false));
    }
  }
  return out;
}

function mod(
  layer: number,
  name: string,
  path: string,
  inFeatures: number,
  outFeatures: number,
  fanInFanOut: boolean,
): AdaptedModule {
  return { layer, name, path, inFeatures, outFeatures, fanInFanOut };
}

function checkShape(shape: LoraModelShape): void {
  if (!Object.hasOwn(FAMILY_LINEARS, shape.family)) {
    throw new RangeError(
      `LoraModelShape.family: '${String(shape.family)}' is not one of ${Object.keys(FAMILY_LINEARS).join(', ')}`,
    );
  }
  for (const key of ['hidden', 'ffn', 'heads', 'kvHeads', 'headDim', 'layers'] as const) {
    const v = shape[key];
    if (!Number.isInteger(v) || v < 1)
      throw new RangeError(`LoraModelShape.${key}: must be a whole number ≥ 1, got ${v}`);
  }
}

/** PEFT's check: the full path equals the target or ends with '.' + target. */
export function matchesTarget(path: string, target: string): boolean {
  return path === target || path.endsWith(`.${target}`);
}

/**
 * The adapted modules, in execution order (layer by layer, then as the block runs them). Throws a
 * LoraConfigError on `targets` naming any target that matches no module of this model.
 */
export function resolveTargets(config: LoraConfig, shape: LoraModelShape): AdaptedModule[] {
  validateLoraConfig(config);
  const all = blockLinears(shape);
  if (config.targets === ALL_LINEAR) return all;
  const targets = config.targets;
  for (const t of targets) {
    if (!all.some((m) => matchesTarget(m.path, t))) {
      throw new LoraConfigError(
        'targets',
        `'${t}' matches no linear layer of this ${shape.family} model (its layers: ${FAMILY_LINEARS[shape.family].join(', ')})`,
      );
    }
  }
  return all.filter((m) => targets.some((t) => matchesTarget(m.path, t)));
}

/**
 * Why rank `r` does not fit the adapted layers, or null. r = hidden size is the largest useful rank (every
 * linear then gets a full-rank update; the demo model is trained so); a rank above both sides of a layer comes
 * from a corrupt or foreign config (r = 10^9 would be allocated before any tensor is checked). Training refuses
 * it too, so no adapter is written that import would refuse.
 */
export function rankProblem(r: number, modules: readonly AdaptedModule[]): string | null {
  for (const m of modules) {
    const limit = Math.max(m.inFeatures, m.outFeatures);
    if (r > limit) {
      return `${r} exceeds max(in_features, out_features) = ${limit} of ${m.path} (${m.inFeatures} → ${m.outFeatures})`;
    }
  }
  return null;
}

/**
 * target_modules as PEFT saves them: 'all-linear' expanded to the leaf names of the linear layers (as PEFT
 * does before saving), otherwise the given names, deduplicated; sorted either way.
 */
export function peftTargetModules(config: LoraConfig, shape: LoraModelShape): string[] {
  if (config.targets === ALL_LINEAR) return [...new Set(blockLinears(shape).map((m) => m.name))].sort();
  return [...new Set(config.targets)].sort();
}
