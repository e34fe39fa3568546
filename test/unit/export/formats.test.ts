import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { exportBundle, EXPORT_PATHS } from '../../../src/engine/export/bundle.ts';
import type { ExportFile } from '../../../src/engine/export/bundle.ts';
import { datasetFingerprint, sha256Hex } from '../../../src/engine/export/fingerprint.ts';
import { narrowSpace } from '../../../src/engine/export/narrow.ts';
import { preset, PRESET_NAMES } from '../../../src/engine/tune/presets.ts';
import { isPrintable } from '../../../src/engine/export/printable.ts';
import { pyString } from '../../../src/engine/export/py.ts';
import { csvField, trialsCsv } from '../../../src/engine/export/trials-csv.ts';
import { toYaml, yamlNumber } from '../../../src/engine/export/yaml.ts';
import type { YamlValue } from '../../../src/engine/export/yaml.ts';
import { resolveTargets } from '../../../src/engine/lora/config.ts';
import type { LoraModelShape } from '../../../src/engine/lora/config.ts';
import { initLoraParams, loraLayout } from '../../../src/engine/lora/init.ts';
import { importPeftAdapter } from '../../../src/engine/lora/peft.ts';
import { containsParams, createSpace, createStudy } from '../../../src/engine/search/index.ts';
import type { SpaceSpec } from '../../../src/engine/search/index.ts';
import { parseCsv } from '../../../src/engine/train/csv.ts';
import { loraConfigOf, trialConfigFromParams } from '../../../src/engine/train/config.ts';
import { fabricatedContext } from './fixture.ts';
import { pyCompileError, pyYamlAvailable, python3Available, runPython } from './python.ts';

const text = (files: ExportFile[], path: string): string => {
  const c = files.find((f) => f.path === path)!.contents;
  return typeof c === 'string' ? c : new TextDecoder().decode(c);
};

describe('presets', () => {
  it('validate with createSpace for every family and spell targets per family', () => {
    for (const name of PRESET_NAMES)
      for (const family of ['llama', 'qwen2', 'mistral', 'gpt2'] as const) {
        const p = preset(name, family);
        expect(() => createSpace(p.space)).not.toThrow();
        expect(JSON.parse(JSON.stringify(p))).toEqual(p);
      }
    expect(preset('lora-basic', 'gpt2').fixed.targets).toEqual(['c_attn']);
    expect(preset('lora-basic').fixed.targets).toEqual(['q_proj', 'v_proj']);
    expect(preset('lora-full', 'gpt2').space.targets).toEqual({
      type: 'categorical',
      choices: ['c_attn', 'all-linear'],
    });
    expect(preset('lora-basic').space).toMatchObject({
      lr: { type: 'float', low: 1e-5, high: 1e-3, log: true },
      r: { type: 'categorical', choices: [4, 8, 16, 32] },
      lora_alpha: { type: 'derived', from: 'r', scale: 2 },
      lora_dropout: { type: 'float', low: 0, high: 0.1 },
    });
  });

  it('every trial of a preset study maps to a valid TrialConfig, alpha = 2r', () => {
    for (const name of PRESET_NAMES) {
      const p = preset(name, 'gpt2');
      const study = createStudy({ space: p.space, sampler: 'random', seed: 3 });
      for (let i = 0; i < 20; i++) {
        const t = study.ask();
        const c = trialConfigFromParams(t.params, p.fixed, { family: 'gpt2' });
        expect(c.alpha).toBe(2 * c.r);
        expect(c.targets === 'all-linear' || c.targets.every((m) => m === 'c_attn')).toBe(true);
        study.tell(t, 1);
      }
    }
  });
});

