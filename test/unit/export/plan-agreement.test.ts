// Every export states the search the study ran: for each sampler × pruner/PBT × objective, a real study made
// from a StudyPlan (as `tune` and the page make it) is exported, and each file's sampler, pruner, PBT interval,
// objective, direction, evaluation and logging intervals and precision are compared with the plan and the study.
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { exportBundle, EXPORT_PATHS, type ExportFile } from '../../../src/engine/export/bundle.ts';
import { planExportContext, type PlanExportInput } from '../../../src/engine/export/context.ts';
import type { MixedPrecision } from '../../../src/engine/export/hf.ts';
import { OPTUNA_SEARCH, RAY_SCHEDULER } from '../../../src/engine/export/search-python.ts';
import { createStudy, SAMPLER_NAMES, type Study } from '../../../src/engine/search/index.ts';
import { OBJECTIVES, type Objective } from '../../../src/engine/tune/objective.ts';
import { PRUNER_CHOICES, StudyPlan, type PrunerChoice } from '../../../src/engine/tune/plan.ts';
import type { Precision } from '../../../src/engine/train/config.ts';
import { spawnSync } from 'node:child_process';
import { python3Available } from './python.ts';

/** Runs a Python program read from stdin (the tables are too long for `python3 -c`); its stdout. */
function runPythonStdin(source: string): string {
  const r = spawnSync('python3', ['-'], { input: source, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(r.stderr || String(r.error));
  return r.stdout;
}

const OBJECTIVE_NAMES = Object.keys(OBJECTIVES) as Objective[];

function planOf(
  sampler: StudyPlan['spec']['sampler'],
  pruner: PrunerChoice,
  objective: Objective,
  precision: Precision = 'auto',
) {
  return StudyPlan.create(
    {
      // Nothing PBT cannot move mid-trial; a log float, a linear float and a choice.
      space: {
        lr: { type: 'float', low: 1e-5, high: 1e-2, log: true },
        lora_dropout: { type: 'float', low: 0, high: 0.3 },
        schedule: { type: 'categorical', choices: ['linear', 'cosine'] },
        // LoRA+ is searchable, PBT included (it changes no shape).
        loraplus_lr_ratio: { type: 'float', low: 1, high: 32, log: true },
      },
      fixed: { steps: 24, precision },
      sampler,
      pruner,
      objective,
      trials: 5,
      valRatio: 0.1,
    },
    { family: 'llama' },
  );
}

/** A real study from the plan's options, with made-up values on the objective's scale. */
function studyOf(plan: StudyPlan): Study {
  const study = createStudy(plan.studyOptions());
  const classification = OBJECTIVES[plan.spec.objective].classification;
  for (let i = 0; i < 5; i++) {
    const trial = study.ask();
    const lr = trial.params.lr as number;
    const loss = 1 + (Math.log10(lr) + 3.5) ** 2;
    const value = classification
      ? 1 / (1 + loss)
      : plan.spec.objective === 'perplexity'
        ? Math.exp(loss)
        : loss;
    trial.report(plan.evalEvery, value);
    study.tell(trial, value);
  }
  return study;
}

const input = (study: Study): PlanExportInput => ({
  study,
  model: { id: 'HuggingFaceTB/SmolLM2-135M', revision: 'main', family: 'llama' },
  dataset: { fingerprint: 'sha256:0', name: 'train.csv', format: 'classification' },
  tunelabVersion: '0.1.0',
  date: '2025-01-02T03:04:05.000Z',
});

const text = (files: ExportFile[], path: string): string => {
  const f = files.find((x) => x.path === path);
  if (!f) throw new Error(`no ${path}`);
  return typeof f.contents === 'string' ? f.contents : new TextDecoder().decode(f.contents);
};
const json = (files: ExportFile[], path: string) => JSON.parse(text(files, path)) as Record<string, unknown>;

/** The scripts' data: everything from MODEL_ID to the static body, less the blocks that need optuna or ray. */
function constantsOf(script: string): string {
  const block = script.slice(script.indexOf('MODEL_ID = '), script.indexOf('ALPACA_WITH_INPUT'));
  return block.replace(/^(?:SUGGEST|PARAM_SPACE) = \{[\s\S]*?\n\}\n/gm, '');
}

interface Case {
  sampler: (typeof SAMPLER_NAMES)[number];
  pruner: PrunerChoice;
  objective: Objective;
}
const CASES: Case[] = SAMPLER_NAMES.flatMap((sampler) =>
  PRUNER_CHOICES.flatMap((pruner) => OBJECTIVE_NAMES.map((objective) => ({ sampler, pruner, objective }))),
);

describe('exports agree with the study plan', () => {
  const runs = CASES.map((c) => {
    const plan = planOf(c.sampler, c.pruner, c.objective);
    const study = studyOf(plan);
    const files = exportBundle(planExportContext(plan, input(study)));
    return { ...c, plan, study, files };
  });

  it(`covers ${CASES.length} combinations: every sampler × pruner/PBT × objective`, () => {
    expect(CASES.length).toBe(SAMPLER_NAMES.length * PRUNER_CHOICES.length * OBJECTIVE_NAMES.length);
  });

  it('best-config.json: sampler, pruner and its options, PBT, objective, direction, best trial', () => {
    for (const { sampler, pruner, objective, plan, study, files } of runs) {
      const where = `${sampler}/${pruner}/${objective}`;
      const b = json(files, EXPORT_PATHS.bestConfig);
      const s = b.study as Record<string, unknown>;
      const direction = OBJECTIVES[objective].direction;
      expect(s.sampler, where).toBe(sampler);
      expect(s.pruner, where).toBe(pruner);
      const prunerSpec = plan.prunerSpec();
      expect(s.pruner_options, where).toEqual(
        typeof prunerSpec === 'string' ? { type: prunerSpec } : prunerSpec,
      );
      expect(s.pbt, where).toEqual(pruner === 'pbt' ? { interval: plan.evalEvery } : null);
      expect(s.objective, where).toBe(objective);
      expect(s.direction, where).toBe(direction);
      expect(s.plan, where).toEqual(plan.toJSON());
      expect(b.metrics, where).toMatchObject({ objective, direction, value: study.bestTrial!.value });
      expect(b.trial, where).toBe(study.bestTrial!.number);
      const ratio = study.bestTrial!.params.loraplus_lr_ratio;
      expect((b.hyperparameters as Record<string, unknown>).loraplusLrRatio, where).toBe(ratio);
    }
  });

  it('training_args.json, sft_config.json, axolotl.yaml: the same eval and logging intervals', () => {
    for (const { sampler, pruner, objective, plan, study, files } of runs) {
      const where = `${sampler}/${pruner}/${objective}`;
      const t = json(files, EXPORT_PATHS.trainingArguments);
      const sft = json(files, EXPORT_PATHS.sftConfig);
      const y = parseYaml(text(files, EXPORT_PATHS.axolotl)) as Record<string, unknown>;
      expect(t.eval_steps, where).toBe(plan.evalEvery);
      expect(y.eval_steps, where).toBe(plan.evalEvery);
      expect(t.logging_steps, where).toBe(Math.min(10, plan.evalEvery));
      expect(y.logging_steps, where).toBe(t.logging_steps);
      expect(sft.logging_steps, where).toBe(t.logging_steps);
      // LoRA+ where each tool takes it: axolotl's key, PEFT's optimizer in lora_config.py; no TrainingArguments key.
      expect(y.loraplus_lr_ratio, where).toBe(study.bestTrial!.params.loraplus_lr_ratio);
      expect(text(files, EXPORT_PATHS.loraConfig), where).toContain(
        `LORAPLUS_LR_RATIO = ${String(study.bestTrial!.params.loraplus_lr_ratio)}`,
      );
      expect(
        Object.keys(t).filter((k) => k.includes('loraplus')),
        where,
      ).toEqual([]);
      const header = text(files, EXPORT_PATHS.axolotl).split('\n')[0];
      expect(header, where).toContain(`${objective} = `);
      expect(header, where).toContain(`${OBJECTIVES[objective].direction}d`);
      expect(header, where).toContain(`sampler ${sampler}`);
    }
  });

  it.skipIf(!python3Available)(
    'the Optuna and Ray Tune scripts: objective, direction, sampler, pruner, PBT',
    () => {
      const blocks = runs.flatMap((r) => [
        constantsOf(text(r.files, EXPORT_PATHS.optuna)),
        constantsOf(text(r.files, EXPORT_PATHS.rayTune)),
      ]);
      // optuna and ray are not installed here: stand-ins that record which class the scripts build, with what.
      const out = runPythonStdin(
        'import json, types\n' +
          'def recorder(name):\n' +
          '    return lambda *args, **kwargs: {"class": name, "kwargs": {k: v for k, v in kwargs.items() if k not in ("seed", "hyperparam_mutations")}}\n' +
          'optuna = types.SimpleNamespace(\n' +
          '    samplers=types.SimpleNamespace(**{n: recorder(n) for n in ["RandomSampler", "GridSampler", "QMCSampler", "GPSampler", "TPESampler"]}),\n' +
          '    pruners=types.SimpleNamespace(**{n: recorder(n) for n in ["MedianPruner", "SuccessiveHalvingPruner", "NopPruner"]}),\n' +
          ')\n' +
          'RAY = {n: recorder(n) for n in ["ASHAScheduler", "FIFOScheduler", "MedianStoppingRule", "PopulationBasedTraining"]}\n' +
          `blocks = json.loads(${JSON.stringify(JSON.stringify(blocks))})\n` +
          `search = json.loads(${JSON.stringify(JSON.stringify([OPTUNA_SEARCH, RAY_SCHEDULER]))})\n` +
          'out = []\n' +
          'for block in blocks:\n' +
          '    g = {"optuna": optuna, "PARAM_SPACE": {}, **RAY}\n' +
          '    exec(block, g)\n' +
          '    exec(search[0], g)\n' +
          '    exec(search[1], g)\n' +
          '    keys = ["OBJECTIVE", "DIRECTION", "MODE", "SAMPLER", "PRUNER", "PBT_INTERVAL", "BEST_CONFIG", "GRID"]\n' +
          '    row = {k: g[k] for k in keys if k in g}\n' +
          '    row["built"] = {"sampler": g["make_sampler"](0)["class"], "pruner": g["make_pruner"](), "scheduler": g["make_scheduler"]()}\n' +
          '    out.append(row)\n' +
          'print(json.dumps(out))\n',
      );
      const results = JSON.parse(out) as Record<string, unknown>[];
      runs.forEach(({ sampler, pruner, objective, plan, study }, i) => {
        const direction = OBJECTIVES[objective].direction;
        const prunerSpec = plan.prunerSpec();
        const expectedPruner =
          typeof prunerSpec === 'object' && prunerSpec.type === 'median'
            ? {
                type: 'median',
                n_startup_trials: 1,
                n_warmup_steps: plan.evalEvery,
                interval_steps: 1,
                n_min_trials: 1,
              }
            : typeof prunerSpec === 'object' && prunerSpec.type === 'asha'
              ? {
                  type: 'asha',
                  min_resource: plan.evalEvery,
                  reduction_factor: 4,
                  min_early_stopping_rate: 0,
                }
              : { type: 'none' };
        for (const [j, script] of [EXPORT_PATHS.optuna, EXPORT_PATHS.rayTune].entries()) {
          const where = `${sampler}/${pruner}/${objective} ${script}`;
          const g = results[2 * i + j];
          expect(g.OBJECTIVE, where).toBe(objective);
          expect(g.DIRECTION, where).toBe(direction);
          expect(g.MODE, where).toBe(direction === 'minimize' ? 'min' : 'max');
          // 'auto' runs the GP on this small, numeric-heavy space without conditions, as the study did.
          expect(g.SAMPLER, where).toBe(sampler === 'auto' ? 'gp' : sampler);
          expect(g.PRUNER, where).toEqual(expectedPruner);
          expect(g.PBT_INTERVAL, where).toBe(pruner === 'pbt' ? plan.evalEvery : null);
          const cfg = g.BEST_CONFIG as Record<string, unknown>;
          expect(cfg.eval_every, where).toBe(plan.evalEvery);
          expect(cfg.logging_steps, where).toBe(Math.min(10, plan.evalEvery));
          expect(cfg.lr, where).toBe(study.bestTrial!.params.lr);
          expect(cfg.loraplus_lr_ratio, where).toBe(study.bestTrial!.params.loraplus_lr_ratio);
          const built = g.built as Record<
            string,
            { class: string; kwargs: Record<string, unknown> } | string
          >;
          const samplerClass = {
            random: 'RandomSampler',
            grid: 'GridSampler',
            sobol: 'QMCSampler',
            tpe: 'TPESampler',
            gp: 'GPSampler',
            auto: 'GPSampler',
          }[sampler];
          expect(built.sampler, where).toBe(samplerClass);
          const { type: _type, ...prunerKwargs } = expectedPruner;
          expect(built.pruner, where).toEqual(
            pruner === 'median'
              ? { class: 'MedianPruner', kwargs: prunerKwargs }
              : pruner === 'asha'
                ? { class: 'SuccessiveHalvingPruner', kwargs: prunerKwargs }
                : { class: 'NopPruner', kwargs: {} },
          );
          const scheduler = built.scheduler as { class: string; kwargs: Record<string, unknown> };
          expect(scheduler.class, where).toBe(
            {
              none: 'FIFOScheduler',
              median: 'MedianStoppingRule',
              asha: 'ASHAScheduler',
              pbt: 'PopulationBasedTraining',
            }[pruner],
          );
          if (pruner === 'pbt') expect(scheduler.kwargs.perturbation_interval, where).toBe(plan.evalEvery);
          if (pruner === 'asha') expect(scheduler.kwargs.grace_period, where).toBe(plan.evalEvery);
          if (pruner === 'median') expect(scheduler.kwargs.grace_period, where).toBe(plan.evalEvery);
          if (sampler === 'grid')
            expect(Object.keys(g.GRID as object).sort(), where).toEqual([
              'lora_dropout',
              'loraplus_lr_ratio',
              'lr',
              'schedule',
            ]);
          else expect(g.GRID, where).toBeUndefined();
        }
      });
    },
    60_000,
  );

  it.skipIf(!python3Available)(
    'the scripts compile for every combination',
    () => {
      const scripts = runs.flatMap((r) =>
        [EXPORT_PATHS.optuna, EXPORT_PATHS.rayTune, EXPORT_PATHS.loraConfig].map((path) => ({
          name: `${r.sampler}/${r.pruner}/${r.objective} ${path}`,
          source: text(r.files, path),
        })),
      );
      const out = runPythonStdin(
        'import json\n' +
          `scripts = json.loads(${JSON.stringify(JSON.stringify(scripts))})\n` +
          'errors = []\n' +
          'for s in scripts:\n' +
          '    try:\n' +
          '        compile(s["source"], s["name"], "exec")\n' +
          '    except SyntaxError as e:\n' +
          '        errors.append(f"{s[\'name\']}: {e}")\n' +
          'print(json.dumps(errors))\n',
      );
      expect(JSON.parse(out)).toEqual([]);
    },
    120_000,
  );
});

describe('mixed precision follows how the study trained, or the target GPU', () => {
  const cases: {
    precision: Precision;
    ran?: 'f16' | 'f32';
    target?: MixedPrecision;
    expected: MixedPrecision;
  }[] = [
    { precision: 'f32', expected: 'no' },
    { precision: 'f16', expected: 'fp16' },
    { precision: 'auto', ran: 'f32', expected: 'no' },
    { precision: 'auto', ran: 'f16', expected: 'fp16' },
    { precision: 'auto', expected: 'fp16' },
    { precision: 'f32', target: 'bf16', expected: 'bf16' },
    { precision: 'f16', target: 'no', expected: 'no' },
  ];
  it.each(cases)(
    'precision $precision, ran $ran, target $target → $expected',
    ({ precision, ran, target, expected }) => {
      const plan = planOf('random', 'none', 'val_loss', precision);
      const study = studyOf(plan);
      const files = exportBundle(
        planExportContext(plan, {
          ...input(study),
          ...(ran ? { ranPrecision: ran } : {}),
          ...(target ? { targetPrecision: target } : {}),
        }),
      );
      const t = json(files, EXPORT_PATHS.trainingArguments);
      const y = parseYaml(text(files, EXPORT_PATHS.axolotl)) as Record<string, unknown>;
      const b = json(files, EXPORT_PATHS.bestConfig);
      expect([t.fp16, t.bf16]).toEqual([expected === 'fp16', expected === 'bf16']);
      expect([y.fp16, y.bf16]).toEqual([expected === 'fp16', expected === 'bf16']);
      expect(b.mixed_precision).toBe(expected);
      expect(text(files, EXPORT_PATHS.optuna)).toContain(`"mixed_precision": "${expected}"`);
      const targetNote = (b.notes as string[]).some((n) => n.includes("the target GPU's choice"));
      expect(targetNote).toBe(target !== undefined);
    },
  );
});
