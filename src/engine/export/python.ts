// Python exports: literals, and the Optuna and Ray Tune scripts that continue a study on a bigger model with
// the space narrowed around the best trial. Both scripts share one body (data loading as tunelab's pipeline
// does it, the trial → LoraConfig/TrainingArguments mapping, LLRD parameter groups, train + evaluate) and differ
// only in how they search. The body is static Python (below); the study-specific part is a block of
// constants generated from the study, so what varies between exports is data, not code.
import { isActive } from '../search/space.ts';
import type { Choice, Params, SearchSpace, SpaceSpec } from '../search/space.ts';
import { createSpace } from '../search/space.ts';
import { fieldOfParam } from '../train/config.ts';
import type { ColumnMapping } from '../train/columns.ts';
import type { TrialConfig } from '../train/config.ts';
import type { ResolvedContext } from './context.ts';
import type { Json } from '../json.ts';
import { loggingSteps, type MixedPrecision } from './hf.ts';
import { narrowSpace } from './narrow.ts';
import { pyDocText, pyLiteral, pyString } from './py.ts';
import { OPTUNA_SEARCH, RAY_SCHEDULER, searchConstants } from './search-python.ts';
import { transferSpace } from './transfer.ts';
import { shellLine } from './shell.ts';

/** The TrialConfig with Python-style keys, as the scripts' BEST_CONFIG. */
export function pythonConfig(config: TrialConfig, mixedPrecision: MixedPrecision): Record<string, Json> {
  return {
    targets: config.targets === 'all-linear' ? 'all-linear' : [...config.targets],
    r: config.r,
    alpha: config.alpha,
    dropout: config.dropout,
    rslora: config.rslora,
    optimizer: config.optimizer,
    lr: config.lr,
    momentum: config.momentum,
    nesterov: config.nesterov,
    beta1: config.beta1,
    beta2: config.beta2,
    eps: config.eps,
    weight_decay: config.weightDecay,
    schedule: config.schedule,
    warmup_steps: config.warmupSteps,
    warmup_ratio: config.warmupRatio,
    llrd: config.llrd,
    loraplus_lr_ratio: config.loraplusLrRatio,
    batch: config.batch,
    accum: config.accum,
    seq: config.seq,
    steps: config.steps,
    epochs: config.epochs,
    max_grad_norm: config.maxGradNorm,
    mixed_precision: mixedPrecision,
    seed: config.seed,
    eval_every: config.evalEvery,
    logging_steps: loggingSteps(config),
  };
}

const PY_FIELD: Record<keyof TrialConfig, string> = {
  targets: 'targets',
  r: 'r',
  alpha: 'alpha',
  dropout: 'dropout',
  rslora: 'rslora',
  optimizer: 'optimizer',
  lr: 'lr',
  momentum: 'momentum',
  nesterov: 'nesterov',
  beta1: 'beta1',
  beta2: 'beta2',
  eps: 'eps',
  weightDecay: 'weight_decay',
  schedule: 'schedule',
  warmupSteps: 'warmup_steps',
  warmupRatio: 'warmup_ratio',
  llrd: 'llrd',
  loraplusLrRatio: 'loraplus_lr_ratio',
  batch: 'batch',
  accum: 'accum',
  seq: 'seq',
  steps: 'steps',
  epochs: 'epochs',
  maxGradNorm: 'max_grad_norm',
  precision: 'mixed_precision',
  seed: 'seed',
  evalEvery: 'eval_every',
};

/** The narrowed space, the best point in it, and the study facts the scripts print. */
export interface ContinuedSearch {
  space: SpaceSpec;
  /** Best trial's values of the sampled parameters (what the scripts enqueue first), transferred. */
  bestSampled: Params;
  /** With a transfer: the learning rate's parameter and the bracket ×⅓, ×1, ×3 tried first. */
  lrBracket: { param: string; values: [number, number, number] } | null;
}

/**
 * The space narrowed around the best trial; with a transfer, moved to the target model (transferSpace) with
 * the best point's learning rate replaced by the transferred one.
 */
export function continuedSearch(ctx: ResolvedContext): ContinuedSearch {
  const narrowed = narrowSpace(ctx.study.space, ctx.best.params);
  const record = ctx.transferRecord;
  const moved = record ? transferSpace(narrowed, record) : null;
  const space = moved?.space ?? narrowed;
  const parsed = createSpace(space);
  const bestSampled: Params = {};
  for (const def of parsed.sampled)
    if (isActive(def, ctx.best.params)) bestSampled[def.name] = ctx.best.params[def.name];
  if (!moved || !record) return { space, bestSampled, lrBracket: null };
  const lr = record.lr.to;
  bestSampled[moved.lrParam] = lr;
  return { space, bestSampled, lrBracket: { param: moved.lrParam, values: [lr / 3, lr, lr * 3] } };
}

