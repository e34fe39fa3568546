// The Export step's files (src/ui/lib/exports.ts) from a real study, the page's real settings and a real PEFT
// adapter, through the engine's export library; and the plan's trial → TrainerOptions mapping, which the
// exports share with the trial workers.
import { describe, expect, it } from 'vitest';
import { EXPORT_PATHS } from '../../src/engine/export/bundle.ts';
import { resolveTargets } from '../../src/engine/lora/config.ts';
import { initLoraParams, loraLayout } from '../../src/engine/lora/init.ts';
import { exportPeftAdapter } from '../../src/engine/lora/peft.ts';
import { parseModelConfig } from '../../src/engine/model/config.ts';
import type { ModelSpec } from '../../src/engine/model/config.ts';
import { createStudy } from '../../src/engine/search/index.ts';
import type { Params, Study } from '../../src/engine/search/index.ts';
import { loraConfigOf } from '../../src/engine/train/config.ts';
import type { StudyMeta } from '../../src/ui/lib/db.ts';
import { downloadName, exportFiles, parseParamCount } from '../../src/ui/lib/exports.ts';
import { parameterCount } from '../../src/engine/model/memory.ts';
import type { BestAdapter, ExportFile, ExportInput } from '../../src/ui/lib/exports.ts';
import {
  defaultSettings,
  spaceSpec,
  studyPlan,
  type SearchSettings,
} from '../../src/ui/lib/search-config.ts';
import { parse as parseYaml } from 'yaml';
import { version } from '../../package.json';

const LLAMA: ModelSpec = parseModelConfig({
  architectures: ['LlamaForCausalLM'],
  hidden_size: 16,
  intermediate_size: 32,
  max_position_embeddings: 64,
  num_attention_heads: 2,
  num_hidden_layers: 2,
  num_key_value_heads: 1,
  vocab_size: 50,
});
const GPT2: ModelSpec = parseModelConfig({
  architectures: ['GPT2LMHeadModel'],
  n_embd: 16,
  n_head: 2,
  n_layer: 2,
  n_positions: 64,
  vocab_size: 50,
});

/** A made-up validation loss, lowest near lr = 1e-2 and r = 8. */
const madeUpLoss = (p: Params): number =>
  1 + (Math.log10(p.lr as number) + 2) ** 2 + 0.1 * Math.abs((p.r as number) - 8);

/** A study started from the settings' plan (its log holds the plan), with a random sampler. */
function studyOf(settings: SearchSettings, trials: number, family: ModelSpec['family']): Study {
  const plan = studyPlan({ ...settings, sampler: 'random' }, family);
  const study = createStudy(plan.studyOptions());
  for (let i = 0; i < trials; i++) {
    const trial = study.ask();
    trial.report(1, madeUpLoss(trial.params) + 0.5);
    if (i === 1) study.tell(trial, { state: 'pruned' });
    else study.tell(trial, madeUpLoss(trial.params));
  }
  return study;
}

function metaOf(settings: SearchSettings, study: Study): StudyMeta {
  return {
    id: 'study-1',
    name: 'test study',
    created: 0,
    updated: 0,
    status: 'finished',
    model: { kind: 'hub', label: 'SmolLM2', repo: 'HuggingFaceTB/SmolLM2-135M', revision: 'main' },
    dataFile: 'addition.jsonl',
    settings,
    trials: study.trials.length,
    bestValue: study.bestTrial?.value ?? null,
    bestTrial: study.bestTrial?.number ?? null,
  };
}

/** The PEFT files the trial worker would have kept for the best trial. */
function adapterOf(settings: SearchSettings, study: Study, spec: ModelSpec): BestAdapter {
  const best = study.bestTrial!;
  const config = studyPlan(settings, spec.family).trialConfig(best.params);
  const lora = loraConfigOf(config);
  const layout = loraLayout(resolveTargets(lora, spec), lora.r);
  const files = exportPeftAdapter(lora, spec, layout, initLoraParams(layout, 3), {
    baseModel: 'HuggingFaceTB/SmolLM2-135M',
  });
  return {
    trial: best.number,
    config: files['adapter_config.json'],
    weights: files['adapter_model.safetensors'],
  };
}

