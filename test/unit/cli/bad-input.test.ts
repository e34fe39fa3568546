// Bad invocations of every `tunelab` command, one row each: the exit code and a message naming the flag or
// the file (and the line or field where one applies). Never a stack trace or a bare TypeError, and a refused
// run leaves no --out behind (an existing one unchanged). Every row is refused before a GPU is needed: the
// GPU is stubbed so that reaching it counts as bad input accepted ("silent"). The tally of the table is
// printed at the end: clear error / crash / silent / unclear (a wrong exit code, or nothing named). On the CLI
// as it was before this table (src/ at 2562d42): 161 cases → 145 clear / 3 crash / 8 silent / 5 unclear; now
// 161 clear. To measure a revision: check out its src/ and run this file.
//
// Out of scope (they need a GPU to reach the refusal): a run that diverges (every step skipped), an out-of-
// memory device, Ctrl-C; test/gpu/ covers those.
import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runCli } from '../../fixtures/cli.ts';
import { makeStudyLog } from '../../fixtures/study-logs.ts';
import { buildTinyModel, writeTinyModel } from '../../fixtures/tiny-models.ts';

const GPU_REACHED = 'test stub: the GPU was reached';
vi.mock('../../../src/cli/gpu.ts', () => ({
  cliGpu: () => Promise.reject(new Error(GPU_REACHED)),
  settleGpuEnv: () => {
    throw new Error(GPU_REACHED);
  },
}));

// $M: the tiny model, $D: a good data file, $T: the temporary folder, $O: an --out of the row's own (absent).
const TRAIN = 'train --model $M --data $D --seq 8 --steps 1 --out $O';
const TUNE = 'tune --model $M --data $D --seq 8 --steps 2 --trials 1 --out $O';
const EVAL = 'eval --model $M --data $D --seq 8';
const GEN = 'generate --model $M --prompt hi --max-new-tokens 2';

type Row = [name: string, argv: string, code: 1 | 2, message: RegExp];

