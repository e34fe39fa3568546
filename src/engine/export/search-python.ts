// The study's search in the Python scripts: the plan's objective, direction, sampler, pruner and PBT as
// constants, and the static Python that turns them into Optuna's sampler and pruner and Ray Tune's scheduler.
import type { Json } from '../json.ts';
import { prefersGp } from '../search/samplers/auto.ts';
import { enumerateGrid } from '../search/samplers/grid.ts';
import type { GridOptions } from '../search/samplers/index.ts';
import type { SearchSpace } from '../search/space.ts';
import type { ResolvedContext } from './context.ts';
import { pyLiteral } from './py.ts';
import type { StudySettings } from './study-settings.ts';

/**
 * The pruner with every option spelled in Optuna's keywords, at the defaults of tunelab's pruners
 * (search/pruners/median.ts, asha.ts) where the study left one out.
 */
export function optunaPrunerOptions(settings: StudySettings): Record<string, Json> {
  const p = settings.prunerSpec;
  switch (p.type) {
    case 'median':
      return {
        type: 'median',
        n_startup_trials: p.nStartupTrials ?? 5,
        n_warmup_steps: p.nWarmupSteps ?? 0,
        interval_steps: p.intervalSteps ?? 1,
        n_min_trials: p.nMinTrials ?? 1,
      };
    case 'asha':
      return {
        type: 'asha',
        min_resource: p.minResource ?? 1,
        reduction_factor: p.reductionFactor ?? 4,
        min_early_stopping_rate: p.minEarlyStoppingRate ?? 0,
      };
    default:
      return { type: 'none' };
  }
}

/** The sampler the scripts run: the study's, with 'auto' resolved as tunelab resolves it for this space. */
export function scriptSampler(settings: StudySettings, space: SearchSpace): string {
  if (settings.sampler !== 'auto') return settings.sampler;
  return prefersGp(space) ? 'gp' : 'tpe';
}

/** Each sampled parameter's grid values over the narrowed space, as the study's grid sampler lays them out. */
export function gridAxes(space: SearchSpace, options: GridOptions): Record<string, Json[]> {
  const axes: Record<string, Json[]> = {};
  for (const point of enumerateGrid(space, options))
    for (const [name, value] of Object.entries(point)) {
      const values = (axes[name] ??= []);
      if (!values.includes(value)) values.push(value);
    }
  return axes;
}

export function searchConstants(ctx: ResolvedContext, space: SearchSpace): string {
  const { settings } = ctx;
  const sampler = scriptSampler(settings, space);
  const spec = ctx.study.samplerSpec;
  const gridOptions: GridOptions = typeof spec === 'object' && spec.type === 'grid' ? spec : {};
  return [
    '# How the study searched (its plan); the search below does the same.',
    `OBJECTIVE = ${pyLiteral(settings.objective)}  # val_loss, perplexity (from eval_loss), accuracy or macro_f1`,
    `DIRECTION = ${pyLiteral(settings.direction)}`,
    `MODE = ${pyLiteral(settings.direction === 'minimize' ? 'min' : 'max')}  # DIRECTION in Ray Tune's words`,
    `SAMPLER = ${pyLiteral(sampler)}${settings.sampler === 'auto' ? "  # what the study's 'auto' runs on this space" : ''}`,
    `PRUNER = ${pyLiteral(optunaPrunerOptions(settings))}`,
    `PBT_INTERVAL = ${pyLiteral(settings.pbtInterval)}  # steps between PBT's exploit/explore; None: no PBT`,
    ...(sampler === 'grid' ? [`GRID = ${pyLiteral(gridAxes(space, gridOptions))}`] : []),
  ].join('\n');
}

/** The study's sampler and pruner in Optuna (both scripts: Ray Tune's OptunaSearch takes the sampler). */
export const OPTUNA_SEARCH = String.raw`def make_sampler(seed):
    """The study's sampler in Optuna (GPSampler needs optuna >= 3.6)."""
    if SAMPLER == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if SAMPLER == "grid":
        return optuna.samplers.GridSampler(GRID, seed=seed)
    if SAMPLER == "sobol":
        return optuna.samplers.QMCSampler(qmc_type="sobol", scramble=True, seed=seed)
    if SAMPLER == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def make_pruner():
    """The study's early stopping in Optuna. Optuna has no population-based training: under PBT_INTERVAL the
    trials run to the end (the Ray Tune script runs PBT)."""
    options = {key: value for key, value in PRUNER.items() if key != "type"}
    if PRUNER["type"] == "median":
        return optuna.pruners.MedianPruner(**options)
    if PRUNER["type"] == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(**options)
    return optuna.pruners.NopPruner()`;

/** The study's early stopping or PBT as a Ray Tune scheduler, on the step every evaluation reports. */
export const RAY_SCHEDULER = String.raw`def make_scheduler():
    """The study's early stopping or population-based training as a Ray Tune scheduler (time = the step)."""
    if PBT_INTERVAL is not None:
        # This trainable keeps no checkpoints, so an exploited trial restarts from step 0 with the donor's
        # mutated configuration (Ray warns); tunelab's PBT continues from the donor's adapter and optimizer.
        return PopulationBasedTraining(
            time_attr="step", perturbation_interval=PBT_INTERVAL, hyperparam_mutations=PARAM_SPACE,
        )
    if PRUNER["type"] == "median":
        return MedianStoppingRule(
            time_attr="step", grace_period=PRUNER["n_warmup_steps"], min_samples_required=PRUNER["n_min_trials"],
        )
    if PRUNER["type"] == "asha":
        return ASHAScheduler(
            time_attr="step", grace_period=PRUNER["min_resource"], reduction_factor=PRUNER["reduction_factor"],
            max_t=BEST_CONFIG["steps"] or 10**9,
        )
    return FIFOScheduler()`;
