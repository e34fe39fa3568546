// Reads what bench/device/run.sh wrote on the GPU machine and turns it into (a) the adapter check's verdict and
// (b) one summary block to paste into BENCHMARKS.md. The bench outputs are parsed by their table headers, not
// by column position, because bench:kernels and bench:train gain columns as the engine changes.
//
//   node report.mjs compare TUNELAB_LOSS.json PEFT_LOSS.json [TOLERANCE [LABEL]]   (exit 1 on FAIL)
//   node report.mjs summary OUT_DIR STEPS_FILE
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** |Δloss| / loss under which PEFT's reading of the adapter counts as the same model (both run in f32). */
export const LOSS_TOLERANCE = 1e-4;

export interface MarkdownTable {
  header: string[];
  rows: string[][];
}

/** Every `| a | b |` table in a text, separator rows (`| --- |`) dropped. */
export function markdownTables(text: string): MarkdownTable[] {
  const tables: MarkdownTable[] = [];
  let current: string[][] | null = null;
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (!trimmed.startsWith('|')) {
      current = null;
      continue;
    }
    const cells = trimmed
      .replace(/^\||\|$/g, '')
      .split('|')
      .map((c) => c.trim());
    if (!current) {
      current = [];
      tables.push({ header: cells, rows: current });
    } else if (!cells.every((c) => /^:?-+:?$/.test(c))) {
      current.push(cells);
    }
  }
  return tables;
}

/** A number as the benches print it ('12,345.6', '0.42'); NaN for '—' and the like. */
export function numberCell(cell: string | undefined): number {
  if (cell === undefined) return NaN;
  const text = cell.replace(/[,*]/g, '').trim();
  return /^-?\d+(\.\d+)?(e[-+]?\d+)?$/i.test(text) ? Number(text) : NaN;
}

function findTable(text: string, firstHeader: string, needed: string): MarkdownTable | undefined {
  return markdownTables(text).find(
    (t) => t.header[0]?.toLowerCase() === firstHeader && t.header.includes(needed),
  );
}

function lineAfter(text: string, prefix: string): string | undefined {
  const line = text.split('\n').find((l) => l.startsWith(prefix));
  return line?.slice(prefix.length).trim();
}

export interface MatmulRow {
  name: string;
  ms: number;
  tflops: number;
}

export interface KernelsReport {
  device?: string;
  timing?: string;
  peak?: string;
  matmuls: MatmulRow[];
}

export function parseKernels(text: string): KernelsReport {
  const table = findTable(text, 'kernel', 'GFLOP/s');
  const matmuls: MatmulRow[] = [];
  if (table) {
    const ms = table.header.indexOf('ms');
    const gflops = table.header.indexOf('GFLOP/s');
    for (const row of table.rows) {
      if (!row[0].startsWith('matmul')) continue;
      matmuls.push({ name: row[0], ms: numberCell(row[ms]), tflops: numberCell(row[gflops]) / 1000 });
    }
  }
  return {
    device: lineAfter(text, 'device:'),
    timing: lineAfter(text, 'timing:'),
    peak: lineAfter(text, 'peak:'),
    matmuls,
  };
}

export interface TrainReport {
  device?: string;
  model?: string;
  tokensPerSecond: number;
  msPerStep: number;
}

/** The bench:train row without activation recomputation (the first row when there is no such column). */
export function parseTrain(text: string): TrainReport {
  const table =
    findTable(text, 'recompute', 'tokens/s') ??
    markdownTables(text).find((t) => t.header.includes('tokens/s'));
  const recompute = table ? table.header.indexOf('recompute') : -1;
  const row = table?.rows.find((r) => recompute < 0 || r[recompute] === 'off') ?? table?.rows[0];
  const cell = (name: string) => (table && row ? numberCell(row[table.header.indexOf(name)]) : NaN);
  return {
    device: lineAfter(text, 'device:'),
    model: lineAfter(text, 'model:'),
    tokensPerSecond: cell('tokens/s'),
    msPerStep: cell('ms/step'),
  };
}

