// Exports for a larger model: the transfer rules on their own (hand-computed values, bad options refused
// naming the option), then a whole export bundle carrying the transferred values in every file, which still
// parses, with the rule stated and the Optuna/Ray scripts trying the learning-rate bracket first.
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { exportBundle, EXPORT_PATHS, type ExportFile } from '../../../src/engine/export/bundle.ts';
import { transferConfig, TransferError, type TransferOptions } from '../../../src/engine/export/transfer.ts';
import { defaultTrialConfig } from '../../../src/engine/train/config.ts';
import { fabricatedContext } from './fixture.ts';
import { pyCompileError, python3Available, runPython } from './python.ts';

const SMOL_135M = 134_515_008;
const SMOL_360M = 361_821_120;
const target = { id: 'HuggingFaceTB/SmolLM2-360M', params: SMOL_360M, revision: 'main' };

describe('transferConfig', () => {
  const config = { ...defaultTrialConfig(), lr: 2e-4, r: 8, alpha: 16, batch: 4, accum: 2, seq: 256 };

  it('keeps the learning rate, or scales it by (small / large)^0.5', () => {
    const kept = transferConfig(config, { target, sourceParams: SMOL_135M, lr: 'keep' });
    expect(kept.config.lr).toBe(2e-4);
    expect(kept.record.lr.factor).toBe(1);
    const scaled = transferConfig(config, { target, sourceParams: SMOL_135M, lr: 'sqrt-params' });
    // √(134.5M / 361.8M) = 0.60973...
    expect(scaled.record.lr.factor).toBeCloseTo(0.609731, 5);
    expect(scaled.config.lr).toBeCloseTo(2e-4 * 0.609731, 9);
    expect(scaled.record.lines[0]).toMatch(
      /0\.0002 → 0\.0001219.*\(params_small \/ params_large\)\^0\.5 = 0\.6097.*134\.5M → 361\.8M/,
    );
  });

  it('keeps alpha/√r when the rank changes (rsLoRA), and the tokens per step when the micro-batch does', () => {
    const t = transferConfig(config, { target, sourceParams: SMOL_135M, lr: 'keep', r: 32, batch: 1 });
    expect(t.config.r).toBe(32);
    expect(t.config.alpha).toBeCloseTo(32, 12); // 16 · √(32 / 8)
    expect(t.config.alpha / Math.sqrt(32)).toBeCloseTo(16 / Math.sqrt(8), 12);
    expect([t.config.batch, t.config.accum]).toEqual([1, 8]);
    expect(t.record.batch.tokensPerStep).toBe(4 * 2 * 256);
    expect(t.record.lines[1]).toMatch(/rank 8 → 32, alpha 16 → 32: alpha\/√r kept \(rsLoRA/);
    expect(t.record.lines[2]).toMatch(
      /4 × accumulation 2 → 1 × 8: 8 examples × 256 tokens = 2048 tokens per step kept/,
    );
    // Nothing else moves: LoRA+, schedule, steps.
    const { lr: _lr, r: _r, alpha: _a, batch: _b, accum: _c, ...rest } = t.config;
    const { lr: _lr2, r: _r2, alpha: _a2, batch: _b2, accum: _c2, ...before } = config;
    expect(rest).toEqual(before);
  });

  it('refuses bad options, naming the option', () => {
    const bad = (patch: Partial<TransferOptions>, field: string) => {
      const o: TransferOptions = { target, sourceParams: SMOL_135M, lr: 'keep', ...patch };
      expect(() => transferConfig(config, o)).toThrow(TransferError);
      try {
        transferConfig(config, o);
      } catch (e) {
        expect((e as TransferError).field).toBe(field);
      }
    };
    bad({ batch: 3 }, 'batch'); // 8 examples per step do not split into micro-batches of 3
    bad({ batch: 0 }, 'batch');
    bad({ r: 2.5 }, 'r');
    bad({ target: { id: 'x', params: 0 } }, 'target.params');
    bad({ target: { id: ' ', params: 5 } }, 'target.id');
    bad({ sourceParams: -1 }, 'sourceParams');
    bad({ lr: 'cube-root' as 'keep' }, 'lr');
    expect(() => transferConfig(config, { target, sourceParams: SMOL_135M, lr: 'keep', batch: 3 })).toThrow(
      /transfer: batch: .*divides the study's 8 examples per step \(batch 4 × accumulation 2\), got 3/,
    );
  });
});

const text = (files: ExportFile[], path: string): string => {
  const f = files.find((x) => x.path === path);
  if (!f) throw new Error(`no ${path}`);
  return typeof f.contents === 'string' ? f.contents : new TextDecoder().decode(f.contents);
};

describe.each([
  { name: 'lr scaled, rank and micro-batch changed', lr: 'sqrt-params' as const, r: 32, batch: 1 },
  { name: 'lr kept, rank and batch kept', lr: 'keep' as const, r: undefined, batch: undefined },
])('an export bundle transferred to SmolLM2-360M ($name)', ({ lr, r, batch }) => {
  const base = fabricatedContext();
  const transfer: TransferOptions = {
    target,
    sourceParams: SMOL_135M,
    lr,
    ...(r ? { r } : {}),
    ...(batch ? { batch } : {}),
  };
  const expected = transferConfig(base.config, transfer);
  const files = exportBundle(
    { ...base, config: { ...base.config, loraplusLrRatio: 16 }, transfer },
    {
      'adapter_config.json': JSON.stringify({
        peft_type: 'LORA',
        base_model_name_or_path: 'HuggingFaceTB/SmolLM2-135M',
      }),
      'adapter_model.safetensors': new Uint8Array([1]),
    },
  );
  const want = { ...expected.config, loraplusLrRatio: 16 };

  it('best-config.json: the transferred values, the study values and the rule', () => {
    const b = JSON.parse(text(files, EXPORT_PATHS.bestConfig)) as Record<string, Record<string, unknown>>;
    expect(b.model.id).toBe(target.id);
    expect(b.hyperparameters).toMatchObject({
      lr: want.lr,
      r: want.r,
      alpha: want.alpha,
      batch: want.batch,
      accum: want.accum,
      loraplusLrRatio: 16,
    });
    const t = b.transfer as Record<string, unknown>;
    expect(t.lines).toEqual(expected.record.lines);
    expect(t.study_model).toEqual({ id: 'HuggingFaceTB/SmolLM2-135M', revision: 'main' });
    expect((t.study_hyperparameters as Record<string, unknown>).lr).toBe(base.config.lr);
  });

  it('HF, TRL and axolotl files carry the transferred values; axolotl and lora_config.py state the rule', () => {
    const args = JSON.parse(text(files, EXPORT_PATHS.trainingArguments)) as Record<string, unknown>;
    const sft = JSON.parse(text(files, EXPORT_PATHS.sftConfig)) as Record<string, unknown>;
    for (const hf of [args, sft])
      expect(hf).toMatchObject({
        learning_rate: want.lr,
        per_device_train_batch_size: want.batch,
        gradient_accumulation_steps: want.accum,
      });
    const yamlText = text(files, EXPORT_PATHS.axolotl);
    const y = parseYaml(yamlText) as Record<string, unknown>;
    expect(y).toMatchObject({
      base_model: target.id,
      learning_rate: want.lr,
      lora_r: want.r,
      lora_alpha: want.alpha,
      micro_batch_size: want.batch,
      gradient_accumulation_steps: want.accum,
      loraplus_lr_ratio: 16,
    });
    for (const line of expected.record.lines) expect(yamlText).toContain(line);
    const lora = text(files, EXPORT_PATHS.loraConfig);
    expect(lora).toContain(`r=${want.r},`);
    expect(lora).toContain(`lora_alpha=${want.alpha},`);
    for (const line of expected.record.lines) expect(lora).toContain(`#   ${line}`);
    // The adapter is still the study's, on the model it was trained on.
    expect(JSON.parse(text(files, EXPORT_PATHS.adapterConfig)).base_model_name_or_path).toBe(
      'HuggingFaceTB/SmolLM2-135M',
    );
  });

  it.skipIf(!python3Available)(
    'the scripts: the target model, the transferred configuration, and the lr bracket ×⅓, ×1, ×3 first',
    () => {
      for (const path of [EXPORT_PATHS.loraConfig, EXPORT_PATHS.optuna, EXPORT_PATHS.rayTune])
        expect(pyCompileError(text(files, path)), path).toBeNull();
      for (const path of [EXPORT_PATHS.optuna, EXPORT_PATHS.rayTune]) {
        const src = text(files, path);
        const constants = src
          .slice(src.indexOf('MODEL_ID = '), src.indexOf('ALPACA_WITH_INPUT'))
          .replace(/^(?:SUGGEST|PARAM_SPACE) = \{[\s\S]*?\n\}\n/gm, '');
        const helpers = src.slice(src.indexOf('def resolve_params'), src.indexOf('def target_modules'));
        const points = path === EXPORT_PATHS.rayTune ? 'RAY_FIRST_POINTS' : 'FIRST_POINTS';
        const out = runPython(
          `import json, math\n${constants}\n${helpers}\n` +
            `print(json.dumps({"order": ORDER, "model": MODEL_ID, "transfer": TRANSFER, "cfgs": [trial_config(resolve_params(p)) for p in ${points}]}))\n`,
        );
        const got = JSON.parse(out) as {
          order: string[];
          model: string;
          transfer: { lines: string[] };
          cfgs: Record<string, unknown>[];
        };
        expect(got.model, path).toBe(target.id);
        expect(got.transfer.lines, path).toEqual(expected.record.lines);
        expect(
          got.cfgs.map((c) => c.lr),
          path,
        ).toEqual([want.lr / 3, want.lr, want.lr * 3]);
        for (const c of got.cfgs)
          expect(c, path).toMatchObject({
            r: want.r,
            alpha: want.alpha,
            batch: want.batch,
            accum: want.accum,
            loraplus_lr_ratio: 16,
          });
        // The search range holds the bracket.
        const range =
          /"lr": (?:lambda trial: trial\.suggest_float\("lr", |tune\.loguniform\()([\d.e-]+), ([\d.e-]+)/.exec(
            src,
          )!;
        expect(Number(range[1]), path).toBeLessThanOrEqual(want.lr / 3);
        expect(Number(range[2]), path).toBeGreaterThanOrEqual(want.lr * 3);
        // Pinned by the transfer: r/alpha and batch/accum leave the search when they changed.
        expect(got.order.includes('r') && got.order.includes('lora_alpha'), path).toBe(r === undefined);
        expect(got.order.includes('batch') && got.order.includes('accum'), path).toBe(batch === undefined);
        expect(got.order, path).toContain('lr');
      }
    },
  );
});
