// best-config.json: everything needed to reproduce the best trial and to know where it came from.
import { isActive } from '../search/space.ts';
import { TRIAL_FIELDS, type TrialConfig } from '../train/config.ts';
import type { ResolvedContext } from './context.ts';
import type { Json } from '../json.ts';
import { defaultMixedPrecision, hfNotes, targetModules } from './hf.ts';

export const BEST_CONFIG_FORMAT = 'tunelab.best-config/1';

/** Every field of a configuration, targets as PEFT takes them. */
function hyperparametersOf(config: TrialConfig): Record<string, Json> {
  const out: Record<string, Json> = {};
  for (const f of TRIAL_FIELDS) out[f] = f === 'targets' ? targetModules(config) : (config[f] as Json);
  return out;
}

/** best-config.json: with a transfer, `hyperparameters` are the target's and `transfer` says how they were made. */
export function bestConfig(ctx: ResolvedContext): Record<string, Json> {
  const { study, best, config } = ctx;
  const hyperparameters = hyperparametersOf(config);
  const searched: Record<string, Json> = {};
  for (const def of study.space.params)
    if (isActive(def, best.params)) searched[def.name] = best.params[def.name];
  const m = ctx.metrics ?? {};
  const { settings } = ctx;
  const metrics: Record<string, Json> = {
    objective: settings.objective,
    direction: settings.direction,
    value: best.value ?? null,
  };
  // A multi-objective study's trial: every objective's value, by name (the plan lists them in order).
  const objectives = ctx.plan?.objectives;
  if (objectives && best.values)
    metrics.objectives = objectives.map((o, i) => ({
      metric: o.metric,
      direction: o.direction,
      value: best.values![i] ?? null,
    }));
  if (m.valLoss !== undefined) metrics.val_loss = m.valLoss;
  if (m.perplexity !== undefined) metrics.perplexity = m.perplexity;
  else if (m.valLoss !== undefined) metrics.perplexity = Math.exp(m.valLoss);
  if (m.accuracy !== undefined) metrics.accuracy = m.accuracy;
  if (m.macroF1 !== undefined) metrics.macro_f1 = m.macroF1;
  const counts: Record<string, number> = { complete: 0, pruned: 0, failed: 0, running: 0 };
  for (const t of study.trials) counts[t.state]++;
  return {
    format: BEST_CONFIG_FORMAT,
    tunelab_version: ctx.tunelabVersion,
    date: ctx.date,
    model: {
      id: ctx.model.id,
      revision: ctx.model.revision,
      family: ctx.model.family,
      ...(ctx.model.note ? { note: ctx.model.note } : {}),
    },
    mixed_precision: ctx.mixedPrecision,
    dataset: {
      fingerprint: ctx.dataset.fingerprint,
      name: ctx.dataset.name ?? null,
      format: ctx.dataset.format ?? null,
      ...(ctx.dataset.columns ? { columns: ctx.dataset.columns as Json } : {}),
      val_ratio: ctx.dataset.valRatio ?? null,
      examples: ctx.dataset.examples ?? null,
    },
    trial: best.number,
    metrics,
    hyperparameters,
    searched,
    ...(ctx.transferRecord
      ? {
          transfer: {
            ...(ctx.transferRecord as unknown as Record<string, Json>),
            study_model: { id: ctx.studyModel.id, revision: ctx.studyModel.revision },
            study_hyperparameters: hyperparametersOf(ctx.studyConfig),
          },
        }
      : {}),
    study: {
      trials: study.trials.length,
      ...counts,
      sampler: settings.sampler,
      sampler_options: study.samplerSpec as Json,
      pruner: settings.pruner,
      pruner_options: settings.prunerSpec as Json,
      pbt: settings.pbtInterval === null ? null : { interval: settings.pbtInterval },
      objective: settings.objective,
      direction: settings.direction,
      seed: study.seed,
      space: study.space.spec as unknown as Json,
      ...(ctx.plan ? { plan: ctx.plan as unknown as Json } : {}),
    },
    notes: hfNotes(
      config,
      ctx.dataset.format,
      { target: ctx.mixedPrecision, trained: defaultMixedPrecision(config, ctx.ranPrecision) },
      ctx.dataset.columns,
    ),
  };
}

export function bestConfigJson(ctx: ResolvedContext): string {
  return JSON.stringify(bestConfig(ctx), null, 2) + '\n';
}