function inputOf(settings: SearchSettings, trials = 5, spec: ModelSpec = LLAMA): ExportInput {
  const study = studyOf(settings, trials, spec.family);
  return {
    meta: metaOf(settings, study),
    study,
    best: study.bestTrial ?? null,
    adapter: study.bestTrial ? adapterOf(settings, study, spec) : null,
    spec,
    dataset: { format: 'prompt-completion', fingerprint: 'sha256:abc', examples: 10 },
    date: '2025-01-02T03:04:05.000Z',
  };
}

const text = (files: ExportFile[], name: string): string => {
  const f = files.find((x) => x.path === name);
  if (!f) throw new Error(`no ${name} among ${files.map((x) => x.path).join(', ')}`);
  return typeof f.contents === 'string' ? f.contents : new TextDecoder().decode(f.contents);
};
const json = (files: ExportFile[], name: string) => JSON.parse(text(files, name)) as Record<string, unknown>;

describe('Export step files', () => {
  const settings = defaultSettings();
  const input = inputOf(settings);
  const best = input.best!;
  const { files, error } = exportFiles(input);

  it('offers every format of the export library, each described and typed', () => {
    expect(error).toBeNull();
    expect(files.map((f) => f.path).sort()).toEqual(Object.values(EXPORT_PATHS).sort());
    for (const f of files) {
      expect(f.description, f.path).not.toBe('');
      expect(f.mime, f.path).toMatch(/^[a-z]+\/[\w.+-]+$/);
    }
    expect(files.find((f) => f.path === 'trials.csv')!.mime).toBe('text/csv');
    expect(downloadName('adapter/adapter_model.safetensors')).toBe('adapter_model.safetensors');
    expect(downloadName('best-config.json')).toBe('best-config.json');
    // Every file downloads under its own name.
    expect(new Set(files.map((f) => downloadName(f.path))).size).toBe(files.length);
  });

  it("best-config.json holds the best trial's values as trained: lr, r, alpha = 2·r, all-linear", () => {
    const b = json(files, 'best-config.json');
    const hp = b.hyperparameters as Record<string, unknown>;
    expect(b.trial).toBe(best.number);
    expect(hp.lr).toBe(best.params.lr);
    expect(hp.r).toBe(best.params.r);
    expect(hp.alpha).toBe(2 * (best.params.r as number));
    expect(hp.targets).toBe('all-linear');
    // The quick preset's fixed rows and the study's budget.
    expect(hp).toMatchObject({
      dropout: 0,
      weightDecay: 0,
      warmupRatio: 0,
      schedule: 'constant',
      batch: 4,
      steps: settings.stepsPerTrial,
      seq: settings.seq,
      seed: settings.seed, // every trial shares the study's seed
      evalEvery: 2, // about four evaluations in 5 steps: every ceil(5 / 4)
      precision: settings.precision,
    });
    expect(b.model).toEqual({ id: 'HuggingFaceTB/SmolLM2-135M', revision: 'main', family: 'llama' });
    expect(b.dataset).toMatchObject({
      fingerprint: 'sha256:abc',
      name: 'addition.jsonl',
      format: 'prompt-completion',
      val_ratio: settings.valRatio,
      examples: 10,
    });
    expect(b.metrics).toMatchObject({ objective: 'val_loss', value: best.value, val_loss: best.value });
    expect(b.tunelab_version).toBe(version);
    expect(b.date).toBe('2025-01-02T03:04:05.000Z');
  });

  it('TrainingArguments has the best learning rate; the scripts continue the study', () => {
    const t = json(files, 'hf/training_args.json');
    expect(t.learning_rate).toBe(best.params.lr);
    expect(t.max_steps).toBe(settings.stepsPerTrial);
    expect(t.per_device_train_batch_size).toBe(4);
    expect(text(files, 'hf/lora_config.py')).toContain(`r=${String(best.params.r)}`);
    const optuna = text(files, 'optuna_search.py');
    expect(optuna).toContain('MODEL_ID = "HuggingFaceTB/SmolLM2-135M"');
    // lora_alpha stays derived from r (×2) in the continued search.
    expect(optuna).toContain('DERIVED = {"lora_alpha": ["r", 2, 0, False]}');
    expect(text(files, 'ray_tune_search.py')).toContain('BEST_PARAMS = ');
    expect(text(files, 'trials.csv').trim().split('\n')).toHaveLength(1 + input.study.trials.length);
    expect(text(files, 'study.jsonl')).toBe(input.study.log());
  });

  it('passes the adapter bytes through unchanged', () => {
    const weights = files.find((f) => f.path === 'adapter/adapter_model.safetensors')!;
    expect(weights.contents).toBe(input.adapter!.weights);
    expect(weights.mime).toBe('application/octet-stream');
    expect(text(files, 'adapter/adapter_config.json')).toBe(input.adapter!.config);
  });

  it("maps 'attention' targets to the family's attention modules", () => {
    const s = defaultSettings();
    s.rows = s.rows.map((r) => (r.name === 'targets' ? { ...r, fixed: 'attention' } : r));
    const llama = exportFiles(inputOf(s, 4, LLAMA));
    expect(llama.error).toBeNull();
    const hp = json(llama.files, 'best-config.json').hyperparameters as Record<string, unknown>;
    expect(hp.targets).toEqual(['q_proj', 'v_proj']);
    const modules = json(llama.files, 'adapter/adapter_config.json').target_modules as string[];
    expect([...modules].sort()).toEqual(['q_proj', 'v_proj']);
    const gpt2 = exportFiles(inputOf(s, 4, GPT2));
    expect(gpt2.error).toBeNull();
    const b = json(gpt2.files, 'best-config.json');
    expect((b.hyperparameters as Record<string, unknown>).targets).toEqual(['c_attn']);
    expect((b.model as Record<string, unknown>).family).toBe('gpt2');
    expect(text(gpt2.files, 'hf/lora_config.py')).toContain('"c_attn"');
  });

  it('exports everything but the adapter when the best trial has none stored', () => {
    const noAdapter = exportFiles({ ...input, adapter: null });
    expect(noAdapter.error).toBeNull();
    expect(noAdapter.files.map((f) => f.path).sort()).toEqual(
      Object.values(EXPORT_PATHS)
        .filter((p) => !p.startsWith('adapter/'))
        .sort(),
    );
    // An adapter of another trial (an earlier best) is not passed off as the best one's.
    const stale = exportFiles({ ...input, adapter: { ...input.adapter!, trial: best.number + 100 } });
    expect(stale.files.some((f) => f.path.startsWith('adapter/'))).toBe(false);
  });

  it('gives no files, and does not throw, while no trial is complete', () => {
    const study = createStudy({ space: spaceSpec(settings.rows), sampler: 'random', seed: 1 });
    const running = study.ask();
    const result = exportFiles({ ...input, study, best: null, adapter: null });
    expect(result).toEqual({ files: [], error: null });
    expect(exportFiles({ ...input, study, best: study.trial(running.number), adapter: null })).toEqual({
      files: [],
      error: null,
    });
  });

  it('says in words why an export failed, and still offers the study log', () => {
    // A study stored before plans were logged: its plan comes from the stored settings, which are bad here.
    const s = defaultSettings();
    s.rows = s.rows.map((r) => (r.name === 'batch' ? { ...r, fixed: 'lots' } : r));
    const study = createStudy({ space: spaceSpec(s.rows), sampler: 'random', seed: 1 });
    study.tell(study.ask(), 1);
    const result = exportFiles({
      ...input,
      study,
      best: study.bestTrial!,
      meta: { ...input.meta, settings: s },
    });
    expect(result.error).toMatch(/^The exports could not be built: .*batch.*lots/);
    expect(result.files.map((f) => f.path)).toEqual(['study.jsonl']);
  });
});