describe('narrowSpace', () => {
  const space: SpaceSpec = {
    lr: { type: 'float', low: 1e-5, high: 1e-3, log: true },
    dropout: { type: 'float', low: 0, high: 0.2, step: 0.01 },
    batch: { type: 'int', low: 1, high: 64, log: true },
    layers: { type: 'int', low: 0, high: 20, step: 2 },
    optimizer: { type: 'categorical', choices: ['adamw', 'sgd'] },
    momentum: { type: 'float', low: 0, high: 0.99, condition: { param: 'optimizer', in: ['sgd'] } },
    r: { type: 'int', low: 2, high: 64 },
    alpha: { type: 'derived', from: 'r', scale: 2 },
  };
  const parsed = createSpace(space);

  it('contains the best point and stays within the bounds, for points all over the space', () => {
    const study = createStudy({ space, sampler: 'sobol', seed: 1 });
    for (let i = 0; i < 64; i++) {
      const best = study.ask().params;
      const narrowed = createSpace(narrowSpace(parsed, best));
      expect(containsParams(narrowed, best)).toBe(true);
      for (const def of narrowed.sampled) {
        const orig = parsed.sampled.find((d) => d.name === def.name)!;
        if (def.kind === 'categorical' || orig.kind === 'categorical') continue;
        expect(def.low).toBeGreaterThanOrEqual(orig.low);
        expect(def.high).toBeLessThanOrEqual(orig.high);
        expect(def.step).toBe(orig.step);
        expect(def.log).toBe(orig.log);
      }
    }
  });

  it('shrinks log ranges to best·/÷3 and linear ones to ±25 % of the span; keeps choices and conditions', () => {
    const n = narrowSpace(parsed, {
      lr: 1e-4,
      dropout: 0.1,
      batch: 8,
      layers: 10,
      optimizer: 'sgd',
      momentum: 0.5,
      r: 16,
      alpha: 32,
    });
    expect(n.lr).toEqual({ type: 'float', low: 3.333e-5, high: 3e-4, log: true });
    expect(n.dropout).toEqual({ type: 'float', low: 0.05, high: 0.15, step: 0.01 });
    expect(n.batch).toEqual({ type: 'int', low: 2, high: 24, log: true });
    expect(n.layers).toEqual({ type: 'int', low: 4, high: 16, step: 2 });
    expect(n.optimizer).toEqual(space.optimizer);
    expect(n.momentum).toMatchObject({
      low: 0.2525,
      high: 0.7475,
      condition: { param: 'optimizer', in: ['sgd'] },
    });
    expect(n.r).toEqual({ type: 'int', low: 2, high: 32 });
    expect(n.alpha).toEqual(space.alpha);
    // Clipped at the bounds; an inactive parameter keeps its range.
    const edge = narrowSpace(parsed, {
      lr: 1e-3,
      dropout: 0,
      batch: 1,
      layers: 0,
      optimizer: 'adamw',
      r: 64,
      alpha: 128,
    });
    expect(edge.lr).toEqual({ type: 'float', low: 3.333e-4, high: 1e-3, log: true });
    expect(edge.dropout).toEqual({ type: 'float', low: 0, high: 0.05, step: 0.01 });
    expect(edge.momentum).toEqual(space.momentum);
  });
});

