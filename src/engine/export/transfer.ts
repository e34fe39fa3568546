// Carrying the best configuration from the small model a study ran on to a larger one of the same family, by
// explicit rules that the exports state (the README's "Scaling up" section gives the evidence):
//   learning rate    kept, or × (params_small / params_large)^0.5 — reports disagree across model size
//                    (flat from 0.6B to 32B in one sweep, ~1/√params in another), so the rule is chosen and
//                    the Optuna script brackets it (×⅓, ×1, ×3);
//   alpha / √r       kept when the rank changes (rsLoRA, Kalajdzievski 2023: the learning rate is then roughly
//                    independent of the rank);
//   tokens per step  kept: a smaller micro-batch on the target GPU takes a larger accumulation (LoRA is
//                    sensitive to the batch size, "LoRA Without Regret", Thinking Machines 2025).
// LoRA+'s ratio and every other value are kept.
import type { SpaceSpec } from '../search/space.ts';
import { fieldOfParam, type TrialConfig, type TrialField } from '../train/config.ts';

export const LR_RULES = ['keep', 'sqrt-params'] as const;
export type LrRule = (typeof LR_RULES)[number];

export interface TransferOptions {
  /** The larger model: a Hub id or a path, its revision, its parameter count. */
  target: { id: string; params: number; revision?: string | null };
  /** Parameter count of the model the study ran on. */
  sourceParams: number;
  lr: LrRule;
  /** Micro-batch on the target GPU; the accumulation then keeps the tokens per step. Default: the study's. */
  batch?: number;
  /** LoRA rank on the target; alpha follows so that alpha/√r stays. Default: the study's. */
  r?: number;
}

/** What the transfer did, as best-config.json records it and the other files quote it. */
export interface TransferRecord {
  from: { params: number };
  to: { id: string; params: number };
  lr: { rule: LrRule; factor: number; from: number; to: number };
  rank: { from: number; to: number; alphaFrom: number; alphaTo: number };
  batch: { from: [batch: number, accum: number]; to: [batch: number, accum: number]; tokensPerStep: number };
  /** One line per rule, in words. */
  lines: string[];
}

export class TransferError extends Error {
  constructor(
    /** The option at fault: 'target.params', 'batch', 'r', ... */
    readonly field: string,
    readonly reason: string,
  ) {
    super(`transfer: ${field}: ${reason}`);
    this.name = 'TransferError';
  }
}

const positiveInteger = (v: number | undefined): boolean => v !== undefined && Number.isInteger(v) && v >= 1;
const sig = (x: number): string => String(Number(x.toPrecision(4)));
const millions = (n: number): string => (n >= 1e9 ? `${sig(n / 1e9)}B` : `${sig(n / 1e6)}M`);

/** Checks the options; throws a TransferError naming the one at fault. */
function checkOptions(config: TrialConfig, o: TransferOptions): void {
  if (typeof o.target?.id !== 'string' || o.target.id.trim() === '')
    throw new TransferError('target.id', 'expected a Hub id or a path of the larger model');
  for (const [field, v] of [
    ['target.params', o.target.params],
    ['sourceParams', o.sourceParams],
  ] as const)
    if (!positiveInteger(v))
      throw new TransferError(field, `expected a parameter count (a whole number ≥ 1), got ${v}`);
  if (!(LR_RULES as readonly string[]).includes(o.lr))
    throw new TransferError('lr', `expected one of ${LR_RULES.join(', ')}, got '${String(o.lr)}'`);
  if (o.r !== undefined && !positiveInteger(o.r))
    throw new TransferError('r', `expected a whole number ≥ 1, got ${o.r}`);
  if (o.batch !== undefined) {
    const examples = config.batch * config.accum;
    if (!positiveInteger(o.batch) || examples % o.batch !== 0)
      throw new TransferError(
        'batch',
        `expected a micro-batch that divides the study's ${examples} examples per step (batch ${config.batch} × accumulation ${config.accum}), got ${o.batch}`,
      );
  }
}