// prettier-ignore
const ROWS: Row[] = [
  // the command line itself
  ['no command', '', 2, /usage: tunelab <command>/],
  ['unknown command', 'trian --model $M', 2, /unknown command 'trian'/],
  ['an Object member as the command', 'constructor --model $M', 2, /unknown command 'constructor'/],
  ['__proto__ as the command', '__proto__', 2, /unknown command '__proto__'/],
  ['unknown flag', `${TRAIN} --lrr 1e-3`, 2, /'--lrr'/],
  ['unknown flag (eval)', `${EVAL} --steps 3`, 2, /'--steps'/],
  ['unknown flag (generate)', `${GEN} --out $O`, 2, /'--out'/],
  ['positional argument', `${TRAIN} extra`, 2, /'extra'/],
  ['flag without value at the end', 'train --model $M --data $D --out', 2, /--out/],
  ['flag followed by a flag', 'train --model --data $D --out $O', 2, /--model/],
  ['boolean flag given a value', `${TRAIN} --recompute=yes`, 2, /--recompute/],
  ['duplicated flag', `${TRAIN} --steps 3`, 2, /--steps.*(more than once|twice|duplicate)/i],
  ['duplicated flag (tune)', `${TUNE} --trials 3`, 2, /--trials.*(more than once|twice|duplicate)/i],
  ['duplicated flag (eval)', `${EVAL} --seq 4`, 2, /--seq.*(more than once|twice|duplicate)/i],
  ['duplicated flag (generate)', `${GEN} --prompt ho`, 2, /--prompt.*(more than once|twice|duplicate)/i],
  ['empty value', 'train --model $M --data= --out $O', 2, /--data/],
  // train: required flags
  ['train: no --model', 'train --data $D --out $O', 2, /--model is required/],
  ['train: no --data', 'train --model $M --out $O', 2, /--data is required/],
  ['train: no --out', 'train --model $M --data $D', 2, /--out is required/],
  // train: numbers
  ['--steps abc', `train --model $M --data $D --seq 8 --steps abc --out $O`, 2, /--steps.*'abc'/],
  ['--steps -1', `train --model $M --data $D --seq 8 --steps=-1 --out $O`, 2, /--steps.*'-1'/],
  ['--steps 1.5', `train --model $M --data $D --seq 8 --steps 1.5 --out $O`, 2, /--steps.*'1\.5'/],
  ['--lr -1 (ambiguous)', `${TRAIN} --lr -1`, 2, /--lr/],
  ['--lr=-1', `${TRAIN} --lr=-1`, 2, /--lr.*'-1'/],
  ['--lr 0', `${TRAIN} --lr 0`, 2, /--lr.*'0'/],
  ['--lr 1e999', `${TRAIN} --lr 1e999`, 2, /--lr.*'1e999'/],
  ['--lr NaN', `${TRAIN} --lr NaN`, 2, /--lr.*'NaN'/],
  ['--lr 0x10', `${TRAIN} --lr 0x10`, 2, /--lr.*'0x10'/],
  ['--r 0', `${TRAIN} --r 0`, 2, /--r.*'0'/],
  ['--r 1.5', `${TRAIN} --r 1.5`, 2, /--r.*'1\.5'/],
  ['--r over the hidden size', `${TRAIN} --r 4096`, 2, /--r.*4096/],
  ['--alpha -2', `${TRAIN} --alpha=-2`, 2, /--alpha.*'-2'/],
  ['--dropout 1.5', `${TRAIN} --dropout 1.5`, 2, /--dropout.*'1\.5'/],
  ['--dropout -0.1', `${TRAIN} --dropout=-0.1`, 2, /--dropout.*'-0\.1'/],
  ['--seq 0', 'train --model $M --data $D --seq 0 --steps 1 --out $O', 2, /--seq.*'0'/],
  ['--seq 99999', 'train --model $M --data $D --seq 99999 --steps 1 --out $O', 2, /--seq.*99999/],
  ['--batch 0', `${TRAIN} --batch 0`, 2, /--batch.*'0'/],
  ['--accum 0', `${TRAIN} --accum 0`, 2, /--accum.*'0'/],
  ['--beta1 1', `${TRAIN} --beta1 1`, 2, /--beta1.*'1'/],
  ['--beta2 2', `${TRAIN} --beta2 2`, 2, /--beta2.*'2'/],
  ['--eps 0', `${TRAIN} --eps 0`, 2, /--eps.*'0'/],
  ['--weight-decay -1', `${TRAIN} --weight-decay=-1`, 2, /--weight-decay.*'-1'/],
  ['--max-grad-norm abc', `${TRAIN} --max-grad-norm abc`, 2, /--max-grad-norm.*'abc'/],
  ['--warmup and --warmup-ratio', `${TRAIN} --warmup 2 --warmup-ratio 0.1`, 2, /--warmup/],
  ['--warmup-ratio 2', `${TRAIN} --warmup-ratio 2`, 2, /--warmup-ratio.*'2'/],
  ['--steps and --epochs', `${TRAIN} --epochs 2`, 2, /--steps.*--epochs|--epochs.*--steps/],
  ['--epochs 0', 'train --model $M --data $D --seq 8 --epochs 0 --out $O', 2, /--epochs.*'0'/],
  ['--seed -1', `${TRAIN} --seed=-1`, 2, /--seed.*'-1'/],
  ['--llrd 0', `${TRAIN} --llrd 0`, 2, /--llrd.*'0'/],
  ['--eval-every abc', `${TRAIN} --eval-every abc`, 2, /--eval-every.*'abc'/],
  ['--eval-every without validation', `${TRAIN} --eval-every 1`, 2, /--eval-every.*--val/],
  ['--val-ratio 0', `${TRAIN} --val-ratio 0`, 2, /--val-ratio.*'0'/],
  ['--val-ratio 1', `${TRAIN} --val-ratio 1`, 2, /--val-ratio.*'1'/],
  ['--val and --val-ratio', `${TRAIN} --val $D --val-ratio 0.1`, 2, /--val or --val-ratio/],
  // train: names
  ['--targets __proto__', `${TRAIN} --targets __proto__`, 2, /--targets.*__proto__/],
  ['--targets nonsense', `${TRAIN} --targets q_proj,nonsense`, 2, /--targets.*nonsense/],
  ['--targets empty', `${TRAIN} --targets=`, 2, /--targets/],
  ['--targets constructor', `${TRAIN} --targets constructor`, 2, /--targets.*constructor/],
  ['--precision f64', `${TRAIN} --precision f64`, 2, /--precision.*'f64'/],
  ['--schedule bogus', `${TRAIN} --schedule bogus`, 2, /--schedule.*'bogus'/],
  ['--optimizer bogus', `${TRAIN} --optimizer bogus`, 2, /--optimizer.*'bogus'/],
  ['--optimizer toString', `${TRAIN} --optimizer toString`, 2, /--optimizer.*'toString'/],
  // train: the model folder
  ['--model missing', 'train --model $T/nope --data $D --out $O', 2, /--model.*nope/],
  ['--model is a file', 'train --model $D --data $D --out $O', 2, /--model.*data\.txt/],
  ['--model empty folder', 'train --model $T/empty-dir --data $D --out $O', 1, /config\.json/],
  ['--model corrupt config.json', 'train --model $T/bad-config --data $D --out $O', 1, /bad-config.*config\.json|config\.json.*(JSON|line|position)/],
  ['--model config.json not an object', 'train --model $T/array-config --data $D --out $O', 1, /config\.json/],
  ['--model config.json unknown arch', 'train --model $T/arch-config --data $D --out $O', 1, /config\.json.*(architectures|model_type)/],
  ['--model no tokenizer.json', 'train --model $T/no-tokenizer --data $D --out $O', 1, /tokenizer\.json/],
  ['--model corrupt tokenizer.json', 'train --model $T/bad-tokenizer --data $D --out $O', 1, /tokenizer\.json/],
  ['--model no weights', 'train --model $T/no-weights --data $D --out $O', 1, /safetensors/],
  ['--model truncated safetensors header', 'train --model $T/cut-header --data $D --out $O', 1, /model\.safetensors/],
  ['--model truncated safetensors data', 'train --model $T/cut-data --data $D --out $O', 1, /model\.safetensors/],
  // train: the data
  ['--data missing', 'train --model $M --data $T/nope.txt --out $O', 2, /nope\.txt.*no such file/],
  ['--data is a folder', 'train --model $M --data $T/empty-dir --out $O', 2, /empty-dir/],
  ['--data empty .txt', 'train --model $M --data $T/empty.txt --out $O', 1, /empty\.txt/],
  ['--data empty .jsonl', 'train --model $M --data $T/empty.jsonl --out $O', 1, /empty\.jsonl/],
  ['--data blank lines .jsonl', 'train --model $M --data $T/blank.jsonl --out $O', 1, /blank\.jsonl/],
  ['--data malformed JSONL', 'train --model $M --data $T/bad.jsonl --out $O', 1, /bad\.jsonl:2/],
  ['--data JSONL row not an object', 'train --model $M --data $T/array-row.jsonl --out $O', 1, /array-row\.jsonl:1/],
  ['--data JSONL unknown fields', 'train --model $M --data $T/fields.jsonl --out $O', 1, /fields\.jsonl:1/],
  ['--data input_ids out of vocab', 'train --model $M --data $T/vocab.jsonl --out $O', 1, /vocab\.jsonl:1.*input_ids/],
  ['--data input_ids not integers', 'train --model $M --data $T/ids.jsonl --out $O', 1, /ids\.jsonl:1.*input_ids/],
  ['--data labels length mismatch', 'train --model $M --data $T/labels.jsonl --out $O', 1, /labels\.jsonl:1.*labels/],
  ['--data not UTF-8', 'train --model $M --data $T/latin1.txt --out $O', 1, /latin1\.txt.*(byte|offset) 3/],
  ['--data no loss target', 'train --model $M --data $T/noloss.jsonl --seq 8 --out $O', 1, /noloss\.jsonl/],
  ['--data CSV bad quoting', 'train --model $M --data $T/bad.csv --out $O', 1, /bad\.csv:\d/],
  ['--data CSV no label column', 'train --model $M --data $T/nolabel.csv --out $O', 1, /nolabel\.csv.*label/],
  ['--data unknown extension', 'train --model $M --data $T/data.parquet --out $O', 1, /data\.parquet/],
  // the data's columns
  ['--text-column with --prompt-column', `${TRAIN} --text-column a --prompt-column b`, 2, /--text-column: a prompt-completion mapping has prompt and completion columns only/],
  ['--label-column empty', `${TRAIN} --label-column=`, 2, /--label-column/],
  ['--label-column not in the CSV', 'train --model $M --data $T/nolabel.csv --label-column sentiment --out $O', 1, /nolabel\.csv: the label column 'sentiment' is not in the file \(its columns in its header: 'text', 'score'\)/],
  ['--messages-column for a CSV', 'train --model $M --data $T/nolabel.csv --messages-column text --out $O', 1, /nolabel\.csv: a messages column needs a \.jsonl file/],
  ['eval: --text-column for a .txt', `${EVAL} --text-column body`, 1, /data\.txt: a column mapping needs a \.csv or \.jsonl file/],
  ['tune: one column in two roles', `${TUNE} --prompt-column q --completion-column q`, 2, /--completion-column: column 'q' is already mapped to another role/],
  ['tune: --prompt-column not in the JSONL', 'tune --model $M --data $T/fields.jsonl --seq 8 --trials 1 --prompt-column q --out $O', 1, /fields\.jsonl: the prompt column 'q' is not in the file \(its columns in its first row: /],
  ['--val missing', `${TRAIN} --val $T/nope.jsonl`, 2, /nope\.jsonl/],
  ['--val malformed', `${TRAIN} --val $T/bad.jsonl`, 1, /bad\.jsonl:2/],
  // train: --out
  ['--out is a file', 'train --model $M --data $D --seq 8 --steps 1 --out $T/a-file', 2, /--out.*a-file/],
  // eval
  ['eval: no --data', 'eval --model $M', 2, /--data is required/],
  ['eval: --seq 1', 'eval --model $M --data $D --seq 1', 2, /--seq.*'1'/],
  ['eval: --seq 99999', 'eval --model $M --data $D --seq 99999', 2, /--seq.*99999/],
  ['eval: --batch 0', `${EVAL} --batch 0`, 2, /--batch.*'0'/],
  ['eval: --precision bogus', `${EVAL} --precision bogus`, 2, /--precision.*'bogus'/],
  ['eval: --json=1', `${EVAL} --json=1`, 2, /--json/],
  ['eval: --data empty', 'eval --model $M --data $T/empty.txt --seq 8', 1, /empty\.txt/],
  ['eval: --data not UTF-8', 'eval --model $M --data $T/latin1.txt --seq 8', 1, /latin1\.txt/],
  ['eval: --model corrupt config', 'eval --model $T/bad-config --data $D', 1, /config\.json/],
  // generate
  ['generate: no --prompt', 'generate --model $M', 2, /--prompt is required/],
  ['generate: no --model', 'generate --prompt hi', 2, /--model is required/],
  ['generate: empty --prompt', 'generate --model $M --prompt=', 2, /--prompt/],
  ['generate: --max-new-tokens 0', 'generate --model $M --prompt hi --max-new-tokens 0', 2, /--max-new-tokens.*'0'/],
  ['generate: --max-new-tokens abc', 'generate --model $M --prompt hi --max-new-tokens abc', 2, /--max-new-tokens.*'abc'/],
  ['generate: --temperature=-1', `${GEN} --temperature=-1`, 2, /--temperature.*'-1'/],
  ['generate: --top-k 1.5', `${GEN} --top-k 1.5`, 2, /--top-k.*'1\.5'/],
  ['generate: --top-p 0', `${GEN} --top-p 0`, 2, /--top-p.*'0'/],
  ['generate: --top-p 2', `${GEN} --top-p 2`, 2, /--top-p.*'2'/],
  ['generate: --seed abc', `${GEN} --seed abc`, 2, /--seed.*'abc'/],
  ['generate: --precision f8', `${GEN} --precision f8`, 2, /--precision.*'f8'/],
  ['generate: --adapter missing', `${GEN} --adapter $T/nope`, 2, /--adapter.*nope/],
  ['generate: --adapter is a file', `${GEN} --adapter $D`, 2, /--adapter.*data\.txt/],
  ['generate: --adapter without weights', `${GEN} --adapter $T/adapter-no-weights`, 2, /--adapter.*adapter_model\.safetensors/],
  ['generate: --adapter corrupt config', `${GEN} --adapter $T/adapter-bad-config`, 1, /adapter_config\.json/],
  ['generate: --adapter config null', `${GEN} --adapter $T/adapter-null-config`, 1, /adapter_config\.json/],
  ['generate: --adapter truncated weights', `${GEN} --adapter $T/adapter-cut`, 1, /adapter_model\.safetensors/],
  // tune
  ['tune: no --out', 'tune --model $M --data $D', 2, /--out is required/],
  ['tune: --trials 0', 'tune --model $M --data $D --seq 8 --trials 0 --out $O', 2, /--trials.*'0'/],
  ['tune: --trials abc', 'tune --model $M --data $D --seq 8 --trials abc --out $O', 2, /--trials.*'abc'/],
  ['tune: --workers 0', `${TUNE} --workers 0`, 2, /--workers.*'0'/],
  ['tune: --workers 1.5', `${TUNE} --workers 1.5`, 2, /--workers.*'1\.5'/],
  ['tune: --checkpoint-every 2.5', `${TUNE} --checkpoint-every 2.5`, 2, /--checkpoint-every.*'2\.5'/],
  ['tune: --checkpoint-every=-1', `${TUNE} --checkpoint-every=-1`, 2, /--checkpoint-every.*'-1'/],
  ['tune: --max-eval-examples x', `${TUNE} --max-eval-examples x`, 2, /--max-eval-examples.*'x'/],
  ['tune: --timeout 0', `${TUNE} --timeout 0`, 2, /--timeout.*'0'/],
  ['tune: --timeout abc', `${TUNE} --timeout abc`, 2, /--timeout.*'abc'/],
  ['tune: --sampler bogus', `${TUNE} --sampler bogus`, 2, /--sampler.*'bogus'/],
  ['tune: --sampler __proto__', `${TUNE} --sampler __proto__`, 2, /--sampler.*'__proto__'/],
  ['tune: --pruner bogus', `${TUNE} --pruner bogus`, 2, /--pruner.*'bogus'/],
  ['tune: --pbt with --pruner', `${TUNE} --pbt --pruner median`, 2, /--pbt/],
  ['tune: --objective bogus', `${TUNE} --objective bogus`, 2, /--objective: expected one of/],
  ['tune: --objective accuracy without classes', `${TUNE} --objective accuracy`, 2, /--objective/],
  ['tune: --constraints malformed', `${TUNE} --constraints val_loss<2`, 2, /--constraints: 'val_loss<2': expected METRIC<=BOUND/],
  ['tune: --constraints bad metric', `${TUNE} --constraints bleu>=1`, 2, /--constraints: 'bleu>=1': metric "bleu" is not one of/],
  ['tune: --constraints accuracy without classes', `${TUNE} --constraints accuracy>=0.5`, 2, /--constraints: accuracy>=0.5: accuracy is only measured on classification data/],
  ['tune: --preset bogus', `${TUNE} --preset bogus`, 2, /--preset.*'bogus'/],
  ['tune: --space and --preset', `${TUNE} --space $T/space-ok.json --preset lora-basic`, 2, /--space or --preset/],
  ['tune: --lr=-1', `${TUNE} --lr=-1`, 2, /--lr.*'-1'/],
  ['tune: --r 0', `${TUNE} --r 0`, 2, /--r.*'0'/],
  ['tune: --targets __proto__', `${TUNE} --targets __proto__`, 2, /--targets.*__proto__/],
  ['tune: --precision bogus', `${TUNE} --precision bogus`, 2, /--precision.*'bogus'/],
  ['tune: --val-ratio 0', `${TUNE} --val-ratio 0`, 2, /--val-ratio.*'0'/],
  ['tune: --data malformed', 'tune --model $M --data $T/bad.jsonl --seq 8 --out $O', 1, /bad\.jsonl:2/],
  ['tune: --data no loss target', 'tune --model $M --data $T/noloss.jsonl --seq 8 --out $O', 1, /noloss\.jsonl/],
  ['tune: --model corrupt config', 'tune --model $T/bad-config --data $D --out $O', 1, /config\.json/],
  ['tune: --space missing', `${TUNE} --space $T/nope.json`, 2, /--space.*nope\.json/],
  ['tune: --space is a folder', `${TUNE} --space $T/empty-dir`, 2, /--space.*empty-dir/],
  ['tune: --space empty', `${TUNE} --space $T/space-empty.json`, 2, /--space.*space-empty\.json/],
  ['tune: --space not JSON', `${TUNE} --space $T/space-notjson.json`, 2, /--space.*space-notjson\.json/],
  ['tune: --space {}', `${TUNE} --space $T/space-none.json`, 2, /--space.*space-none\.json/],
  ['tune: --space unknown parameter', `${TUNE} --space $T/space-unknown.json`, 2, /--space.*space-unknown\.json.*bogus/],
  ['tune: --space unknown type', `${TUNE} --space $T/space-type.json`, 2, /--space.*space-type\.json.*lr/],
  ['tune: --space low > high', `${TUNE} --space $T/space-order.json`, 2, /--space.*space-order\.json.*lr/],
  ['tune: --space log with low 0', `${TUNE} --space $T/space-log0.json`, 2, /--space.*space-log0\.json.*lr/],
  ['tune: --space empty choices', `${TUNE} --space $T/space-choices.json`, 2, /--space.*space-choices\.json.*optimizer/],
  ['tune: --space bad choice', `${TUNE} --space $T/space-badchoice.json`, 2, /--space.*space-badchoice\.json.*optimizer/],
  ['tune: --space __proto__ key', `${TUNE} --space $T/space-proto.json`, 2, /--space.*space-proto\.json.*__proto__/],
  ['tune: --space too deep', `${TUNE} --space $T/space-deep.json`, 2, /--space.*space-deep\.json.*(deep|nest)/],
  ['tune: --space not UTF-8', `${TUNE} --space $T/latin1.txt`, 2, /--space.*latin1\.txt.*UTF-8.*offset/],
  ['tune: --plan missing', 'tune --model $M --data $D --plan $T/nope.jsonl --out $O', 2, /--plan.*nope\.jsonl/],
  ['tune: --plan not a plan', 'tune --model $M --data $D --plan $T/bad.jsonl --out $O', 2, /--plan.*bad\.jsonl/],
  ['tune: --plan with --sampler', 'tune --model $M --data $D --plan $T/bad.jsonl --sampler tpe --out $O', 2, /--plan.*--sampler/],
  ['tune: --resume missing folder', 'tune --resume $T/nope', 2, /--resume.*nope/],
  ['tune: --resume not a study', 'tune --resume $T/empty-dir', 2, /--resume.*empty-dir/],
  ['tune: --resume tune.json only', 'tune --resume $T/resume-nolog', 2, /--resume.*study\.jsonl/],
  ['tune: --out is a file', 'tune --model $M --data $D --seq 8 --steps 2 --trials 1 --out $T/a-file', 2, /--out.*a-file/],
  ['tune: --out holds a study', 'tune --model $M --data $D --seq 8 --steps 2 --trials 1 --out $T/a-study', 2, /--out.*already holds a study/],
];

let dir: string;
const tally = { clear: 0, crash: 0, silent: 0, unclear: 0 };
const CRASH =
  /TypeError|RangeError|ReferenceError|SyntaxError: |cannot read propert|is not iterable|is not a function|\n\s+at |\[object Object\]/i;

/** The tiny model's files with `edit` applied, written as folder `name`. */
async function modelVariant(name: string, edit: (files: Record<string, Uint8Array | string>) => void) {
  const files = { ...buildTinyModel({ arch: 'llama' }).files };
  edit(files);
  await mkdir(join(dir, name));
  for (const [file, data] of Object.entries(files)) await writeFile(join(dir, name, file), data);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-bad-input-'));
  await writeTinyModel(buildTinyModel({ arch: 'llama' }), join(dir, 'model'));
  const text = (name: string, contents: string | Uint8Array) => writeFile(join(dir, name), contents);
  await text('data.txt', 'the quick brown fox jumps over the lazy dog. '.repeat(8));
  await mkdir(join(dir, 'empty-dir'));
  await text('a-file', 'not a folder\n');
  await text('empty.txt', '');
  await text('empty.jsonl', '');
  await text('blank.jsonl', '\n\n\n');
  await text('bad.jsonl', '{"prompt": "a", "completion": "b"}\n{"prompt": "a", "completion"\n');
  await text('array-row.jsonl', '[1, 2, 3]\n');
  await text('fields.jsonl', '{"foo": "bar"}\n');
  await text('vocab.jsonl', '{"input_ids": [1, 2, 99999]}\n');
  await text('ids.jsonl', '{"input_ids": [1, "two", 3]}\n');
  await text('labels.jsonl', '{"input_ids": [1, 2, 3], "labels": [1, 2]}\n');
  await text('latin1.txt', Buffer.from([...Buffer.from('caf'), 0xe9, ...Buffer.from(' au lait\n')]));
  await text('noloss.jsonl', '{"input_ids": [1, 2, 3], "labels": [-100, -100, -100]}\n');
  await text('bad.csv', 'text,label\n"unterminated,pos\nfine,neg\n');
  await text('nolabel.csv', 'text,score\nhello,1\n');
  await text('data.parquet', 'PAR1');
  // Model folders that are broken in one way each.
  await modelVariant('bad-config', (f) => (f['config.json'] = '{"model_type": "llama",'));
  await modelVariant('array-config', (f) => (f['config.json'] = '[1]'));
  await modelVariant('arch-config', (f) => {
    const config = JSON.parse(String(f['config.json'])) as Record<string, unknown>;
    f['config.json'] = JSON.stringify({
      ...config,
      architectures: ['MambaForCausalLM'],
      model_type: 'mamba',
    });
  });
  await modelVariant('no-tokenizer', (f) => delete f['tokenizer.json']);
  await modelVariant('bad-tokenizer', (f) => (f['tokenizer.json'] = '{"model": '));
  await modelVariant('no-weights', (f) => delete f['model.safetensors']);
  await modelVariant(
    'cut-header',
    (f) => (f['model.safetensors'] = (f['model.safetensors'] as Uint8Array).slice(0, 20)),
  );
  await modelVariant('cut-data', (f) => {
    const w = f['model.safetensors'] as Uint8Array;
    f['model.safetensors'] = w.slice(0, w.length - 100);
  });
  // Adapter folders.
  const adapter = async (name: string, files: Record<string, string | Uint8Array>) => {
    await mkdir(join(dir, name));
    for (const [file, data] of Object.entries(files)) await writeFile(join(dir, name, file), data);
  };
  const peftConfig = JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'] });
  await adapter('adapter-no-weights', { 'adapter_config.json': peftConfig });
  await adapter('adapter-bad-config', { 'adapter_config.json': '{"r": ', 'adapter_model.safetensors': '' });
  await adapter('adapter-null-config', { 'adapter_config.json': 'null', 'adapter_model.safetensors': '' });
  await adapter('adapter-cut', { 'adapter_config.json': peftConfig, 'adapter_model.safetensors': 'abc' });
  // Search spaces.
  await text('space-ok.json', '{"lr": {"type": "float", "low": 1e-5, "high": 1e-2, "log": true}}');
  await text('space-empty.json', '');
  await text('space-notjson.json', '{"lr": {"type": "float",');
  await text('space-none.json', '{}');
  await text('space-unknown.json', '{"bogus": {"type": "float", "low": 0, "high": 1}}');
  await text('space-type.json', '{"lr": {"type": "gaussian", "low": 0, "high": 1}}');
  await text('space-order.json', '{"lr": {"type": "float", "low": 1e-2, "high": 1e-5}}');
  await text('space-log0.json', '{"lr": {"type": "float", "low": 0, "high": 1e-2, "log": true}}');
  await text('space-choices.json', '{"optimizer": {"type": "categorical", "choices": []}}');
  await text('space-badchoice.json', '{"optimizer": {"type": "categorical", "choices": ["adamw", "lion"]}}');
  await text('space-proto.json', '{"__proto__": {"type": "float", "low": 0, "high": 1}}');
  await text('space-deep.json', `{"lr": ${'['.repeat(5000)}${']'.repeat(5000)}}`);
  // --resume and --out folders.
  await mkdir(join(dir, 'resume-nolog'));
  const flags = { model: join(dir, 'model'), data: join(dir, 'data.txt'), seq: '8' };
  await writeFile(join(dir, 'resume-nolog', 'tune.json'), JSON.stringify({ flags }));
  await mkdir(join(dir, 'a-study'));
  await writeFile(join(dir, 'a-study', 'study.jsonl'), makeStudyLog(1, 2));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  const total = ROWS.length;
  process.stdout.write(
    `\nbad CLI input: ${total} cases → ${tally.clear} clear error / ${tally.crash} crash / ${tally.silent} silent` +
      ` / ${tally.unclear} unclear (wrong exit code or nothing named)\n`,
  );
});