/** The points the scripts try first: the best point, or with a transfer its three learning rates. */
function firstPoints(search: ContinuedSearch, best: Params): Params[] {
  const bracket = search.lrBracket;
  return bracket ? bracket.values.map((lr) => ({ ...best, [bracket.param]: lr })) : [best];
}

function constantsBlock(
  ctx: ResolvedContext,
  space: SearchSpace,
  search: ContinuedSearch,
  tool: string,
): string {
  const { bestSampled } = search;
  const fields: Record<string, string> = {};
  for (const def of space.params) {
    const field = fieldOfParam(def.name);
    if (field === undefined)
      throw new Error(`export: search parameter '${def.name}' is not a training hyperparameter`);
    fields[def.name] = PY_FIELD[field];
  }
  const searched = new Set(Object.values(fields));
  // alpha was 2·r in every trial when nothing set it: keep that tie when r changes.
  // A transfer that changed the rank set alpha by its own rule (alpha/√r kept).
  const record = ctx.transferRecord;
  const alphaFollowsR =
    !searched.has('alpha') &&
    !(record && record.rank.to !== record.rank.from) &&
    (ctx.fixed ? ctx.fixed.alpha === undefined : ctx.studyConfig.alpha === 2 * ctx.studyConfig.r);
  const conditions: Record<string, Json> = {};
  const derived: Record<string, Json> = {};
  for (const def of space.params) {
    if (def.kind === 'derived') derived[def.name] = [def.from, def.scale, def.offset, def.round];
    else if (def.condition) conditions[def.name] = [def.condition.param, def.condition.in];
  }
  const best = ctx.best;
  return [
    record
      ? `MODEL_ID = ${pyLiteral(ctx.model.id)}  # the larger model the study's best configuration is transferred to`
      : `MODEL_ID = ${pyLiteral(ctx.model.id)}  # the model the study ran on`,
    ...(ctx.model.note ? [`# ${commentText(ctx.model.note)}`] : []),
    ...(record
      ? [
          `# Transferred from ${commentText(ctx.studyModel.id)} (BEST_CONFIG holds the transferred values):`,
          ...record.lines.map((l) => `#   ${commentText(l)}`),
          `TRANSFER = ${pyLiteral(record as unknown as Json)}`,
        ]
      : []),
    `DATA_FORMAT = ${pyLiteral(ctx.dataset.format ?? null)}  # None: detected from the file`,
    columnsLine(ctx.dataset.columns),
    `VAL_RATIO = ${pyLiteral(ctx.dataset.valRatio ?? 0.1)}`,
    `BEST_VALUE = ${pyLiteral(best.value ?? null)}  # ${commentText(ctx.objective)} of trial ${best.number}, ${ctx.settings.direction}d`,
    '',
    searchConstants(ctx, space),
    '',
    "# The best trial's full training configuration; a trial overrides the parameters it samples.",
    `BEST_CONFIG = ${pyLiteral(pythonConfig(ctx.config, ctx.mixedPrecision))}`,
    '# Search parameter -> BEST_CONFIG key.',
    `PARAM_FIELDS = ${pyLiteral(fields)}`,
    `ALPHA_FOLLOWS_R = ${pyLiteral(alphaFollowsR)}  # lora_alpha = 2 r when the study did not set it`,
    '# Parameters in dependency order; conditional ones exist only when their parent takes a listed value,',
    '# derived ones are scale * parent + offset (rounded when the flag is set).',
    `ORDER = ${pyLiteral(space.params.map((d) => d.name))}`,
    `CONDITIONS = ${pyLiteral(conditions)}`,
    `DERIVED = ${pyLiteral(derived)}`,
    `# The best trial's sampled values${record ? ' (learning rate transferred)' : ''}.`,
    `BEST_PARAMS = ${pyLiteral(bestSampled)}`,
    search.lrBracket
      ? `# Tried first by ${tool}: the transferred learning rate x1/3, x1, x3 (the transfer rule is checked, not assumed).`
      : `# Tried first by ${tool}.`,
    `FIRST_POINTS = ${pyLiteral(firstPoints(search, bestSampled))}`,
  ].join('\n');
}

