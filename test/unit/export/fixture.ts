// A real study over a preset space: asked and told by the search engine with made-up objective values.
import { createStudy } from '../../../src/engine/search/index.ts';
import type { Params, Study } from '../../../src/engine/search/index.ts';
import type { ModelFamily } from '../../../src/engine/model/config.ts';
import { preset } from '../../../src/engine/tune/presets.ts';
import type { PresetName } from '../../../src/engine/tune/presets.ts';
import type { ExportContext } from '../../../src/engine/export/context.ts';
import { trialConfigFromParams } from '../../../src/engine/train/config.ts';
import type { DatasetFormat } from '../../../src/engine/train/data.ts';
import { datasetFingerprint } from '../../../src/engine/export/fingerprint.ts';

/** A made-up validation loss with its minimum near lr = 3e-4, r = 16. */
export function madeUpLoss(p: Params): number {
  const lr = p.lr as number;
  const r = p.r as number;
  return 2 + (Math.log10(lr) + 3.5) ** 2 + 0.1 * Math.abs(Math.log2(r) - 4) + (p.lora_dropout as number);
}

export function fabricatedStudy(
  name: PresetName = 'lora-full',
  family: ModelFamily = 'llama',
  trials = 10,
): Study {
  const p = preset(name, family);
  const study = createStudy({ space: p.space, sampler: 'tpe', seed: 7, pruner: 'none' });
  for (let i = 0; i < trials; i++) {
    const trial = study.ask();
    const loss = madeUpLoss(trial.params);
    trial.report(10, loss + 0.5);
    trial.report(20, loss + 0.1);
    if (i === 3) study.tell(trial, { state: 'pruned' });
    else if (i === 5) study.tell(trial, { state: 'failed' });
    else study.tell(trial, loss);
  }
  return study;
}

export function fabricatedContext(
  options: { preset?: PresetName; family?: ModelFamily; format?: DatasetFormat } = {},
): ExportContext {
  const family = options.family ?? 'llama';
  const name = options.preset ?? 'lora-full';
  const study = fabricatedStudy(name, family);
  const best = study.bestTrial!;
  const fixed = { ...preset(name, family).fixed, seq: 128, steps: 200, evalEvery: 50 };
  return {
    study,
    config: trialConfigFromParams(best.params, fixed, { family }),
    fixed,
    model: {
      id: family === 'gpt2' ? 'openai-community/gpt2' : 'HuggingFaceTB/SmolLM2-135M',
      revision: 'main',
      family,
    },
    dataset: {
      fingerprint: datasetFingerprint('{"prompt": "1+1=", "completion": "2"}\n'),
      name: 'train.jsonl',
      format: options.format ?? 'prompt-completion',
      valRatio: 0.1,
      examples: 1,
    },
    tunelabVersion: '0.1.0',
    date: '2025-01-02T03:04:05.000Z',
    objective: 'val_loss',
    metrics: { valLoss: best.value },
    timings: Object.fromEntries(study.trials.map((t) => [t.number, { duration: 1.5 + t.number }])),
  };
}
