// A Colab notebook (.ipynb, nbformat 4) that re-runs the best configuration with transformers + PEFT on a free
// T4 in fp16 (T4s have no bf16), on a real Hub model: the study's own when it came from the Hub, the transfer's
// target when there is one, else the Hub model of the same family the exports suggest (a demo or local model is
// not on the Hub). The training code is the search scripts' (python.ts BODY), so the notebook trains what they do.
import type { Json } from '../json.ts';
import type { ModelFamily } from '../model/config.ts';
import type { ResolvedContext } from './context.ts';
import { pythonConfig } from './python.ts';
import { BODY, columnsLine, IMPORTS } from './python.ts';
import { pyLiteral } from './py.ts';
import { shellLine } from './shell.ts';

/** What the notebook installs (Colab has torch). */
export const PIP_PACKAGES = ['transformers>=4.41', 'peft', 'datasets', 'accelerate'] as const;

/** A small Hub model of each family, for a study whose model is not on the Hub. */
export const HUB_MODEL_OF_FAMILY: Readonly<Record<ModelFamily, string>> = {
  llama: 'HuggingFaceTB/SmolLM2-135M',
  qwen2: 'Qwen/Qwen2.5-0.5B',
  qwen3: 'Qwen/Qwen3-0.6B',
  smollm3: 'HuggingFaceTB/SmolLM3-3B',
  mistral: 'mistralai/Mistral-7B-v0.1',
  gemma3: 'google/gemma-3-270m',
  gpt2: 'openai-community/gpt2',
};

/** A local path ('./x', '/x', '../x', 'C:\\x') rather than a Hub id ('owner/name' or 'name'). */
const isLocalPath = (id: string): boolean =>
  /^(\.{1,2}[\\/]|[\\/]|[A-Za-z]:[\\/])/.test(id) || id.includes(' ');

/** The Hub model the notebook trains, and why that one. */
export function colabModel(ctx: ResolvedContext): { id: string; why: string } {
  if (!isLocalPath(ctx.model.id))
    return ctx.transferRecord
      ? { id: ctx.model.id, why: `the transfer's target (${ctx.transferRecord.lines[0]})` }
      : { id: ctx.model.id, why: 'the model the study ran on' };
  const id = HUB_MODEL_OF_FAMILY[ctx.model.family];
  return {
    id,
    why: `the study's model (${ctx.model.id}) is not on the Hub; ${id} is a Hub model of the same family`,
  };
}

const lines = (text: string): string[] =>
  text.split('\n').map((l, i, all) => (i < all.length - 1 ? `${l}\n` : l));

function markdown(id: string, text: string): Record<string, Json> {
  return { cell_type: 'markdown', id, metadata: {}, source: lines(text) };
}

function code(id: string, text: string): Record<string, Json> {
  return { cell_type: 'code', id, metadata: {}, execution_count: null, outputs: [], source: lines(text) };
}

export function colabNotebook(ctx: ResolvedContext): string {
  const model = colabModel(ctx);
  const { settings } = ctx;
  const cfg = { ...pythonConfig(ctx.config, 'fp16') };
  const cells = [
    markdown(
      'about',
      [
        '# Re-run the best tunelab trial on a T4',
        '',
        `Best trial ${ctx.best.number} of a study of ${ctx.study.trials.length} trials (${settings.objective} = ${ctx.best.value}, ${settings.direction}d), trained here with transformers + PEFT in fp16 on a Colab T4 (Runtime → Change runtime type → T4 GPU).`,
        '',
        `Model: \`${model.id}\`: ${model.why}.`,
        ...(ctx.transferRecord
          ? ['', 'Transferred values:', ...ctx.transferRecord.lines.map((l) => `- ${l}`)]
          : []),
        '',
        'Upload the training file when asked (`.txt`, `.jsonl` or `.csv`, as tunelab read it). The adapter is saved to `./tunelab-best`.',
      ].join('\n'),
    ),
    code('install', `!${shellLine(['pip', 'install', '-q', ...PIP_PACKAGES])}`),
    code(
      'config',
      [
        `MODEL_ID = ${pyLiteral(model.id)}`,
        `DATA_FORMAT = ${pyLiteral(ctx.dataset.format ?? null)}  # None: detected from the file`,
        columnsLine(ctx.dataset.columns),
        `VAL_RATIO = ${pyLiteral(ctx.dataset.valRatio ?? 0.1)}`,
        `OBJECTIVE = ${pyLiteral(settings.objective)}`,
        `DIRECTION = ${pyLiteral(settings.direction)}`,
        '# The best configuration (fp16: a T4 has no bf16).',
        `BEST_CONFIG = ${pyLiteral(cfg)}`,
      ].join('\n'),
    ),
    code('code', `${IMPORTS}\n\n${BODY}`),
    code(
      'data',
      [
        'try:',
        '    from google.colab import files',
        '',
        '    DATA_FILE = next(iter(files.upload()))',
        'except ImportError:  # not in Colab: put the path of your training file here',
        '    DATA_FILE = "train.jsonl"',
      ].join('\n'),
    ),
    code(
      'train',
      [
        'options = {',
        '    "model": MODEL_ID,',
        '    "data": os.path.abspath(DATA_FILE),',
        '    "val": None,',
        '    "val_ratio": VAL_RATIO,',
        '    "format": None,',
        '    "seed": BEST_CONFIG["seed"],',
        '    "output_dir": os.path.abspath("./tunelab-best"),',
        '    "save_adapter": True,',
        '}',
        'value = train_and_evaluate(dict(BEST_CONFIG), options, options["output_dir"])',
        'print(f"{OBJECTIVE}: {value}  (the study: " + str(' +
          pyLiteral(ctx.best.value ?? null) +
          ') + " on its model)")',
      ].join('\n'),
    ),
  ];
  const notebook = {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      accelerator: 'GPU',
      colab: { provenance: [], gpuType: 'T4' },
      kernelspec: { name: 'python3', display_name: 'Python 3' },
      language_info: { name: 'python' },
    },
    cells,
  };
  return `${JSON.stringify(notebook, null, 1)}\n`;
}