/** Text safe inside a Python triple-quoted docstring, on one line. */
const doc = pyDocText;

/** Text for a # comment: one line, nothing unprintable. */
/** The COLUMNS constant read_rows renames by: role -> the file's column, as the study's mapping named them. */
export function columnsLine(columns: ColumnMapping | undefined): string {
  const literal = pyLiteral((columns ?? {}) as Json);
  return `COLUMNS = ${literal}  # role -> your file's column (the study's mapping); {}: the fixed names`;
}

function commentText(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\s\x00-\x1f\x7f\u2028\u2029]+/g, ' ');
}

function header(ctx: ResolvedContext, tool: string, script: string, install: readonly string[]): string {
  const best = ctx.best;
  const { settings } = ctx;
  const model = doc(ctx.studyModel.id);
  const search =
    settings.pruner === 'pbt'
      ? `population-based training every ${settings.pbtInterval} steps`
      : `pruner ${settings.pruner}`;
  return String.raw`#!/usr/bin/env python3
"""Continue a tunelab hyperparameter search with ${tool}, e.g. on a bigger model.

Generated by tunelab ${ctx.tunelabVersion} on ${ctx.date.slice(0, 10)} from a study of ${ctx.study.trials.length} trials
(sampler ${doc(settings.sampler)}, ${search}) on ${model}; best trial ${best.number}: ${doc(settings.objective)} = ${best.value}.
The search space is the study's, narrowed around the best trial (log ranges to best / 3 .. best * 3,
linear ranges to best +- 25 % of their span, clipped to the original bounds; choices kept).
${
  ctx.transferRecord
    ? `Its best configuration is transferred to ${doc(ctx.model.id)} (see TRANSFER below).
`
    : ''
}Each trial fine-tunes --model with LoRA (PEFT) and the Hugging Face Trainer and ${settings.direction}s
${doc(settings.objective)}, with the study's sampler and ${settings.pruner === 'pbt' ? 'population-based training' : 'pruner'} (see SAMPLER and PRUNER below).
"""
# Usage (shell):
#   ${shellLine(['pip', 'install', ...install])}
#   ${shellLine(['python', script, '--model', ctx.model.id, '--data', 'train.jsonl', '--trials', '20'])}`;
}

export const IMPORTS = String.raw`import argparse
import gc
import math
import os
import re

import torch
from datasets import Dataset, load_dataset
from peft import LoraConfig, get_peft_model
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    DataCollatorForSeq2Seq,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)`;