export interface AnchorRow {
  /** e.g. 'f16 weights + autocast'. */
  label: string;
  tokensPerSecond: number;
  msPerStep: number;
  /** The rest of peft_anchor.py's line: peak memory, layers, shape, card, torch version. */
  detail: string;
}

/** peft_anchor.py's result lines: `PyTorch+PEFT eager, LABEL: N tokens/s, M ms/step, …`. */
export function parseAnchor(text: string): AnchorRow[] {
  const rows: AnchorRow[] = [];
  const pattern = /^PyTorch\+PEFT eager, (.+?): ([\d,.]+) tokens\/s, ([\d,.]+) ms\/step, (.*)$/;
  for (const line of text.split('\n')) {
    const m = pattern.exec(line.trim());
    if (m) {
      rows.push({
        label: m[1],
        tokensPerSecond: numberCell(m[2]),
        msPerStep: numberCell(m[3]),
        detail: m[4],
      });
    }
  }
  return rows;
}

export interface GpuInfo {
  name: string;
  driver: string;
  memory: string;
}

/** run.sh's `TUNELAB_GPU name, driver, memory` line (nvidia-smi --query-gpu … --format=csv,noheader). */
export function parseGpu(setup: string): GpuInfo | undefined {
  const fields = lineAfter(setup, 'TUNELAB_GPU')
    ?.split(',')
    .map((f) => f.trim());
  if (!fields || fields.length < 3 || !fields[0]) return undefined;
  return { name: fields[0], driver: fields[1], memory: fields[2] };
}

export interface AdapterLine {
  vendor: string;
  architecture: string;
  description: string;
  software: boolean;
  features: string[];
}

/** adapter-info.ts's `TUNELAB_ADAPTER {json}` line (the first: the one without unsafe APIs). */
export function parseAdapter(setup: string): AdapterLine | undefined {
  const json = lineAfter(setup, 'TUNELAB_ADAPTER');
  if (!json) return undefined;
  try {
    return JSON.parse(json) as AdapterLine;
  } catch {
    return undefined;
  }
}

export interface LossResult {
  loss: number;
  tokens: number;
}

export interface LossCheck {
  /** Which check ('f32', 'f16'): a run may make several. */
  label?: string;
  pass: boolean;
  tunelab: number;
  peft: number;
  /** |tunelab − peft| / |peft|. */
  relative: number;
  tokens: { tunelab: number; peft: number };
  reason: string;
}

/** The adapter check's verdict: same loss (relative difference under `tolerance`) over the same tokens. */
export function compareLosses(tunelab: LossResult, peft: LossResult, tolerance = LOSS_TOLERANCE): LossCheck {
  const relative = Math.abs(tunelab.loss - peft.loss) / Math.abs(peft.loss);
  const base = {
    tunelab: tunelab.loss,
    peft: peft.loss,
    relative,
    tokens: { tunelab: tunelab.tokens, peft: peft.tokens },
  };
  if (![tunelab.loss, peft.loss].every(Number.isFinite) || !Number.isFinite(relative)) {
    return { ...base, pass: false, reason: 'a loss is not a finite number' };
  }
  if (tunelab.tokens !== peft.tokens) {
    return { ...base, pass: false, reason: `the losses average different token counts` };
  }
  const pass = relative < tolerance;
  return { ...base, pass, reason: pass ? `|Δloss|/loss < ${tolerance}` : `|Δloss|/loss ≥ ${tolerance}` };
}

/** A JSON object's loss and token count, with Python's bare NaN and Infinity read as a failed (NaN) loss. */
function lossOf(text: string): LossResult | undefined {
  try {
    const value = JSON.parse(text.replace(/-?\bNaN\b|-?\bInfinity\b/g, 'null')) as {
      loss?: number | null;
      tokens?: number;
    };
    if (value === null || typeof value !== 'object') return undefined;
    if (value.loss === null) return { loss: NaN, tokens: Number(value.tokens) };
    if (typeof value.loss === 'number') return { loss: value.loss, tokens: Number(value.tokens) };
  } catch {
    // not JSON
  }
  return undefined;
}

