import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { exportBundle, EXPORT_PATHS } from '../../../src/engine/export/bundle.ts';
import type { ExportFile } from '../../../src/engine/export/bundle.ts';
import { resolveContext } from '../../../src/engine/export/context.ts';
import { continuedSearch } from '../../../src/engine/export/python.ts';
import { containsParams, createSpace, loadStudy } from '../../../src/engine/search/index.ts';
import { parseCsv } from '../../../src/engine/train/csv.ts';
import { fabricatedContext } from './fixture.ts';
import { pyCompileError, python3Available, runPython } from './python.ts';

const file = (files: ExportFile[], path: string): string => {
  const f = files.find((x) => x.path === path);
  if (!f) throw new Error(`no ${path} among ${files.map((x) => x.path).join(', ')}`);
  return typeof f.contents === 'string' ? f.contents : new TextDecoder().decode(f.contents);
};
const obj = (text: string): Record<string, unknown> => JSON.parse(text) as Record<string, unknown>;

describe('exportBundle', () => {
  const ctx = fabricatedContext();
  const files = exportBundle(ctx, {
    'adapter_config.json': '{"peft_type": "LORA"}',
    'adapter_model.safetensors': new Uint8Array([1, 2, 3]),
  });
  const best = ctx.study.bestTrial!;
  const config = ctx.config;

  it('lists every export once', () => {
    expect(files.map((f) => f.path).sort()).toEqual(Object.values(EXPORT_PATHS).sort());
    expect(exportBundle(ctx).some((f) => f.path.startsWith('adapter/'))).toBe(false);
  });

  it('best-config.json holds every parameter, the metrics and the provenance', () => {
    const b = obj(file(files, EXPORT_PATHS.bestConfig));
    const hp = b.hyperparameters as Record<string, unknown>;
    expect(Object.keys(hp).sort()).toEqual(Object.keys(config).sort());
    expect(hp.lr).toBe(best.params.lr);
    expect(hp.r).toBe(best.params.r);
    expect(hp.alpha).toBe(2 * (best.params.r as number));
    expect(hp.seq).toBe(128);
    expect(b.searched).toEqual(best.params);
    expect(b.metrics).toEqual({
      objective: 'val_loss',
      direction: 'minimize',
      value: best.value,
      val_loss: best.value,
      perplexity: Math.exp(best.value!),
    });
    expect(b.model).toEqual({ id: 'HuggingFaceTB/SmolLM2-135M', revision: 'main', family: 'llama' });
    expect((b.dataset as Record<string, unknown>).fingerprint).toBe(
      'sha256:' + createHash('sha256').update('{"prompt": "1+1=", "completion": "2"}\n').digest('hex'),
    );
    expect(b.tunelab_version).toBe('0.1.0');
    expect(b.date).toBe('2025-01-02T03:04:05.000Z');
    expect(b.study).toMatchObject({ trials: 10, complete: 8, pruned: 1, failed: 1, sampler: 'tpe' });
    expect(b.trial).toBe(best.number);
  });

  it('TrainingArguments JSON uses transformers field names and the best values', () => {
    const t = obj(file(files, EXPORT_PATHS.trainingArguments));
    expect(t).toMatchObject({
      output_dir: './tunelab-best',
      learning_rate: config.lr,
      max_steps: 200,
      per_device_train_batch_size: config.batch,
      gradient_accumulation_steps: config.accum,
      weight_decay: config.weightDecay,
      warmup_ratio: config.warmupRatio,
      max_grad_norm: 1,
      adam_beta1: 0.9,
      adam_beta2: 0.999,
      adam_epsilon: 1e-8,
      optim: 'adamw_torch',
      seed: 42,
      // precision 'auto' on an unknown GPU trained f16: fp16 AMP, never bf16 by itself.
      bf16: false,
      fp16: true,
      eval_strategy: 'steps',
      eval_steps: 50,
      report_to: 'none',
    });
    const hfSchedule =
      config.schedule === 'constant' && config.warmupRatio > 0 ? 'constant_with_warmup' : config.schedule;
    expect(t.lr_scheduler_type).toBe(hfSchedule);
    expect(t).not.toHaveProperty('num_train_epochs');
    expect(t).not.toHaveProperty('warmup_steps');
  });

  it('SFTConfig JSON adds max_length and the prompt-completion loss switch', () => {
    const s = obj(file(files, EXPORT_PATHS.sftConfig));
    expect(s).toMatchObject({
      max_length: 129,
      packing: false,
      completion_only_loss: true,
      learning_rate: config.lr,
    });
    expect(s).not.toHaveProperty('max_seq_length');
  });

  it('axolotl.yaml parses and names the LoRA, batch and schedule fields', () => {
    const y = parseYaml(file(files, EXPORT_PATHS.axolotl)) as Record<string, unknown>;
    expect(y).toMatchObject({
      base_model: 'HuggingFaceTB/SmolLM2-135M',
      adapter: 'lora',
      lora_r: config.r,
      lora_alpha: config.alpha,
      lora_dropout: config.dropout,
      sequence_len: 129,
      micro_batch_size: config.batch,
      gradient_accumulation_steps: config.accum,
      max_steps: 200,
      learning_rate: config.lr,
      weight_decay: config.weightDecay,
      optimizer: 'adamw_torch',
      max_grad_norm: 1,
      seed: 42,
      val_set_size: 0.1,
      output_dir: './tunelab-best',
    });
    if (config.targets === 'all-linear') expect(y.lora_target_linear).toBe(true);
    else expect(y.lora_target_modules).toEqual(config.targets);
    expect(typeof y.learning_rate).toBe('number');
    const datasets = y.datasets as Record<string, unknown>[];
    expect(datasets[0]).toMatchObject({ type: { field_instruction: 'prompt', field_output: 'completion' } });
  });

  it('the study log re-imports to the same best trial', () => {
    const { study, errors } = loadStudy(file(files, EXPORT_PATHS.studyLog));
    expect(errors).toEqual([]);
    expect(study.bestTrial).toEqual(best);
    expect(study.trials.length).toBe(10);
  });

  it('trials.csv round-trips through the CSV parser', () => {
    const records = parseCsv(file(files, EXPORT_PATHS.trials)).map((r) => r.fields);
    const [head, ...rows] = records;
    const params = Object.keys(ctx.study.space.spec);
    expect(head).toEqual([
      'number',
      'state',
      'value',
      ...params.map((p) => `params_${p}`),
      'duration',
      'intermediate_count',
    ]);
    expect(rows.length).toBe(10);
    rows.forEach((row, i) => {
      const t = ctx.study.trials[i];
      expect(Number(row[0])).toBe(t.number);
      expect(row[1]).toBe(t.state);
      expect(row[2] === '' ? undefined : Number(row[2])).toBe(t.value);
      params.forEach((p, j) => expect(row[3 + j]).toBe(String(t.params[p])));
      expect(Number(row[3 + params.length])).toBe(1.5 + i);
      expect(Number(row[4 + params.length])).toBe(2);
    });
    // 'q_proj,v_proj' holds a comma: it must come back as one field.
    expect(rows.some((r) => r.includes('q_proj,v_proj')) || rows.some((r) => r.includes('all-linear'))).toBe(
      true,
    );
  });

  it('the adapter files are passed through under adapter/, the config naming the exported base model', () => {
    expect(obj(file(files, EXPORT_PATHS.adapterConfig))).toEqual({
      peft_type: 'LORA',
      base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
    });
    expect(files.find((f) => f.path === EXPORT_PATHS.adapterWeights)!.contents).toEqual(
      new Uint8Array([1, 2, 3]),
    );
  });

  it('the narrowed space stays within the original bounds and contains the best point', () => {
    const { space } = continuedSearch(resolveContext(ctx));
    const narrowed = createSpace(space);
    expect(containsParams(narrowed, best.params)).toBe(true);
    for (const def of narrowed.sampled) {
      const orig = ctx.study.space.sampled.find((d) => d.name === def.name)!;
      if (def.kind === 'categorical') {
        expect(orig.kind === 'categorical' ? orig.choices : []).toEqual(expect.arrayContaining(def.choices));
      } else if (orig.kind !== 'categorical') {
        expect(def.low).toBeGreaterThanOrEqual(orig.low);
        expect(def.high).toBeLessThanOrEqual(orig.high);
        expect(def.high - def.low).toBeLessThan(orig.high - orig.low);
        expect(def.log).toBe(orig.log);
      }
    }
  });

  it.skipIf(!python3Available)('the Python exports compile', () => {
    for (const path of [EXPORT_PATHS.loraConfig, EXPORT_PATHS.optuna, EXPORT_PATHS.rayTune])
      expect(pyCompileError(file(files, path)), path).toBeNull();
  });

  it.skipIf(!python3Available)(
    'the scripts map a trial onto the same configuration as trialConfigFromParams',
    () => {
      for (const path of [EXPORT_PATHS.optuna, EXPORT_PATHS.rayTune]) {
        const src = file(files, path);
        // Everything above the imports of torch & co is data; execute the constants and the pure helpers.
        const constants = src.slice(src.indexOf('MODEL_ID = '), src.indexOf('ALPACA_WITH_INPUT'));
        const helpers = src.slice(src.indexOf('def resolve_params'), src.indexOf('def lora_config'));
        const tables = src.slice(src.indexOf('TO_GPT2 = '), src.indexOf('def resolve_params'));
        const out = runPython(
          `import json, math, re\n${constants.replace(/^(?:SUGGEST|PARAM_SPACE) = \{[\s\S]*?\n\}\n/m, '')}\n${tables}\n${helpers}\n` +
            'cfg = trial_config(resolve_params(RAY_FIRST_POINTS[0] if "RAY_FIRST_POINTS" in globals() else BEST_PARAMS))\n' +
            'print(json.dumps({"cfg": cfg, "targets": target_modules(cfg["targets"], "llama")}))\n',
        );
        const { cfg, targets } = JSON.parse(out) as { cfg: Record<string, unknown>; targets: unknown };
        expect(cfg).toMatchObject({
          lr: config.lr,
          r: config.r,
          alpha: config.alpha,
          dropout: config.dropout,
          weight_decay: config.weightDecay,
          warmup_ratio: config.warmupRatio,
          schedule: config.schedule,
          batch: config.batch,
          accum: config.accum,
          llrd: config.llrd,
          seq: 128,
          steps: 200,
        });
        expect(targets).toEqual(config.targets === 'all-linear' ? 'all-linear' : config.targets);
      }
    },
  );

  it('scripts carry the narrowed ranges as Optuna suggestions and Ray Tune domains', () => {
    const optuna = file(files, EXPORT_PATHS.optuna);
    const ray = file(files, EXPORT_PATHS.rayTune);
    expect(optuna).toMatch(/trial\.suggest_float\("lr", [\d.e-]+, [\d.e-]+, log=True\)/);
    expect(optuna).toContain('trial.suggest_categorical("r", [4, 8, 16, 32])');
    expect(optuna).toContain('study.enqueue_trial(point)');
    expect(optuna).toContain('FIRST_POINTS = [{');
    expect(ray).toMatch(/"lr": tune\.loguniform\(/);
    expect(ray).toContain('"r": tune.choice([4, 8, 16, 32])');
    expect(ray).toContain('tune.Tuner(');
    expect(ray).toContain('ASHAScheduler(');
    expect(ray).toContain('OptunaSearch(');
  });
});