export const BODY = String.raw`ALPACA_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:\n"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:\n"
)

# GPT-2 fuses q, k, v into c_attn; Llama-style models split them. Targets are translated to the new model.
TO_GPT2 = {
    "q_proj": ["c_attn"], "k_proj": ["c_attn"], "v_proj": ["c_attn"], "o_proj": ["attn.c_proj"],
    "gate_proj": ["c_fc"], "up_proj": ["c_fc"], "down_proj": ["mlp.c_proj"],
}
FROM_GPT2 = {
    "c_attn": ["q_proj", "k_proj", "v_proj"], "attn.c_proj": ["o_proj"], "c_proj": ["o_proj", "down_proj"],
    "c_fc": ["gate_proj", "up_proj"], "mlp.c_proj": ["down_proj"],
}


def resolve_params(sampled):
    """Active sampled values plus derived ones, in dependency order."""
    params = {}
    for name in ORDER:
        if name in DERIVED:
            source, scale, offset, rounded = DERIVED[name]
            if source in params:
                value = scale * params[source] + offset
                params[name] = math.floor(value + 0.5) if rounded else value
        elif name in CONDITIONS and params.get(CONDITIONS[name][0]) not in CONDITIONS[name][1]:
            continue
        else:
            params[name] = sampled[name]
    return params


def trial_config(params):
    """The full training configuration of a trial: BEST_CONFIG with the trial's parameters over it."""
    cfg = dict(BEST_CONFIG)
    fields = set()
    for name, value in params.items():
        field = PARAM_FIELDS[name]
        fields.add(field)
        cfg[field] = value
        if field == "warmup_ratio":
            cfg["warmup_steps"] = 0
        elif field == "warmup_steps":
            cfg["warmup_ratio"] = 0.0
        elif field == "steps":
            cfg["epochs"] = None
        elif field == "epochs":
            cfg["steps"] = None
    if ALPHA_FOLLOWS_R and "alpha" not in fields:
        cfg["alpha"] = 2 * cfg["r"]
    return cfg


def target_modules(value, model_type):
    if isinstance(value, str):
        if value.strip() == "all-linear":
            return "all-linear"
        if value.strip() == "attention":
            return ["c_attn"] if model_type == "gpt2" else ["q_proj", "v_proj"]
        value = [v for v in re.split(r"[\s,+|]+", value) if v]
    table = TO_GPT2 if model_type == "gpt2" else FROM_GPT2
    out = []
    for name in value:
        for module in table.get(name, [name]):
            if module not in out:
                out.append(module)
    return out


def lora_config(cfg, model_type):
    return LoraConfig(
        r=int(cfg["r"]),
        lora_alpha=cfg["alpha"],
        lora_dropout=cfg["dropout"],
        target_modules=target_modules(cfg["targets"], model_type),
        use_rslora=bool(cfg["rslora"]),
        bias="none",
        task_type="CAUSAL_LM",
        fan_in_fan_out=model_type == "gpt2",
    )


def training_arguments(cfg, output_dir):
    schedule = cfg["schedule"]
    warm = cfg["warmup_steps"] > 0 or cfg["warmup_ratio"] > 0
    if schedule == "constant" and warm:
        schedule = "constant_with_warmup"  # HF's "constant" ignores warmup
    steps = cfg["steps"]
    eval_steps = cfg["eval_every"] or max(1, (steps or 100) // 5)
    kwargs = dict(
        output_dir=output_dir,
        learning_rate=cfg["lr"],
        per_device_train_batch_size=int(cfg["batch"]),
        per_device_eval_batch_size=int(cfg["batch"]),
        gradient_accumulation_steps=int(cfg["accum"]),
        lr_scheduler_type=schedule,
        weight_decay=cfg["weight_decay"],
        max_grad_norm=cfg["max_grad_norm"],
        optim="adamw_torch" if cfg["optimizer"] == "adamw" else "sgd",
        adam_beta1=cfg["beta1"],
        adam_beta2=cfg["beta2"],
        adam_epsilon=cfg["eps"],
        seed=int(cfg["seed"]),
        fp16=cfg["mixed_precision"] == "fp16",
        bf16=cfg["mixed_precision"] == "bf16",
        eval_strategy="steps",
        eval_steps=eval_steps,
        logging_steps=cfg["logging_steps"],
        save_strategy="no",
        report_to="none",
    )
    if steps is not None:
        kwargs["max_steps"] = int(steps)
    else:
        kwargs["num_train_epochs"] = cfg["epochs"]
    if cfg["warmup_steps"] > 0:
        kwargs["warmup_steps"] = int(cfg["warmup_steps"])
    else:
        kwargs["warmup_ratio"] = cfg["warmup_ratio"]
    return TrainingArguments(**kwargs)


def make_optimizer(model, cfg):
    """Layer-wise LR decay (block l of L at lr * llrd ** (L - 1 - l)), LoRA+ (every lora_B at
    loraplus_lr_ratio times its lora_A's rate, as peft.optimizers.create_loraplus_optimizer does) and SGD
    momentum, which TrainingArguments cannot express; None leaves the optimizer to the Trainer."""
    if cfg["llrd"] >= 1 and cfg["loraplus_lr_ratio"] == 1 and cfg["optimizer"] == "adamw":
        return None
    layers = model.config.num_hidden_layers
    groups = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        match = re.search(r"\.(?:h|layers)\.(\d+)\.", name)
        scale = cfg["llrd"] ** (layers - 1 - int(match.group(1))) if match else 1.0
        if "lora_B" in name:
            scale *= cfg["loraplus_lr_ratio"]
        groups.setdefault(scale, []).append(param)
    param_groups = [{"params": ps, "lr": cfg["lr"] * s} for s, ps in groups.items()]
    if cfg["optimizer"] == "sgd":
        return torch.optim.SGD(
            param_groups, lr=cfg["lr"], momentum=cfg["momentum"], nesterov=bool(cfg["nesterov"]),
            weight_decay=cfg["weight_decay"],
        )
    return torch.optim.AdamW(
        param_groups, lr=cfg["lr"], betas=(cfg["beta1"], cfg["beta2"]), eps=cfg["eps"],
        weight_decay=cfg["weight_decay"],
    )


def _ids(encoded):
    return encoded["input_ids"] if hasattr(encoded, "keys") else list(encoded)


def column_renames(names):
    """(renames, drops) that give the file's columns (names) the names tunelab's formats read, by COLUMNS
    (role -> the file's column): a column that the mapping does not use but whose name a role takes is dropped."""
    renames = {column: role for role, column in COLUMNS.items() if column != role and column in names}
    drops = [name for name in names if name in renames.values() and name not in renames]
    return renames, drops


def read_rows(path):
    ext = os.path.splitext(path)[1].lower()
    if ext == ".txt":
        return load_dataset("text", data_files=path, sample_by="document")["train"]
    rows = load_dataset("csv" if ext == ".csv" else "json", data_files=path)["train"]
    renames, drops = column_renames(rows.column_names)
    if drops:
        rows = rows.remove_columns(drops)
    return rows.rename_columns(renames) if renames else rows


def detect_format(columns):
    if "input_ids" in columns:
        return "tokens"
    if "messages" in columns:
        return "chat"
    if "instruction" in columns and "output" in columns:
        return "alpaca"
    if "prompt" in columns and "completion" in columns:
        return "prompt-completion"
    if "label" in columns and "text" in columns:
        return "classification"
    return "text"


def tokenize(rows, tokenizer, seq, data_format):
    """Examples of up to seq + 1 tokens with HF-aligned labels (-100: no loss), as tunelab builds them."""
    max_len = seq + 1
    eos = tokenizer.eos_token_id
    examples = []

    def pair(prompt, completion, **extra):
        p = _ids(tokenizer(prompt))
        c = _ids(tokenizer(completion, add_special_tokens=False)) + [eos]
        examples.append({"input_ids": (p + c)[:max_len], "labels": ([-100] * len(p) + c)[:max_len], **extra})

    if data_format == "text":
        stream = []
        for row in rows:
            stream += _ids(tokenizer(row["text"])) + [eos]
        for start in range(0, max(1, len(stream) - 1), seq):
            chunk = stream[start : start + max_len]
            if len(chunk) >= 2:
                examples.append({"input_ids": chunk, "labels": list(chunk)})
    elif data_format == "tokens":
        for row in rows:
            ids = list(row["input_ids"])[:max_len]
            labels = row.get("labels") or ids
            examples.append({"input_ids": ids, "labels": list(labels)[:max_len]})
    elif data_format == "prompt-completion":
        for row in rows:
            pair(row["prompt"], row["completion"])
    elif data_format == "alpaca":
        for row in rows:
            extra = row.get("input") or ""
            template = ALPACA_WITH_INPUT if extra else ALPACA_NO_INPUT
            pair(template.format(instruction=row["instruction"], input=extra), row["output"])
    elif data_format == "classification":
        for row in rows:
            # class_name: for accuracy / macro-F1 (the Trainer drops the column before batching).
            pair(f"{row['text']}\nLabel:", f" {row['label']}", class_name=str(row["label"]))
    elif data_format == "chat":
        for row in rows:
            messages = row["messages"]
            ids = _ids(tokenizer.apply_chat_template(messages, tokenize=True))
            labels = [-100] * len(ids)
            for i, message in enumerate(messages):
                if message["role"] != "assistant":
                    continue
                start = len(_ids(tokenizer.apply_chat_template(messages[:i], tokenize=True, add_generation_prompt=True)))
                end = len(_ids(tokenizer.apply_chat_template(messages[: i + 1], tokenize=True)))
                labels[start:end] = ids[start:end]
            examples.append({"input_ids": ids[:max_len], "labels": labels[:max_len]})
    else:
        raise ValueError(f"unknown data format {data_format!r}")
    return Dataset.from_list(examples)


_DATA = {}


def datasets_for(options, tokenizer, seq):
    """(train, eval) tokenized for this model and seq, cached per process."""
    key = (options["model"], options["data"], options["val"], seq)
    if key not in _DATA:
        rows = read_rows(options["data"])
        data_format = options["format"] or DATA_FORMAT or detect_format(rows.column_names)
        train = tokenize(rows, tokenizer, seq, data_format)
        if options["val"]:
            val = tokenize(read_rows(options["val"]), tokenizer, seq, data_format)
        else:
            split = train.train_test_split(test_size=options["val_ratio"], seed=options["seed"])
            train, val = split["train"], split["test"]
        _DATA[key] = (train, val)
    return _DATA[key]


def classification_metrics(model, tokenizer, classes, val):
    """Accuracy and macro-F1 as tunelab scores them: each prompt followed by every label's completion (the label
    and EOS); the label whose tokens have the lowest summed loss is the prediction."""
    completions = {c: _ids(tokenizer(f" {c}", add_special_tokens=False)) + [tokenizer.eos_token_id] for c in classes}
    device = next(model.parameters()).device
    predicted, target = [], []
    was_training = model.training
    model.eval()
    with torch.no_grad():
        for row in val:
            labels = row["labels"]
            start = next((i for i, label in enumerate(labels) if label != -100), len(labels))
            prompt = list(row["input_ids"][:start])
            losses = []
            for c in classes:
                ids = torch.tensor([prompt + completions[c]], device=device)
                logits = model(input_ids=ids).logits[0, start - 1 : -1].float()
                losses.append(torch.nn.functional.cross_entropy(logits, ids[0, start:], reduction="sum").item())
            predicted.append(classes[losses.index(min(losses))])
            target.append(row["class_name"])
    if was_training:
        model.train()
    accuracy = sum(p == t for p, t in zip(predicted, target)) / len(target)
    f1 = []
    for c in classes:
        tp = sum(p == c and t == c for p, t in zip(predicted, target))
        wrong = sum((p == c) != (t == c) for p, t in zip(predicted, target))
        f1.append(2 * tp / (2 * tp + wrong) if tp + wrong > 0 else 0.0)
    return accuracy, sum(f1) / len(classes)


def objective_value(eval_loss, model, tokenizer, train, val):
    """The study's objective (OBJECTIVE) at an evaluation."""
    if OBJECTIVE == "val_loss":
        return eval_loss
    if OBJECTIVE == "perplexity":
        return math.exp(eval_loss)
    if "class_name" not in val.column_names:
        raise ValueError(f"objective {OBJECTIVE} needs classification data (text,label rows)")
    accuracy, macro_f1 = classification_metrics(model, tokenizer, sorted(set(train["class_name"])), val)
    return accuracy if OBJECTIVE == "accuracy" else macro_f1


class EvalReporter(TrainerCallback):
    """Hands every evaluation's objective value to the search (for pruning, early stopping or PBT)."""

    def __init__(self, report, measure):
        self.report = report
        self.measure = measure

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if metrics and "eval_loss" in metrics:
            self.report(state.global_step, self.measure(metrics["eval_loss"], model))


def train_and_evaluate(cfg, options, output_dir, report=None):
    """Fine-tune options["model"] with the trial's configuration; returns the final objective value."""
    tokenizer = AutoTokenizer.from_pretrained(options["model"])
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    train, val = datasets_for(options, tokenizer, int(cfg["seq"]))
    dtype = torch.bfloat16 if cfg["mixed_precision"] == "bf16" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(options["model"], torch_dtype=dtype)
    model = get_peft_model(model, lora_config(cfg, model.config.model_type))

    def measure(eval_loss, evaluated=None):
        return objective_value(eval_loss, evaluated or model, tokenizer, train, val)

    trainer = None
    try:
        trainer = Trainer(
            model=model,
            args=training_arguments(cfg, output_dir),
            train_dataset=train,
            eval_dataset=val,
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
            optimizers=(make_optimizer(model, cfg), None),
            callbacks=[EvalReporter(report, measure)] if report else [],
        )
        trainer.train()
        if options.get("save_adapter"):
            model.save_pretrained(output_dir)  # the PEFT adapter: adapter_config.json + adapter_model.safetensors
        return measure(trainer.evaluate()["eval_loss"])
    finally:
        del trainer, model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def common_arguments(description):
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", default=MODEL_ID, help="base model: Hub id or local folder (default: %(default)s)")
    parser.add_argument("--data", required=True, help="training data: .txt, .jsonl or .csv as tunelab reads them")
    parser.add_argument("--val", default=None, help="validation file (default: hold out --val-ratio of --data)")
    parser.add_argument("--val-ratio", type=float, default=VAL_RATIO)
    parser.add_argument("--format", default=None, help="data format (default: the study's, else detected)")
    parser.add_argument("--trials", type=int, default=20, help="number of trials (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the search (default: %(default)s)")
    parser.add_argument("--output-dir", default="./search-runs")
    return parser


def options_of(args):
    return {
        "model": args.model,
        "data": os.path.abspath(args.data),
        "val": os.path.abspath(args.val) if args.val else None,
        "val_ratio": args.val_ratio,
        "format": args.format,
        "seed": args.seed,
        "output_dir": os.path.abspath(args.output_dir),
    }`;