describe('every bad invocation is refused with a clear error, and nothing is written', () => {
  it.each(ROWS)('%s: tunelab %s', async (name, argv, code, message) => {
    const out = join(dir, 'out', name.replace(/[^\w]+/g, '-'));
    const line = argv.replaceAll('$M', join(dir, 'model')).replaceAll('$D', join(dir, 'data.txt'));
    const filled = line.replaceAll('$T', dir).replaceAll('$O', out);
    const aFile = join(dir, 'a-file');
    const aStudy = join(dir, 'a-study', 'study.jsonl');
    const before = [await readFile(aFile, 'utf8'), await readFile(aStudy, 'utf8')];
    let result: Awaited<ReturnType<typeof runCli>>;
    try {
      result = await runCli(filled);
    } catch (error) {
      tally.crash++;
      throw error;
    }
    const { stderr } = result;
    const kind =
      result.code === 0 || stderr.includes(GPU_REACHED)
        ? 'silent'
        : CRASH.test(stderr)
          ? 'crash'
          : result.code === code && message.test(stderr)
            ? 'clear'
            : 'unclear';
    tally[kind]++;
    expect({ kind, code: result.code, stderr: stderr.split('\n\n')[0] }).toEqual({
      kind: 'clear',
      code,
      stderr: expect.stringMatching(message),
    });
    expect(existsSync(out), 'a refused run left its --out behind').toBe(false);
    expect(statSync(aFile).isFile()).toBe(true);
    expect([await readFile(aFile, 'utf8'), await readFile(aStudy, 'utf8')]).toEqual(before);
  });
});