describe("a trial's trainer options from the form's plan", () => {
  const settings: SearchSettings = { ...defaultSettings(), stepsPerTrial: 5, seq: 24, seed: 43 };
  const quick: Params = { lr: 0.01, r: 8, lora_alpha: 16 };

  it('gives the options it gave before for a typical trial, plus the Trainer defaults spelled out', () => {
    expect(studyPlan(settings, 'llama').trainerOptions(quick)).toEqual({
      lora: { r: 8, alpha: 16, dropout: 0, targets: 'all-linear', rslora: false },
      optimizer: 'adamw',
      lr: 0.01,
      weightDecay: 0,
      schedule: 'constant',
      warmupRatio: 0,
      batch: 4,
      accum: 1,
      seq: 24,
      steps: 5,
      seed: 43,
      // The Trainer's own defaults (withDefaults in trainer.ts), now explicit: training is unchanged.
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      momentum: 0,
      nesterov: false,
      llrd: 1,
      loraplusLrRatio: 1,
      maxGradNorm: 1,
      evalEvery: 2,
    });
  });

  it("maps 'attention' to the family's attention projections, and passes the classes", () => {
    const s = {
      ...settings,
      rows: settings.rows.map((r) => (r.name === 'targets' ? { ...r, fixed: 'attention' } : r)),
    };
    expect(studyPlan(s, 'llama').trainerOptions(quick).lora.targets).toEqual(['q_proj', 'v_proj']);
    expect(studyPlan(s, 'gpt2').trainerOptions(quick, ['even', 'odd'])).toMatchObject({
      lora: { targets: ['c_attn'] },
      classes: ['even', 'odd'],
    });
  });

  it('throws on invalid values, naming the parameter and the value', () => {
    const plan = studyPlan(settings, 'llama');
    expect(() => plan.trainerOptions({ ...quick, lr: 'fast' })).toThrow(/'lr'.*'fast'/);
    expect(() => plan.trainerOptions({ ...quick, r: 2.5 })).toThrow(/'r'.*2\.5/);
    const bad = (name: string, fixed: string) => ({
      ...settings,
      rows: settings.rows.map((r) => (r.name === name ? { ...r, fixed } : r)),
    });
    expect(() => studyPlan(bad('schedule', 'step'), 'llama')).toThrow(/schedule.*'step'/);
    expect(() => studyPlan(bad('targets', 'all linear!'), 'llama')).toThrow(/targets.*'linear!'/);
  });
});