function suggestLines(space: SearchSpace): string {
  const lines: string[] = [];
  for (const def of space.sampled) {
    const n = pyString(def.name);
    let call: string;
    if (def.kind === 'categorical')
      call = `trial.suggest_categorical(${n}, ${pyLiteral(def.choices as Json[])})`;
    else if (def.kind === 'int')
      call = `trial.suggest_int(${n}, ${def.low}, ${def.high}${def.step !== 1 ? `, step=${def.step}` : ''}${def.log ? ', log=True' : ''})`;
    else
      call = `trial.suggest_float(${n}, ${pyLiteral(def.low)}, ${pyLiteral(def.high)}${def.log ? ', log=True' : ''}${def.step > 0 ? `, step=${pyLiteral(def.step)}` : ''})`;
    lines.push(`    ${n}: lambda trial: ${call},`);
  }
  return `SUGGEST = {\n${lines.join('\n')}\n}`;
}

/** An Optuna script (TPE, median pruning on intermediate eval_loss) over the narrowed space. */
export function optunaScript(ctx: ResolvedContext): string {
  const search = continuedSearch(ctx);
  const parsed = createSpace(search.space);
  const main = String.raw`def suggest(trial):
    """The trial's parameters, define-by-run: conditional ones only when active, derived ones computed."""
    params = {}
    for name in ORDER:
        if name in DERIVED:
            source, scale, offset, rounded = DERIVED[name]
            if source in params:
                value = scale * params[source] + offset
                params[name] = math.floor(value + 0.5) if rounded else value
                trial.set_user_attr(name, params[name])
        elif name in CONDITIONS and params.get(CONDITIONS[name][0]) not in CONDITIONS[name][1]:
            continue
        else:
            params[name] = SUGGEST[name](trial)
    return params


def objective(trial, options):
    cfg = trial_config(suggest(trial))

    def report(step, value):
        trial.report(value, step)
        if trial.should_prune():
            raise optuna.TrialPruned()

    output_dir = os.path.join(options["output_dir"], f"trial-{trial.number}")
    return train_and_evaluate(cfg, options, output_dir, report)


def main():
    parser = common_arguments("Continue a tunelab search with Optuna.")
    parser.add_argument("--storage", default=None, help="Optuna storage URL, e.g. sqlite:///search.db")
    parser.add_argument("--study-name", default="tunelab-continued")
    args = parser.parse_args()
    options = options_of(args)
    study = optuna.create_study(
        study_name=args.study_name,
        storage=args.storage,
        load_if_exists=True,
        direction=DIRECTION,
        sampler=make_sampler(args.seed),
        pruner=make_pruner(),
    )
    if len(study.trials) == 0:
        for point in FIRST_POINTS:
            study.enqueue_trial(point)
    study.optimize(lambda trial: objective(trial, options), n_trials=args.trials, gc_after_trial=True)
    best = study.best_trial
    print(f"best trial {best.number}: {OBJECTIVE} {best.value}")
    print("params:", {**best.params, **best.user_attrs})
    print("configuration:", trial_config(resolve_params(best.params)))


if __name__ == "__main__":
    main()
`;
  return [
    header(ctx, 'Optuna', 'optuna_search.py', [
      'transformers>=4.41',
      'peft',
      'datasets',
      'accelerate',
      'optuna>=3.6',
    ]),
    IMPORTS.replace('import torch\n', 'import optuna\nimport torch\n'),
    '',
    constantsBlock(ctx, parsed, search, 'Optuna (enqueued)'),
    suggestLines(parsed),
    '',
    '',
    BODY,
    '',
    '',
    OPTUNA_SEARCH,
    '',
    '',
    main,
  ].join('\n');
}

