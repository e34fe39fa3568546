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
import { trainerOptionsFromFlags } from '../../../src/cli/args.ts';

describe('TrialConfig', () => {
  it('has the tunelab train defaults', () => {
    const c = trialConfigFromParams({});
    const cli = trainerOptionsFromFlags({}, { family: 'llama', maxPositions: 2048 });
    expect(trainerOptionsOf(c)).toEqual({
      ...cli,
      warmupRatio: 0,
      precision: undefined,
    } as unknown as object);
    expect(c).toEqual(defaultTrialConfig('llama'));
    expect(trialConfigFromParams({}, {}, { family: 'gpt2' }).targets).toEqual(['c_attn']);
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

  it('validates a complete config and knows the aliases', () => {
    const c = trialConfigFromParams({ r: 4, lr: 1e-4 });
    expect(validateTrialConfig(JSON.parse(JSON.stringify(c)))).toEqual(c);
    expect(fieldOfParam('learning_rate')).toBe('lr');
    expect(fieldOfParam('per_device_train_batch_size')).toBe('batch');
    expect(fieldOfParam('nope')).toBeUndefined();
    expect(fieldOfParam('toString')).toBeUndefined();
  });
});
