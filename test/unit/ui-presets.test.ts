// The Search step's LoRA presets are the engine's (what `tunelab tune --preset` runs), written as form rows.
import { describe, expect, it } from 'vitest';
import { preset, PRESET_NAMES } from '../../src/engine/tune/presets.ts';
import type { ParamSpec, SpaceSpec } from '../../src/engine/search/index.ts';
import { fieldOfParam } from '../../src/engine/train/config.ts';
import { defaultSettings, PRESETS, spaceSpec, studyPlan } from '../../src/ui/lib/search-config.ts';

/** Space keyed by TrialConfig field, the attention target list spelled 'attention'. */
function byField(space: SpaceSpec): Record<string, unknown> {
  const attention = 'q_proj,v_proj';
  return Object.fromEntries(
    Object.entries(space).map(([name, d]) => {
      const plain =
        d.type === 'categorical'
          ? { ...d, choices: d.choices.map((c: unknown) => (c === attention ? 'attention' : c)) }
          : d;
      const { log, ...rest } = plain as ParamSpec & { log?: boolean };
      return [fieldOfParam(name), log ? { ...rest, log } : rest];
    }),
  );
}

describe('Search step presets', () => {
  it.each(PRESET_NAMES)('%s searches exactly the engine preset’s space', (name) => {
    const engine = preset(name, 'llama');
    const rows = PRESETS[name].rows();
    expect(byField(spaceSpec(rows))).toEqual(byField(engine.space));
    // The engine's fixed values hold in the form too (lora-basic: attention targets).
    const plan = studyPlan({ ...defaultSettings(), rows }, 'llama');
    for (const [field, value] of Object.entries(engine.fixed))
      expect(plan.spec.fixed[field as keyof typeof plan.spec.fixed]).toEqual(value);
  });

  it('GPT-2 gets its own attention module for the same rows', () => {
    const rows = PRESETS['lora-basic'].rows();
    const plan = studyPlan({ ...defaultSettings(), rows }, 'gpt2');
    expect(plan.trialConfig({ lr: 1e-4, r: 8 }).targets).toEqual(preset('lora-basic', 'gpt2').fixed.targets);
  });

  it('the study budget: shared seed, at most four evaluations, recompute only when asked', () => {
    const settings = { ...defaultSettings(), stepsPerTrial: 10 };
    const params = { lr: 1e-3, r: 4, lora_alpha: 8 };
    const plain = studyPlan(settings, 'llama').trainerOptions(params);
    expect(plain).toMatchObject({ seed: settings.seed, evalEvery: 3, steps: 10 });
    expect(plain.recompute).toBeUndefined();
    const recomputing = studyPlan({ ...settings, recompute: true }, 'llama').trainerOptions(params);
    expect(recomputing.recompute).toBe(true);
    expect({ ...recomputing, recompute: undefined }).toEqual({ ...plain, recompute: undefined });
  });
});
