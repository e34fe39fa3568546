// The best configuration as an axolotl config (YAML): LoRA, batches, optimizer, schedule and a dataset entry
// whose type matches the data format tunelab trained on (path left as a placeholder).
import type { ModelFamily } from '../model/config.ts';
import type { ColumnMapping } from '../train/columns.ts';
import type { DatasetFormat } from '../train/data.ts';
import type { TrialConfig } from '../train/config.ts';
import type { ResolvedContext } from './context.ts';
import { hfSchedulerType, loggingSteps, type MixedPrecision } from './hf.ts';
import { shellLine } from './shell.ts';
import { toYaml } from './yaml.ts';
import type { YamlValue } from './yaml.ts';

/**
 * axolotl `datasets:` entry for a data format, reading the study's columns (`columns`: the mapping, else each
 * format's fixed names); `train_on_inputs: false` masks prompts as tunelab does.
 */
export function axolotlDataset(
  format: DatasetFormat | undefined,
  path: string,
  columns: ColumnMapping = {},
): { [key: string]: YamlValue } {
  switch (format) {
    case 'alpaca':
      return { path, type: 'alpaca' };
    case 'prompt-completion':
      return {
        path,
        type: {
          field_instruction: columns.prompt ?? 'prompt',
          field_output: columns.completion ?? 'completion',
          format: '{instruction}',
          no_input_format: '{instruction}',
        },
      };
    case 'classification':
      return {
        path,
        type: {
          field_instruction: columns.text ?? 'text',
          field_output: columns.label ?? 'label',
          format: '{instruction}\nLabel: ',
          no_input_format: '{instruction}\nLabel: ',
        },
      };
    case 'chat':
      return {
        path,
        type: 'chat_template',
        field_messages: columns.messages ?? 'messages',
        roles_to_train: ['assistant'],
      };
    case 'tokens':
      return { path, ds_type: 'json' }; // pre-tokenized: input_ids (+ labels), no type
    case 'text':
    default:
      return { path, type: 'completion', field: columns.text ?? 'text' };
  }
}

export interface AxolotlOptions {
  outputDir: string;
  mixedPrecision: MixedPrecision;
  datasetPath?: string;
  /** The study's column mapping. */
  columns?: ColumnMapping;
}

export function axolotlConfig(
  config: TrialConfig,
  model: { id: string; revision: string | null; family: ModelFamily },
  format: DatasetFormat | undefined,
  valRatio: number,
  options: AxolotlOptions,
): { [key: string]: YamlValue } {
  const mp = options.mixedPrecision;
  const doc: { [key: string]: YamlValue } = {
    base_model: model.id,
    ...(model.revision ? { revision_of_model: model.revision } : {}),
    adapter: 'lora',
    lora_r: config.r,
    lora_alpha: config.alpha,
    lora_dropout: config.dropout,
    ...(config.targets === 'all-linear'
      ? { lora_target_linear: true }
      : { lora_target_modules: [...config.targets] }),
    ...(model.family === 'gpt2' ? { lora_fan_in_fan_out: true } : {}),
    peft_use_rslora: config.rslora,
    ...(config.loraplusLrRatio !== 1 ? { loraplus_lr_ratio: config.loraplusLrRatio } : {}),
    sequence_len: config.seq + 1,
    sample_packing: format === 'text',
    train_on_inputs: false,
    datasets: [axolotlDataset(format, options.datasetPath ?? './data/train.jsonl', options.columns)],
    val_set_size: valRatio,
    micro_batch_size: config.batch,
    gradient_accumulation_steps: config.accum,
    ...(config.steps !== null ? { max_steps: config.steps } : { num_epochs: config.epochs }),
    learning_rate: config.lr,
    lr_scheduler: hfSchedulerType(config),
    ...(config.warmupSteps > 0 ? { warmup_steps: config.warmupSteps } : { warmup_ratio: config.warmupRatio }),
    optimizer: config.optimizer === 'adamw' ? 'adamw_torch' : 'sgd',
    ...(config.optimizer === 'adamw'
      ? { adam_beta1: config.beta1, adam_beta2: config.beta2, adam_epsilon: config.eps }
      : {}),
    weight_decay: config.weightDecay,
    max_grad_norm: config.maxGradNorm,
    seed: config.seed,
    bf16: mp === 'bf16',
    fp16: mp === 'fp16',
    ...(config.evalEvery > 0 ? { eval_steps: config.evalEvery } : {}),
    logging_steps: loggingSteps(config),
    output_dir: options.outputDir,
  };
  return doc;
}

/** axolotl.yaml text. */
export function axolotlYaml(ctx: ResolvedContext): string {
  const doc = axolotlConfig(ctx.config, ctx.model, ctx.dataset.format, ctx.dataset.valRatio ?? 0.1, {
    outputDir: ctx.outputDir,
    mixedPrecision: ctx.mixedPrecision,
    ...(ctx.dataset.columns ? { columns: ctx.dataset.columns } : {}),
  });
  const { settings } = ctx;
  const search = `sampler ${settings.sampler}, ${settings.pruner === 'pbt' ? `PBT every ${settings.pbtInterval} steps` : `pruner ${settings.pruner}`}`;
  return toYaml(doc, {
    header: [
      `axolotl config of the best tunelab trial (${settings.objective} = ${ctx.best.value}, ${settings.direction}d; trial ${ctx.best.number} of ${ctx.study.trials.length}; ${search}).`,
      `tunelab ${ctx.tunelabVersion}, ${ctx.date}; dataset ${ctx.dataset.fingerprint}.`,
      ...(ctx.model.note ? [`base_model: ${ctx.model.note}`] : []),
      ...(ctx.transferRecord
        ? [`Transferred from ${ctx.studyModel.id}:`, ...ctx.transferRecord.lines.map((l) => `  ${l}`)]
        : []),
      `Run: ${shellLine(['axolotl', 'train', 'axolotl.yaml'])}`,
    ],
    comments: {
      sequence_len: 'tunelab examples hold seq + 1 tokens (seq predictions)',
      datasets: 'point path at your data',
      ...(ctx.config.llrd < 1
        ? {
            learning_rate: `tunelab used layer-wise LR decay ${ctx.config.llrd}, which axolotl does not have`,
          }
        : {}),
    },
  });
}