describe('a demo-model study exports a loadable base model', () => {
  const settings = defaultSettings();
  const base = inputOf(settings);
  const demoFiles = ['config.json', 'model.safetensors'].map((name) => ({
    name,
    contents: new TextEncoder().encode(`contents of ${name}`) as Uint8Array<ArrayBuffer>,
  }));
  const input: ExportInput = {
    ...base,
    meta: {
      ...base.meta,
      model: { kind: 'demo', label: 'Demo model (tiny Llama trained on the samples, offline)' },
    },
    demoFiles,
  };
  const { files, error } = exportFiles(input);

  it("names './demo-model', says it is a local path, and carries the demo's files there", () => {
    expect(error).toBeNull();
    const b = json(files, 'best-config.json');
    expect((b.model as Record<string, unknown>).id).toBe('./demo-model');
    expect((b.model as Record<string, unknown>).note).toMatch(/local path.*demo-model\/ beside this file/);
    expect(json(files, 'adapter/adapter_config.json').base_model_name_or_path).toBe('./demo-model');
    const axolotl = text(files, 'axolotl.yaml');
    expect((parseYaml(axolotl) as Record<string, unknown>).base_model).toBe('./demo-model');
    expect(axolotl).toMatch(/^# base_model: tunelab's built-in demo model .*local path/m);
    for (const script of ['optuna_search.py', 'ray_tune_search.py']) {
      expect(text(files, script)).toContain('MODEL_ID = "./demo-model"');
      expect(text(files, script)).toMatch(/^# tunelab's built-in demo model/m);
    }
    for (const f of demoFiles)
      expect(files.find((x) => x.path === `demo-model/${f.name}`)?.contents).toBe(f.contents);
    expect(JSON.stringify(files.map((f) => typeof f.contents === 'string' && f.contents))).not.toContain(
      'Demo model (tiny Llama',
    );
  });

  it('a local folder is named as a relative path, never by a label alone', () => {
    const local = exportFiles({
      ...base,
      meta: { ...base.meta, model: { kind: 'local', label: 'SmolLM2-135M' } },
    });
    const b = json(local.files, 'best-config.json');
    expect((b.model as Record<string, unknown>).id).toBe('./SmolLM2-135M');
    expect(local.files.some((f) => f.path.startsWith('demo-model/'))).toBe(false);
  });
});

describe('the run’s timings and GPU precision reach the exports', () => {
  const settings = defaultSettings();
  const base = inputOf(settings);
  const seconds = Object.fromEntries(base.study.trials.map((t) => [t.number, 10 + t.number / 4]));

  it('trials.csv has every trial’s duration', () => {
    const { files } = exportFiles({ ...base, timings: { precision: 'f32', seconds } });
    const rows = text(files, 'trials.csv').trim().split('\r\n').slice(1);
    rows.forEach((row, i) => expect(row.split(',').at(-2)).toBe(String(10 + i / 4)));
  });

  it('an f32 run exports no mixed precision; the target GPU choice sets fp16 or bf16', () => {
    const f32 = exportFiles({ ...base, timings: { precision: 'f32', seconds } });
    expect(json(f32.files, 'hf/training_args.json')).toMatchObject({ fp16: false, bf16: false });
    const bf16 = exportFiles({ ...base, timings: { precision: 'f32', seconds }, targetPrecision: 'bf16' });
    expect(json(bf16.files, 'hf/training_args.json')).toMatchObject({ fp16: false, bf16: true });
    const f16 = exportFiles({ ...base, timings: { precision: 'f16', seconds } });
    expect(json(f16.files, 'hf/training_args.json')).toMatchObject({ fp16: true, bf16: false });
  });
});

describe('the Export step scales up to a larger model', () => {
  const settings = defaultSettings();
  const base = inputOf(settings);

  it('reads parameter counts as people write them', () => {
    expect(parseParamCount('361821120')).toBe(361_821_120);
    expect(parseParamCount('360M')).toBe(360_000_000);
    expect(parseParamCount(' 1.1b ')).toBe(1_100_000_000);
    expect(parseParamCount('lots')).toBeNaN();
  });

  it("transfers the learning rate by the study model's own parameter count", () => {
    const { files, error } = exportFiles({
      ...base,
      transfer: {
        target: { id: 'HuggingFaceTB/SmolLM2-360M', params: parseParamCount('360M') },
        lr: 'sqrt-params',
      },
    });
    expect(error).toBeNull();
    const factor = Math.sqrt(parameterCount(LLAMA) / 360e6);
    expect(json(files, 'hf/training_args.json').learning_rate).toBeCloseTo(
      (base.best!.params.lr as number) * factor,
      15,
    );
    expect((json(files, 'best-config.json').model as Record<string, unknown>).id).toBe(
      'HuggingFaceTB/SmolLM2-360M',
    );
  });

  it('says why a transfer cannot be made, naming the input', () => {
    const noParams = exportFiles({
      ...base,
      transfer: { target: { id: 'big', params: parseParamCount('') }, lr: 'keep' },
    });
    expect(noParams.error).toMatch(/target\.params/);
    const noSpec = exportFiles({
      ...base,
      spec: null,
      transfer: { target: { id: 'big', params: 5e8 }, lr: 'keep' },
    });
    expect(noSpec.error).toMatch(/parameter count is unknown/);
  });
});