function rayDomain(space: SearchSpace, name: string): string {
  const def = space.sampled.find((d) => d.name === name);
  if (def === undefined) throw new Error(`export: no parameter '${name}'`);
  if (def.kind === 'categorical') return `tune.choice(${pyLiteral(def.choices as Json[])})`;
  if (def.kind === 'int') {
    if (def.step !== 1) return `tune.qrandint(${def.low}, ${def.high}, ${def.step})`; // upper bound inclusive
    return def.log
      ? `tune.lograndint(${def.low}, ${def.high + 1})`
      : `tune.randint(${def.low}, ${def.high + 1})`; // exclusive
  }
  if (def.log) return `tune.loguniform(${pyLiteral(def.low)}, ${pyLiteral(def.high)})`;
  if (def.step > 0)
    return `tune.quniform(${pyLiteral(def.low)}, ${pyLiteral(def.high)}, ${pyLiteral(def.step)})`;
  return `tune.uniform(${pyLiteral(def.low)}, ${pyLiteral(def.high)})`;
}

/** A Ray Tune script: tune.Tuner over the narrowed space (Ray's own domains), ASHA, OptunaSearch or random. */
export function rayTuneScript(ctx: ResolvedContext): string {
  const search = continuedSearch(ctx);
  const parsed = createSpace(search.space);
  // Ray samples every parameter (an inactive conditional one is ignored by resolve_params), so a point to
  // evaluate first needs a value for each: the best trial's, else the first choice or the low bound.
  const complete = (point: Params): Params => {
    const out: Params = {};
    for (const def of parsed.sampled) {
      const v: Choice | undefined = point[def.name];
      out[def.name] = v ?? (def.kind === 'categorical' ? def.choices[0] : def.low);
    }
    return out;
  };
  const domains = parsed.sampled.map((d) => `    ${pyString(d.name)}: ${rayDomain(parsed, d.name)},`);
  const main = String.raw`def trainable(config, options):
    cfg = trial_config(resolve_params(config))
    trial_dir = os.path.join(options["output_dir"], "trial-" + os.urandom(4).hex())
    # Every evaluation (the last one included) is reported, at its step, to the scheduler.
    train_and_evaluate(cfg, options, trial_dir, lambda step, value: tune_report({OBJECTIVE: value, "step": step}))


def main():
    parser = common_arguments("Continue a tunelab search with Ray Tune.")
    parser.add_argument(
        "--search", choices=["optuna", "random"], default="random" if SAMPLER == "random" else "optuna",
        help="search algorithm: optuna runs the study's sampler (default: %(default)s)",
    )
    parser.add_argument("--gpus-per-trial", type=float, default=1.0 if torch.cuda.is_available() else 0.0)
    parser.add_argument("--cpus-per-trial", type=float, default=2.0)
    parser.add_argument("--max-concurrent", type=int, default=0, help="0: as many as resources allow")
    args = parser.parse_args()
    options = options_of(args)
    if args.search == "optuna":
        search_alg = OptunaSearch(points_to_evaluate=RAY_FIRST_POINTS, sampler=make_sampler(args.seed))
    else:
        search_alg = BasicVariantGenerator(points_to_evaluate=RAY_FIRST_POINTS, random_state=args.seed)
    if args.max_concurrent > 0:
        search_alg = ConcurrencyLimiter(search_alg, max_concurrent=args.max_concurrent)
    trainable_with_resources = tune.with_resources(
        tune.with_parameters(trainable, options=options),
        {"cpu": args.cpus_per_trial, "gpu": args.gpus_per_trial},
    )
    tuner = tune.Tuner(
        trainable_with_resources,
        param_space=PARAM_SPACE,
        tune_config=tune.TuneConfig(
            metric=OBJECTIVE,
            mode=MODE,
            num_samples=args.trials,
            search_alg=search_alg,
            scheduler=make_scheduler(),
        ),
    )
    results = tuner.fit()
    best = results.get_best_result(metric=OBJECTIVE, mode=MODE)
    print(f"best {OBJECTIVE} {best.metrics[OBJECTIVE]}")
    print("configuration:", trial_config(resolve_params(best.config)))


if __name__ == "__main__":
    main()
`;
  const rayImports = String.raw`import optuna
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, MedianStoppingRule, PopulationBasedTraining
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter
from ray.tune.search.optuna import OptunaSearch

try:
    from ray.tune import report as tune_report  # Ray >= 2.41
except ImportError:
    from ray.train import report as tune_report`;
  return [
    header(ctx, 'Ray Tune', 'ray_tune_search.py', [
      'transformers>=4.41',
      'peft',
      'datasets',
      'accelerate',
      'ray[tune]',
      'optuna>=3.6',
    ]),
    IMPORTS,
    rayImports,
    '',
    constantsBlock(ctx, parsed, search, 'Ray Tune (points_to_evaluate)'),
    '# FIRST_POINTS with a value for every parameter Ray samples.',
    `RAY_FIRST_POINTS = ${pyLiteral(firstPoints(search, search.bestSampled).map(complete))}`,
    '# Ray Tune domains of the narrowed space (randint/lograndint exclude the upper bound, qrandint includes it).',
    `PARAM_SPACE = {\n${domains.join('\n')}\n}`,
    '',
    '',
    BODY,
    '',
    '',
    OPTUNA_SEARCH,
    '',
    '',
    RAY_SCHEDULER,
    '',
    '',
    main,
  ].join('\n');
}
