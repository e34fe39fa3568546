// The best configuration in the Hugging Face vocabulary: TrainingArguments and TRL SFTConfig keyword
// arguments as JSON (`TrainingArguments(**json.load(f))`), and a peft.LoraConfig(...) snippet. Field names are
// those of transformers ≥ 4.41 (eval_strategy) and TRL ≥ 0.20 (max_length, completion_only_loss,
// assistant_only_loss; TRL < 0.20 calls max_length max_seq_length).
import type { ModelFamily } from '../model/config.ts';
import type { ColumnMapping } from '../train/columns.ts';
import type { DatasetFormat } from '../train/data.ts';
import type { TrialConfig } from '../train/config.ts';
import type { Json } from '../json.ts';
import { pyLiteral } from './py.ts';

export type MixedPrecision = 'fp16' | 'bf16' | 'no';

/**
 * The mixed precision that reproduces how the study trained: tunelab's f16 (weights and activations f16, f32
 * accumulation, dynamic loss scaling) is fp16 AMP, f32 is none. 'auto' trained in whatever the trials' GPU had
 * (`ran`); unknown, fp16, which every CUDA GPU runs. A study run in f32 never exports bf16 or fp16 by itself:
 * the export's target-GPU choice (ExportContext.targetPrecision) does that.
 */
export function defaultMixedPrecision(config: TrialConfig, ran?: 'f16' | 'f32'): MixedPrecision {
  const trained = config.precision === 'auto' ? (ran ?? 'f16') : config.precision;
  return trained === 'f16' ? 'fp16' : 'no';
}

/** The GPUs each mixed precision suits, as the Export step offers them. */
export const MIXED_PRECISION_TARGETS: Readonly<Record<MixedPrecision, string>> = {
  fp16: "fp16 — any CUDA GPU (T4, V100, RTX 20xx); what tunelab's f16 path does",
  bf16: 'bf16 — Ampere or newer (A100, H100, RTX 30xx/40xx); no loss scaling',
  no: "fp32 — no mixed precision; what tunelab's f32 path does",
};

/**
 * Steps between training-loss logs: every evaluation interval when it is under 10, else 10; the same in
 * TrainingArguments, SFTConfig, axolotl.yaml and the search scripts.
 */
export function loggingSteps(config: TrialConfig): number {
  return config.evalEvery > 0 ? Math.min(10, config.evalEvery) : 10;
}

/** HF's 'constant' ignores warmup: a constant LR with warmup is 'constant_with_warmup'. */
export function hfSchedulerType(config: TrialConfig): string {
  if (config.schedule === 'constant')
    return config.warmupSteps > 0 || config.warmupRatio > 0 ? 'constant_with_warmup' : 'constant';
  return config.schedule;
}

export interface HfOptions {
  outputDir: string;
  /** Default: as the study trained (defaultMixedPrecision, precision 'auto' taken as f16). */
  mixedPrecision?: MixedPrecision;
}

/** transformers.TrainingArguments keyword arguments for the configuration. */
export function trainingArguments(config: TrialConfig, options: HfOptions): Record<string, Json> {
  const mp = options.mixedPrecision ?? defaultMixedPrecision(config);
  const args: Record<string, Json> = {
    output_dir: options.outputDir,
    learning_rate: config.lr,
    ...(config.steps !== null ? { max_steps: config.steps } : { num_train_epochs: config.epochs }),
    per_device_train_batch_size: config.batch,
    per_device_eval_batch_size: config.batch,
    gradient_accumulation_steps: config.accum,
    lr_scheduler_type: hfSchedulerType(config),
    ...(config.warmupSteps > 0 ? { warmup_steps: config.warmupSteps } : { warmup_ratio: config.warmupRatio }),
    weight_decay: config.weightDecay,
    max_grad_norm: config.maxGradNorm,
    optim: config.optimizer === 'adamw' ? 'adamw_torch' : 'sgd',
  };
  if (config.optimizer === 'adamw') {
    args.adam_beta1 = config.beta1;
    args.adam_beta2 = config.beta2;
    args.adam_epsilon = config.eps;
  } else if (config.momentum > 0 || config.nesterov) {
    args.optim_args = `momentum=${config.momentum},nesterov=${config.nesterov ? 'True' : 'False'}`;
  }
  args.seed = config.seed;
  args.fp16 = mp === 'fp16';
  args.bf16 = mp === 'bf16';
  args.eval_strategy = config.evalEvery > 0 ? 'steps' : 'no';
  if (config.evalEvery > 0) args.eval_steps = config.evalEvery;
  args.logging_steps = loggingSteps(config);
  args.report_to = 'none';
  return args;
}

/**
 * Loss and packing switches of TRL's SFTConfig that reproduce tunelab's handling of each data format; the text
 * field is the study's text column. (TRL has no field names for prompt, completion or messages: hfNotes says
 * which columns to rename.)
 */
export function sftDataFields(
  format: DatasetFormat | undefined,
  columns: ColumnMapping = {},
): Record<string, Json> {
  switch (format) {
    case 'text':
      return { dataset_text_field: columns.text ?? 'text', packing: true, completion_only_loss: false };
    case 'prompt-completion':
    case 'alpaca':
    case 'classification':
      return { packing: false, completion_only_loss: true };
    case 'chat':
      return { packing: false, assistant_only_loss: true };
    case 'tokens':
      return { packing: false, dataset_kwargs: { skip_prepare_dataset: true } };
    default:
      return { packing: false };
  }
}

/**
 * trl.SFTConfig keyword arguments: the TrainingArguments plus max_length and the data switches. An example
 * holds seq + 1 tokens in tunelab (seq predictions), so max_length = seq + 1 gives the same losses.
 */
