// Search-space presets in the study's space format (plain JSON), named as `tunelab tune --preset` takes them.
// Parameter names and their order are those of the page's Search step rows (tunelab's own: schedule, batch,
// accum, and PEFT's lora_alpha, lora_dropout), so a preset is the same space, drawn in the same order, from
// either; target choices are
// spelled for the model family (GPT-2 fuses q/k/v into c_attn), so a preset is a function of the family.
import type { ModelFamily } from '../model/config.ts';
import { createSpace } from '../search/space.ts';
import type { SpaceSpec } from '../search/space.ts';
import { attentionTargets } from '../train/config.ts';
import type { TrialConfig } from '../train/config.ts';

export const PRESET_NAMES = ['lora-basic', 'lora-full'] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export interface Preset {
  name: PresetName;
  description: string;
  /** The searched parameters. */
  space: SpaceSpec;
  /** Values every trial shares (merged under the trial's params by trialConfigFromParams). */
  fixed: Partial<TrialConfig>;
}

/** A preset for a model family, validated by the search engine's createSpace. */
export function preset(name: PresetName, family: ModelFamily = 'llama'): Preset {
  const attention = attentionTargets(family);
  let p: Preset;
  switch (name) {
    case 'lora-basic':
      p = {
        name,
        description:
          'learning rate, rank (alpha = 2r) and dropout; adapters on the query and value projections',
        space: {
          lr: { type: 'float', low: 1e-5, high: 1e-3, log: true },
          r: { type: 'categorical', choices: [4, 8, 16, 32] },
          lora_alpha: { type: 'derived', from: 'r', scale: 2 },
          lora_dropout: { type: 'float', low: 0, high: 0.1 },
        },
        fixed: { targets: attention },
      };
      break;
    case 'lora-full':
      p = {
        name,
        description:
          'lora-basic plus targets (attention or all-linear), weight decay, warmup, schedule, batch × accumulation and layer-wise LR decay',
        space: {
          lr: { type: 'float', low: 1e-5, high: 1e-3, log: true },
          r: { type: 'categorical', choices: [4, 8, 16, 32] },
          lora_alpha: { type: 'derived', from: 'r', scale: 2 },
          lora_dropout: { type: 'float', low: 0, high: 0.1 },
          weight_decay: { type: 'float', low: 0, high: 0.1 },
          warmup_ratio: { type: 'float', low: 0, high: 0.1 },
          schedule: { type: 'categorical', choices: ['constant', 'linear', 'cosine'] },
          batch: { type: 'categorical', choices: [2, 4, 8] },
          accum: { type: 'categorical', choices: [1, 2, 4] },
          llrd: { type: 'float', low: 0.8, high: 1 },
          targets: { type: 'categorical', choices: [attention.join(','), 'all-linear'] },
        },
        fixed: {},
      };
      break;
    default:
      throw new Error(`preset: expected one of ${PRESET_NAMES.join(', ')}, got '${String(name)}'`);
  }
  createSpace(p.space);
  return p;
}
