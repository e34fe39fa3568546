import { describe, expect, it } from 'vitest';
import {
  defaultTrialConfig,
  fieldOfParam,
  mapTargets,
  trainerOptionsOf,
  trialConfigFromParams,
  TrialConfigError,
  validateTrialConfig,
} from '../../../src/engine/train/config.ts';
import { TRAIN_FLAGS, trialConfigFromFlags } from '../../../src/cli/args.ts';

describe('TrialConfig', () => {
  it('has one table of defaults and bounds, which the CLI flags read too', () => {
    const c = trialConfigFromParams({});
    expect(c).toEqual(defaultTrialConfig('llama'));
    expect(trialConfigFromFlags({}, { family: 'llama', maxPositions: 2048 })).toEqual(c);
    // Every field has its flag; the flags' bounds are the table's, and errors name the flag.
    expect(Object.keys(TRAIN_FLAGS)).toHaveLength(Object.keys(c).length);
    const flags = (values: Record<string, string>) =>
      trialConfigFromFlags(values, { family: 'llama', maxPositions: 2048 });
    expect(flags({ 'weight-decay': '0.1', seq: '64' })).toMatchObject({ weightDecay: 0.1, seq: 64 });
    expect(() => flags({ dropout: '1' })).toThrow("--dropout: expected a number ≥ 0 and < 1, got '1'");
    expect(() => flags({ warmup: '5', 'warmup-ratio': '0.1' })).toThrow(
      '--warmup-ratio: give --warmup or --warmup-ratio, not both',
    );
    expect(() => flags({ steps: '5', epochs: '1' })).toThrow('give exactly one of --steps and --epochs');
    // The model's positions bound the default sequence length.
    expect(trialConfigFromFlags({}, { family: 'gpt2', maxPositions: 64 })).toMatchObject({
      seq: 64,
      targets: ['c_attn'],
    });
    expect(trainerOptionsOf(c)).toMatchObject({ lr: 2e-4, batch: 4, steps: 100, warmupRatio: 0 });
  });

  it('maps search-space names onto fields, params over fixed values', () => {
    const c = trialConfigFromParams(
      {
        lr: 3e-4,
        r: 16,
        lora_alpha: 32,
        lora_dropout: 0.05,
        weight_decay: 0.01,
        warmup_ratio: 0.05,
        scheduler: 'cosine',
        batch_size: 8,
        grad_accum: 2,
        llrd: 0.9,
        targets: 'all-linear',
      },
      { lr: 1e-3, warmupSteps: 10, seq: 64, epochs: 2, precision: 'f16' },
    );
    expect(c).toMatchObject({
      lr: 3e-4,
      r: 16,
      alpha: 32,
      dropout: 0.05,
      weightDecay: 0.01,
      warmupRatio: 0.05,
      warmupSteps: 0,
      schedule: 'cosine',
      batch: 8,
      accum: 2,
      llrd: 0.9,
      targets: 'all-linear',
      seq: 64,
      steps: null,
      epochs: 2,
      precision: 'f16',
    });
  });

  it('ties alpha to 2r unless something sets it', () => {
    expect(trialConfigFromParams({ r: 32 }).alpha).toBe(64);
    expect(trialConfigFromParams({ r: 32 }, { alpha: 8 }).alpha).toBe(8);
  });

  it('translates targets between families', () => {
    expect(trialConfigFromParams({ targets: 'q_proj,v_proj' }, {}, { family: 'gpt2' }).targets).toEqual([
      'c_attn',
    ]);
    expect(trialConfigFromParams({ targets: 'attention' }, {}, { family: 'qwen2' }).targets).toEqual([
      'q_proj',
      'v_proj',
    ]);
    expect(mapTargets(['c_attn', 'c_fc'], 'llama')).toEqual([
      'q_proj',
      'k_proj',
      'v_proj',
      'gate_proj',
      'up_proj',
    ]);
    expect(mapTargets(['o_proj', 'down_proj'], 'gpt2')).toEqual(['attn.c_proj', 'mlp.c_proj']);
  });

  it('names the parameter in every error', () => {
    const err = (fn: () => unknown): TrialConfigError => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(TrialConfigError);
        return e as TrialConfigError;
      }
      throw new Error('expected an error');
    };
    expect(err(() => trialConfigFromParams({ lora_alpha: -1 })).param).toBe('lora_alpha');
    expect(err(() => trialConfigFromParams({ batch_size: 2.5 })).message).toMatch(
      /'batch_size'.*whole number/,
    );
    expect(err(() => trialConfigFromParams({ scheduler: 'exp' })).message).toMatch(
      /'scheduler'.*constant, linear, cosine/,
    );
    expect(err(() => trialConfigFromParams({ momentun: 0.9 })).param).toBe('momentun');
    expect(err(() => trialConfigFromParams({ lora_dropout: 1 })).param).toBe('lora_dropout');
    expect(err(() => trialConfigFromParams({ targets: 'q_proj,,1x' })).param).toBe('targets');
    expect(err(() => trialConfigFromParams({ batch: 4, batch_size: 8 })).message).toMatch(
      /'batch_size'.*'batch'/,
    );
    expect(err(() => trialConfigFromParams({}, { warmupSteps: 5, warmupRatio: 0.1 })).param).toBe(
      'warmupRatio',
    );
    expect(err(() => trialConfigFromParams({}, { steps: 5, epochs: 1 })).param).toBe('steps');
  });

  it('LoRA+ ratio: searched as loraplus_lr_ratio, a flag, bounded to [1, 1024], into the trainer', () => {
    expect(trialConfigFromParams({ loraplus_lr_ratio: 16 }).loraplusLrRatio).toBe(16);
    expect(trainerOptionsOf(trialConfigFromParams({ loraplus_lr_ratio: 16 })).loraplusLrRatio).toBe(16);
    const flags = (values: Record<string, string>) =>
      trialConfigFromFlags(values, { family: 'llama', maxPositions: 2048 });
    expect(flags({ 'loraplus-lr-ratio': '4' }).loraplusLrRatio).toBe(4);
    expect(() => flags({ 'loraplus-lr-ratio': '0.5' })).toThrow(
      "--loraplus-lr-ratio: expected a number ≥ 1 and ≤ 1024, got '0.5'",
    );
    expect(() => trialConfigFromParams({ loraplus_lr_ratio: 0 })).toThrow(/'loraplus_lr_ratio'.*≥ 1/);
  });

  it('validates a complete config and knows the aliases', () => {
    const c = trialConfigFromParams({ r: 4, lr: 1e-4 });
    expect(validateTrialConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
    expect(fieldOfParam('learning_rate')).toBe('lr');
    expect(fieldOfParam('per_device_train_batch_size')).toBe('batch');
    expect(fieldOfParam('nope')).toBeUndefined();
    expect(fieldOfParam('toString')).toBeUndefined();
  });
});