/**
 * The loss in a file: the whole text as one JSON object (tunelab-loss.json, indented), else its last line
 * that is one (peft_loss.py's output, after whatever Python logged before it).
 */
export function lossJson(text: string, what: string): LossResult {
  const found = lossOf(text) ?? text.trim().split('\n').reverse().map(lossOf).find(Boolean);
  if (!found) throw new Error(`${what}: no JSON with a "loss" in it`);
  return found;
}

/** The texts run.sh left in $OUT (empty where a step wrote nothing). */
export interface RunTexts {
  setup: string;
  kernels: string;
  train: string;
  anchor: string;
  check: string;
  /** run.sh's step lines: `kernels: ok`, `anchor: FAILED (rc 124)`, … */
  steps: string;
  date: string;
}

const FEATURES_OF_NOTE = ['shader-f16', 'subgroups', 'timestamp-query'];

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : 'n/a';
}

/** Three significant figures: TFLOPS read 12.3 on a GPU and 0.00116 on lavapipe. */
function significant(value: number): string {
  return Number.isFinite(value) ? String(Number(value.toPrecision(3))) : 'n/a';
}

function trainingTable(texts: RunTexts): string[] {
  const train = parseTrain(texts.train);
  const anchors = parseAnchor(texts.anchor);
  const lines = [
    '| training step | tokens/s | ms/step |',
    '| --- | ---: | ---: |',
    `| tunelab \`bench:train\` (${train.model ?? 'no result: see train.txt'}) | ${fixed(train.tokensPerSecond, 1)} | ${fixed(train.msPerStep, 1)} |`,
  ];
  for (const a of anchors) {
    lines.push(
      `| PyTorch + PEFT eager, ${a.label} (${a.detail}) | ${fixed(a.tokensPerSecond, 0)} | ${fixed(a.msPerStep, 1)} |`,
    );
  }
  if (anchors.length === 0) lines.push('| PyTorch + PEFT eager: no result (see anchor.txt) | n/a | n/a |');
  const f16 = anchors.find((a) => a.label.startsWith('f16'));
  const ratio = f16 ? train.tokensPerSecond / f16.tokensPerSecond : NaN;
  lines.push('', `**tunelab / PyTorch + PEFT eager (f16 weights): ${fixed(ratio, 2)}×**`);
  return lines;
}

function matmulTable(texts: RunTexts): string[] {
  const kernels = parseKernels(texts.kernels);
  if (kernels.matmuls.length === 0) return ['Matmul: no result (see kernels.txt).'];
  const facts = [kernels.timing, kernels.peak && `the bench's measured peak: ${kernels.peak}`].filter(
    Boolean,
  );
  return [
    `Matmul (\`bench:kernels\`${facts.length ? `; ${facts.join('; ')}` : ''}):`,
    '',
    '| matmul | ms | TFLOPS |',
    '| --- | ---: | ---: |',
    ...kernels.matmuls.map((m) => `| ${m.name} | ${fixed(m.ms, 3)} | ${significant(m.tflops)} |`),
  ];
}

function checkLine(texts: RunTexts): string {
  const checks = texts.check
    .split('\n')
    .filter((line) => line.startsWith('TUNELAB_LOSS_CHECK '))
    .map((line) => JSON.parse(line.slice('TUNELAB_LOSS_CHECK '.length)) as LossCheck);
  if (checks.length === 0) {
    const skipped = lineAfter(texts.check, 'TUNELAB_SKIPPED ');
    return `Adapter check: ${skipped ? `skipped (${skipped})` : 'no verdict (see adapter-check.txt)'}.`;
  }
  return checks
    .map(
      (c) =>
        `Adapter check (PEFT loads tunelab's adapter for a tiny Llama, tunelab ${c.label ?? 'f32'}): ` +
        `**${c.pass ? 'PASS' : 'FAIL'}** — tunelab loss ${c.tunelab}, PEFT ${c.peft}, |Δ|/loss ` +
        `${c.relative.toExponential(2)} over ${c.tokens.peft} tokens (${c.reason}).`,
    )
    .join('\n\n');
}