describe('SHA-256 fingerprint', () => {
  it('matches node:crypto at block boundaries and on random data', () => {
    for (const n of [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 128, 1000, 100_003]) {
      const bytes = randomBytes(n);
      const data = new Uint8Array(bytes.buffer, bytes.byteOffset, n);
      expect(sha256Hex(data), `${n} bytes`).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    expect(sha256Hex('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(sha256Hex('héllo ✓')).toBe(createHash('sha256').update('héllo ✓', 'utf8').digest('hex'));
  });

  it('fingerprints several files by their digests, order included', () => {
    expect(datasetFingerprint('a')).toBe(`sha256:${sha256Hex('a')}`);
    expect(datasetFingerprint(['a', 'b'])).not.toBe(datasetFingerprint(['b', 'a']));
    expect(datasetFingerprint(['ab', ''])).not.toBe(datasetFingerprint(['a', 'b']));
  });
});

describe('YAML emitter', () => {
  it('round-trips through the yaml parser, tricky strings included', () => {
    const doc: { [key: string]: YamlValue } = {
      a: 'yes',
      b: 'no',
      c: 'null',
      d: '1e-5',
      e: '0.5',
      f: 'with: colon',
      g: '# not a comment',
      h: 'line\nbreak',
      i: ' padded ',
      j: '',
      k: 2e-4,
      l: 1e-8,
      m: 1e21,
      n: -3.5e-7,
      o: [1, 'two', true, null, { p: [], q: {} }],
      r: { s: { t: ['u', ['v', 'w']] } },
      '3': 'numeric key',
      'key with space': 'x',
      u: 'ON',
      v: '~',
      w: '@at',
      x: 'path/to/file.jsonl',
    };
    expect(parseYaml(toYaml(doc, { header: ['a comment'], comments: { k: 'lr' } }))).toEqual(doc);
  });

  it('writes floats that PyYAML (YAML 1.1) reads as floats: a dot and a signed exponent', () => {
    expect(yamlNumber(2e-4)).toBe('0.0002');
    expect(yamlNumber(1e-8)).toBe('1.0e-8');
    expect(yamlNumber(1.5e-7)).toBe('1.5e-7');
    expect(yamlNumber(1e21)).toBe('1.0e+21');
    expect(yamlNumber(16)).toBe('16');
    const pyYamlFloat = /^[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?$/;
    for (const x of [1e-8, 3.3e-7, 1e21, 0.0002, 0.05]) expect(yamlNumber(x)).toMatch(pyYamlFloat);
  });
});

describe('CSV fields', () => {
  it('quotes what needs quoting and parses back', () => {
    const values = ['plain', 'a,b', 'say "hi"', 'two\nlines', ' lead', 'trail ', '', 'q_proj,v_proj'];
    const line = values.map(csvField).join(',') + '\r\n';
    expect(parseCsv(line)[0].fields).toEqual(values);
  });

  it('puts a quote before text a spreadsheet would run as a formula, not before numbers', () => {
    const formulas = ['=1+1', '+cmd', '-2+3', '@SUM(A1)', '\t=1', '\r=1', '=HYPERLINK("http://x","y")'];
    const line = formulas.map(csvField).join(',') + '\r\n';
    expect(parseCsv(line)[0].fields).toEqual(formulas.map((f) => `'${f}`));
    expect(csvField(-0.5)).toBe('-0.5');
    expect(csvField(-3e-7)).toBe('-3e-7');
  });

  it('trials.csv escapes a formula among a categorical parameter’s choices', () => {
    const study = createStudy({
      space: { schedule: { type: 'categorical', choices: ['=cmd|"/c calc"!A1'] } },
      sampler: 'random',
      seed: 1,
    });
    study.tell(study.ask(), 1);
    const rows = parseCsv(trialsCsv(study));
    expect(rows[1].fields[3]).toBe(`'=cmd|"/c calc"!A1`);
  });
});

/** Strings no reader should lose: C0 and C1 controls, NUL, DEL, quotes, backslashes, separators, lone surrogates. */
const NASTY = [
  'nul\u0000here',
  'c1 \u0080\u0085\u009f',
  'del\u007f',
  'bell\u0007 esc\u001b',
  'quotes " \' and \\ backslash \\x41',
  'line\nbreak\r\ntab\t',
  'sep\u2028\u2029 bom\ufeff',
  'lone \ud800 and \udfff',
  'pair 😀 é ü 中',
  '\uffff\ufffe',
  '"""triple',
];

describe('strings no reader loses', () => {
  it('YAML: double-quoted with escapes, read back unchanged by the yaml parser', () => {
    for (const s of NASTY) {
      const doc = toYaml({ s, [s]: 'key' });
      // Only printable characters (and the document's newlines) are written raw.
      const raw = Array.from(doc.replaceAll('\n', ''), (ch) => ch.codePointAt(0)!);
      expect(raw.every(isPrintable)).toBe(true);
      expect(parseYaml(doc, { version: '1.1' })).toEqual({ s, [s]: 'key' });
    }
  });

  it.skipIf(!pyYamlAvailable)('YAML: PyYAML reads them back unchanged (axolotl reads with it)', () => {
    const docs = NASTY.map((s) => toYaml({ s }, { header: [`comment ${s}`] }));
    const out = runPython(
      'import json, yaml\n' +
        // A JSON string literal is a valid Python one (kept apart from the encoder under test).
        `docs = json.loads(${JSON.stringify(JSON.stringify(docs))})\n` +
        'print(json.dumps([yaml.safe_load(d)["s"] for d in docs]))\n',
    );
    expect(JSON.parse(out)).toEqual(NASTY);
  });

  it.skipIf(!python3Available)('Python: a literal reads back as the same string', () => {
    const out = runPython(`import json\nprint(json.dumps([${NASTY.map(pyString).join(', ')}]))\n`);
    expect(JSON.parse(out)).toEqual(NASTY);
  });

  it.skipIf(!python3Available)(
    'Python: a model id with NUL, quotes and newlines leaves the scripts valid',
    () => {
      const ctx = fabricatedContext();
      ctx.model.id = 'evil"""\u0000\n\\"; import os #\u0085\ud800';
      const files = exportBundle(ctx);
      for (const path of [EXPORT_PATHS.loraConfig, EXPORT_PATHS.optuna, EXPORT_PATHS.rayTune])
        expect(pyCompileError(text(files, path)), path).toBeNull();
      const src = text(files, EXPORT_PATHS.optuna);
      const line = src.split('\n').find((l) => l.startsWith('MODEL_ID = '))!;
      expect(JSON.parse(runPython(`import json\n${line}\nprint(json.dumps(MODEL_ID))\n`))).toBe(ctx.model.id);
    },
  );
});

describe('export variants', () => {
  it('GPT-2, text data, epochs, warmup steps, SGD, f16', () => {
    const ctx = fabricatedContext({ family: 'gpt2', format: 'text', preset: 'lora-basic' });
    const best = ctx.study.bestTrial!;
    ctx.config = trialConfigFromParams(
      best.params,
      {
        ...ctx.fixed,
        steps: undefined,
        epochs: 2,
        warmupSteps: 5,
        optimizer: 'sgd',
        momentum: 0.9,
        precision: 'f16',
        evalEvery: 0,
      },
      { family: 'gpt2' },
    );
    ctx.metrics = { valLoss: 2, perplexity: 7.39, accuracy: 0.5, macroF1: 0.4 };
    const files = exportBundle(ctx);
    const t = JSON.parse(text(files, EXPORT_PATHS.trainingArguments)) as Record<string, unknown>;
    expect(t).toMatchObject({
      num_train_epochs: 2,
      warmup_steps: 5,
      optim: 'sgd',
      fp16: true,
      bf16: false,
      eval_strategy: 'no',
    });
    expect(t.optim_args).toBe('momentum=0.9,nesterov=False');
    expect(t).not.toHaveProperty('max_steps');
    expect(t).not.toHaveProperty('warmup_ratio');
    expect(t).not.toHaveProperty('adam_beta1');
    const s = JSON.parse(text(files, EXPORT_PATHS.sftConfig)) as Record<string, unknown>;
    expect(s).toMatchObject({ packing: true, dataset_text_field: 'text' });
    const lora = text(files, EXPORT_PATHS.loraConfig);
    expect(lora).toContain('target_modules=["c_attn"]');
    expect(lora).toContain('fan_in_fan_out=True');
    expect(lora).toContain(`lora_alpha=${2 * (best.params.r as number)}`);
    const y = parseYaml(text(files, EXPORT_PATHS.axolotl)) as Record<string, unknown>;
    expect(y).toMatchObject({
      num_epochs: 2,
      warmup_steps: 5,
      optimizer: 'sgd',
      fp16: true,
      bf16: false,
      sample_packing: true,
      lora_fan_in_fan_out: true,
    });
    expect(y.datasets).toEqual([{ path: './data/train.jsonl', type: 'completion', field: 'text' }]);
    const b = JSON.parse(text(files, EXPORT_PATHS.bestConfig)) as { metrics: Record<string, unknown> };
    expect(b.metrics).toMatchObject({ val_loss: 2, perplexity: 7.39, accuracy: 0.5, macro_f1: 0.4 });
    if (python3Available)
      for (const path of [EXPORT_PATHS.loraConfig, EXPORT_PATHS.optuna, EXPORT_PATHS.rayTune])
        expect(pyCompileError(text(files, path)), path).toBeNull();
    else console.warn('skipped py_compile: python3 not found');
  });

  it('all-linear targets become lora_target_linear; constant schedule with warmup is constant_with_warmup', () => {
    const ctx = fabricatedContext();
    ctx.config = {
      ...ctx.config,
      targets: 'all-linear',
      schedule: 'constant',
      warmupRatio: 0.1,
      warmupSteps: 0,
    };
    const files = exportBundle(ctx);
    const y = parseYaml(text(files, EXPORT_PATHS.axolotl)) as Record<string, unknown>;
    expect(y.lora_target_linear).toBe(true);
    expect(y).not.toHaveProperty('lora_target_modules');
    expect(y.lr_scheduler).toBe('constant_with_warmup');
    expect(text(files, EXPORT_PATHS.loraConfig)).toContain('target_modules="all-linear"');
  });

  it('writes a real PEFT adapter from the trained parameters', async () => {
    // k_proj/v_proj are 32 → 16: room for the preset's r of 16.
    const shape: LoraModelShape = {
      family: 'llama',
      hidden: 32,
      ffn: 40,
      heads: 4,
      kvHeads: 2,
      headDim: 8,
      layers: 2,
    };
    const ctx = fabricatedContext({ preset: 'lora-basic' });
    ctx.model = { ...ctx.model, spec: shape };
    const lora = loraConfigOf(ctx.config);
    const layout = loraLayout(resolveTargets(lora, shape), lora.r);
    const params = initLoraParams(layout, 1);
    const files = exportBundle(ctx, { layout, params });
    const config = text(files, EXPORT_PATHS.adapterConfig);
    const weights = files.find((f) => f.path === EXPORT_PATHS.adapterWeights)!.contents as Uint8Array;
    const back = await importPeftAdapter(config, weights, shape);
    expect(back.config).toMatchObject({
      r: ctx.config.r,
      alpha: ctx.config.alpha,
      targets: ['q_proj', 'v_proj'],
    });
    expect(back.baseModel).toBe('HuggingFaceTB/SmolLM2-135M');
    expect(back.params).toEqual(params);
  });

  it('refuses a study without a complete trial', () => {
    const ctx = fabricatedContext();
    ctx.study = createStudy({ space: preset('lora-basic').space });
    expect(() => exportBundle(ctx)).toThrow(/no complete trial/);
  });
});