/** The configuration on the target model, and the record of how each value was made. */
export function transferConfig(
  config: TrialConfig,
  options: TransferOptions,
): { config: TrialConfig; record: TransferRecord } {
  checkOptions(config, options);
  const factor = options.lr === 'keep' ? 1 : Math.sqrt(options.sourceParams / options.target.params);
  const lr = config.lr * factor;
  const r = options.r ?? config.r;
  const alpha = r === config.r ? config.alpha : config.alpha * Math.sqrt(r / config.r);
  const examples = config.batch * config.accum;
  const batch = options.batch ?? config.batch;
  const accum = examples / batch;
  const tokensPerStep = examples * config.seq;
  const size = `${millions(options.sourceParams)} → ${millions(options.target.params)} parameters`;
  const lines = [
    options.lr === 'keep'
      ? `learning rate ${sig(lr)} kept (rule keep; ${size})`
      : `learning rate ${sig(config.lr)} → ${sig(lr)}: × (params_small / params_large)^0.5 = ${sig(factor)} (rule sqrt-params; ${size})`,
    r === config.r
      ? `rank ${r} and alpha ${sig(alpha)} kept`
      : `rank ${config.r} → ${r}, alpha ${sig(config.alpha)} → ${sig(alpha)}: alpha/√r kept (rsLoRA, Kalajdzievski 2023)`,
    batch === config.batch
      ? `batch ${batch} × accumulation ${accum} kept (${tokensPerStep} tokens per step)`
      : `batch ${config.batch} × accumulation ${config.accum} → ${batch} × ${accum}: ${examples} examples × ${config.seq} tokens = ${tokensPerStep} tokens per step kept`,
  ];
  return {
    config: { ...config, lr, r, alpha, batch, accum },
    record: {
      from: { params: options.sourceParams },
      to: { id: options.target.id, params: options.target.params },
      lr: { rule: options.lr, factor, from: config.lr, to: lr },
      rank: { from: config.r, to: r, alphaFrom: config.alpha, alphaTo: alpha },
      batch: { from: [config.batch, config.accum], to: [batch, accum], tokensPerStep },
      lines,
    },
  };
}

/**
 * The narrowed space of the continued search on the target model: parameters the transfer pinned (r and alpha
 * when the rank changed, batch and accumulation when the micro-batch did) leave the search, and the learning
 * rate's range moves by the rule's factor and widens to hold the bracket ×⅓ .. ×3 around the transferred value
 * (an `lr` parameter is added when the study did not search it). Returns the space and the lr's name in it.
 */
export function transferSpace(
  space: SpaceSpec,
  record: TransferRecord,
): { space: SpaceSpec; lrParam: string } {
  const pinned = new Set<TrialField>();
  if (record.rank.to !== record.rank.from) pinned.add('r').add('alpha');
  const [batch, accum] = record.batch.from;
  if (record.batch.to[0] !== batch || record.batch.to[1] !== accum) pinned.add('batch').add('accum');
  const out: SpaceSpec = {};
  const dropped = new Set<string>();
  for (const [name, spec] of Object.entries(space)) {
    const field = fieldOfParam(name);
    const source = spec.type === 'derived' ? spec.from : undefined;
    if ((field !== undefined && pinned.has(field)) || (source !== undefined && dropped.has(source))) {
      dropped.add(name);
      continue;
    }
    const parent = 'condition' in spec ? spec.condition?.param : undefined;
    if (parent !== undefined && dropped.has(parent))
      throw new TransferError('space', `'${name}' depends on '${parent}', which the transfer fixes`);
    out[name] = spec;
  }
  const lr = record.lr.to;
  const lrParam = Object.keys(out).find((n) => out[n].type !== 'derived' && fieldOfParam(n) === 'lr') ?? 'lr';
  const spec = out[lrParam];
  if (spec === undefined || spec.type === 'derived' || spec.type === 'categorical' || spec.type === 'int')
    out[lrParam] = { type: 'float', low: lr / 3, high: lr * 3, log: true };
  else {
    const f = record.lr.factor;
    out[lrParam] = { ...spec, low: Math.min(spec.low * f, lr / 3), high: Math.max(spec.high * f, lr * 3) };
  }
  return { space: out, lrParam };
}