/** The block to paste into BENCHMARKS.md. */
export function summaryBlock(texts: RunTexts): string {
  const gpu = parseGpu(texts.setup);
  const adapter = parseAdapter(texts.setup);
  const unsafe = lineAfter(texts.setup, 'TUNELAB_ADAPTER_UNSAFE ');
  const experimental = unsafe
    ? ((JSON.parse(unsafe) as AdapterLine).features ?? []).filter((f) => f.includes('experimental'))
    : [];
  const card = gpu?.name ?? adapter?.description ?? 'unknown card';
  const dawn = adapter
    ? `${[adapter.vendor, adapter.architecture, adapter.description].filter(Boolean).join(' ')}` +
      `${adapter.software ? ' (SOFTWARE: not a GPU figure)' : ''}; features ` +
      `${adapter.features.filter((f) => FEATURES_OF_NOTE.includes(f)).join(', ') || 'none of note'}` +
      `${experimental.length ? `; with allow_unsafe_apis also ${experimental.join(', ')}` : ''}`
    : 'none found';
  return [
    `## Real GPU — ${card}, ${texts.date}`,
    '',
    `\`bash bench/device/run.sh\` (bench/device/README.md) on ${card}` +
      `${gpu ? ` (${gpu.memory}, driver ${gpu.driver})` : ''}. Dawn's adapter: ${dawn}. ` +
      `${lineAfter(texts.setup, 'TUNELAB_PACK ') ?? ''}`.trim(),
    '',
    ...trainingTable(texts),
    '',
    ...matmulTable(texts),
    '',
    checkLine(texts),
    '',
    `Steps: ${texts.steps.trim().split('\n').filter(Boolean).join('; ') || 'none recorded'}.`,
  ].join('\n');
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function main(argv: string[]): number {
  const [command, ...rest] = argv;
  if (command === 'compare' && rest.length >= 2 && rest.length <= 4) {
    const tolerance = rest[2] === undefined ? LOSS_TOLERANCE : Number(rest[2]);
    if (!(tolerance > 0)) throw new Error(`report.mjs compare: tolerance must be > 0, got ${rest[2]}`);
    const check = {
      label: rest[3],
      ...compareLosses(lossJson(readText(rest[0]), rest[0]), lossJson(readText(rest[1]), rest[1]), tolerance),
    };
    console.log(`TUNELAB_LOSS_CHECK ${JSON.stringify(check)}`);
    console.log(
      `adapter check: ${check.pass ? 'PASS' : 'FAIL'} — tunelab ${check.tunelab}, PEFT ${check.peft}, ` +
        `|Δ|/loss ${check.relative.toExponential(2)}, tokens ${check.tokens.tunelab} / ${check.tokens.peft} (${check.reason})`,
    );
    return check.pass ? 0 : 1;
  }
  if (command === 'summary' && rest.length === 2) {
    const [dir, steps] = rest;
    const text = (name: string) => readText(join(dir, name));
    console.log(
      summaryBlock({
        setup: text('setup.txt'),
        kernels: text('kernels.txt'),
        train: text('train.txt'),
        anchor: text('anchor.txt'),
        check: text('adapter-check.txt'),
        steps: readText(steps),
        date: new Date().toISOString().slice(0, 10),
      }),
    );
    return 0;
  }
  console.error(
    'usage: report.mjs compare TUNELAB.json PEFT.json [TOLERANCE [LABEL]] | report.mjs summary OUT_DIR STEPS_FILE',
  );
  return 2;
}

// Only as a program: the unit tests import the functions above.
if (process.argv[1] && /report\.(mjs|ts)$/.test(process.argv[1])) process.exit(main(process.argv.slice(2)));