export function sftConfig(
  config: TrialConfig,
  format: DatasetFormat | undefined,
  options: HfOptions,
  columns: ColumnMapping = {},
): Record<string, Json> {
  return {
    ...trainingArguments(config, options),
    max_length: config.seq + 1,
    ...sftDataFields(format, columns),
  };
}

/** target_modules as PEFT takes them: 'all-linear' or a list of names. */
export function targetModules(config: TrialConfig): Json {
  return config.targets === 'all-linear' ? 'all-linear' : [...config.targets];
}

/** A peft.LoraConfig(...) snippet (valid Python) for the configuration. */
export function loraConfigPython(
  config: TrialConfig,
  family: ModelFamily,
  transfer: readonly string[] = [],
): string {
  const lines = [
    '# LoRA configuration of the best tunelab trial.',
    ...(transfer.length > 0 ? ['# Transferred to a larger model:', ...transfer.map((l) => `#   ${l}`)] : []),
    'from peft import LoraConfig',
    '',
    'lora_config = LoraConfig(',
    `    r=${pyLiteral(config.r)},`,
    `    lora_alpha=${pyLiteral(config.alpha)},`,
    `    lora_dropout=${pyLiteral(config.dropout)},`,
    `    target_modules=${pyLiteral(targetModules(config))},`,
    `    use_rslora=${pyLiteral(config.rslora)},`,
    '    bias="none",',
    '    task_type="CAUSAL_LM",',
  ];
  if (family === 'gpt2')
    lines.push('    fan_in_fan_out=True,  # GPT-2 stores its Conv1D weights as (in, out)');
  lines.push(')', '');
  if (config.loraplusLrRatio !== 1) lines.push(...loraplusOptimizerPython(config));
  return lines.join('\n');
}

/**
 * LoRA+ in PEFT's words: TrainingArguments has no field for it, so the snippet builds the optimizer with
 * peft.optimizers.create_loraplus_optimizer (B's rate = loraplus_lr_ratio × A's) for Trainer(optimizers=...).
 */
function loraplusOptimizerPython(config: TrialConfig): string[] {
  const adamw = config.optimizer === 'adamw';
  const options = adamw
    ? `betas=(${pyLiteral(config.beta1)}, ${pyLiteral(config.beta2)}), eps=${pyLiteral(config.eps)}`
    : `momentum=${pyLiteral(config.momentum)}, nesterov=${pyLiteral(config.nesterov)}`;
  return [
    '',
    '# LoRA+ (Hayou et al. 2024): every lora_B learns at loraplus_lr_ratio x the rate of its lora_A.',
    '# trainer = Trainer(model=peft_model, args=..., optimizers=(loraplus_optimizer(peft_model), None))',
    `LORAPLUS_LR_RATIO = ${pyLiteral(config.loraplusLrRatio)}`,
    '',
    '',
    'def loraplus_optimizer(peft_model):',
    '    import torch',
    '    from peft.optimizers import create_loraplus_optimizer',
    '',
    '    return create_loraplus_optimizer(',
    '        peft_model,',
    `        torch.optim.${adamw ? 'AdamW' : 'SGD'},`,
    `        lr=${pyLiteral(config.lr)},`,
    '        loraplus_lr_ratio=LORAPLUS_LR_RATIO,',
    `        weight_decay=${pyLiteral(config.weightDecay)},`,
    `        ${options},`,
    '    )',
    '',
  ];
}

/** What the HF exports cannot express, in words, for best-config.json. */
export function hfNotes(
  config: TrialConfig,
  format: DatasetFormat | undefined,
  precision?: { target: MixedPrecision; trained: MixedPrecision },
  columns: ColumnMapping = {},
): string[] {
  const notes: string[] = [];
  const renames = Object.entries(columns).filter(([role, column]) => role !== column);
  if (renames.length > 0 && format !== 'text')
    notes.push(
      `the study's columns: rename ${renames.map(([role, column]) => `'${column}' to '${role}'`).join(', ')} for TRL (dataset.rename_columns); axolotl.yaml and the scripts read them as they are.`,
    );
  if (config.llrd < 1)
    notes.push(
      `llrd ${config.llrd}: TrainingArguments has no layer-wise LR decay; the Optuna/Ray Tune scripts build the optimizer's parameter groups for it.`,
    );
  if (config.loraplusLrRatio !== 1)
    notes.push(
      `loraplus_lr_ratio ${config.loraplusLrRatio}: TrainingArguments has no LoRA+; hf/lora_config.py's loraplus_optimizer() builds it with PEFT's create_loraplus_optimizer (pass it as Trainer(optimizers=(optimizer, None))); axolotl.yaml and the search scripts set it.`,
    );
  if (config.optimizer === 'sgd' && (config.momentum > 0 || config.nesterov))
    notes.push(
      'SGD momentum/nesterov are passed as optim_args; check your transformers version forwards them to torch.optim.SGD.',
    );
  if (precision && precision.target !== precision.trained)
    notes.push(
      `mixed precision ${precision.target} is the target GPU's choice; the study trained ${precision.trained === 'no' ? 'in f32' : 'in f16 (fp16 AMP)'}.`,
    );
  if (format === 'alpaca')
    notes.push(
      'alpaca rows: map them to {prompt, completion} with the Stanford Alpaca template for SFTConfig completion_only_loss.',
    );
  if (format === 'classification')
    notes.push("classification rows: prompt = text + '\\nLabel:', completion = ' ' + label + EOS.");
  if (format === 'chat')
    notes.push('assistant_only_loss needs a chat template with {% generation %} markers (TRL).');
  notes.push(
    'SFTConfig.max_length is seq + 1 (TRL ≥ 0.20; max_seq_length before): a tunelab example holds seq + 1 tokens.',
  );
  return notes;
}
