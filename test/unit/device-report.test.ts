// bench/device/report.ts: the parsing of what run.sh collects on the GPU machine, and the adapter check's verdict.
// The texts below are in the formats bench:kernels, bench:train and peft_anchor.py print.
import { describe, expect, it } from 'vitest';
import {
  compareLosses,
  lossJson,
  markdownTables,
  parseAnchor,
  parseGpu,
  parseKernels,
  parseTrain,
  summaryBlock,
  type RunTexts,
} from '../../bench/device/report.ts';

const KERNELS = `# tunelab kernel bench — 2026-12-01
device: nvidia hopper NVIDIA H200
timing: GPU timestamps, median of 5 runs
peak: 21000.0 GFLOP/s (f32 matmul 1024³), 3000.0 GB/s (64 MiB copy)

| kernel | variant | ms | FLOPs | GFLOP/s | GB/s | % of peak |
| --- | --- | ---: | ---: | ---: | ---: | ---: |
| attention fwd B=4 T=256 H=9 Hkv=3 D=64 f16 | 64×64 | 0.050 | 1 | 2,000.00 | 1.00 | 9% |
| matmul q_proj fwd X·Wᵀ 1024×576×576 f16 | 8×8 vec4 | 0.0250 | 679477248 | 27,179.09 | 80.00 | 129% |
| matmul LoRA dA = (dY·B)ᵀ·X 16×576×1024 f32 split-K 4 | skinny | 0.0100 | 18874368 | 1887.44 | 9.00 | 9% |
| matmul decode M=1 x·Wᵀ 1×1536×576 f16 | failed: out of memory | | | | | |
`;

const TRAIN = `# tunelab training-step bench — 2026-12-01
device: nvidia hopper NVIDIA H200
model: smol (30 layers, hidden 576, ffn 1536, vocab 49152), f16, LoRA r=16 on all-linear (4,884,480 params), batch 4 × seq 256
| recompute | tokens/s | ms/step | dispatches/step | submits/step | readbacks/step | GPU MiB held | last loss |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| on | 9000.0 | 113.8 | 3000.0 | 1.0 | 1.0 | 500.0 | 10.8 |
| off | 12000.0 | 85.3 | 2758.0 | 1.0 | 1.0 | 900.0 | 10.8 |
`;

// As peft_anchor.py's f-string prints it (thousands separators from {:,.0f}).
const ANCHOR = `Some transformers warning
PyTorch+PEFT eager, f16 weights + autocast: 48,000 tokens/s, 21.3 ms/step, peak 1,234 MiB, 30 layers, 4x256, NVIDIA H200, torch 2.11.0+cu130
PyTorch+PEFT eager, f32 weights + autocast: 30,000 tokens/s, 34.1 ms/step, peak 2,345 MiB, 30 layers, 4x256, NVIDIA H200, torch 2.11.0+cu130
`;

describe('markdownTables', () => {
  it('reads header and rows, drops the separator, and splits tables at non-table lines', () => {
    const tables = markdownTables('| a | b |\n| --- | ---: |\n| 1 | 2 |\ntext\n| c |\n| 3 |\n');
    expect(tables).toEqual([
      { header: ['a', 'b'], rows: [['1', '2']] },
      { header: ['c'], rows: [['3']] },
    ]);
  });
});

describe('bench output parsers', () => {
  it('bench:kernels: matmul rows by header name, even with columns added before GFLOP/s', () => {
    const report = parseKernels(KERNELS);
    expect(report.device).toBe('nvidia hopper NVIDIA H200');
    expect(report.timing).toBe('GPU timestamps, median of 5 runs');
    expect(report.matmuls.map((m) => m.name)).toEqual([
      'matmul q_proj fwd X·Wᵀ 1024×576×576 f16',
      'matmul LoRA dA = (dY·B)ᵀ·X 16×576×1024 f32 split-K 4',
      'matmul decode M=1 x·Wᵀ 1×1536×576 f16',
    ]);
    expect(report.matmuls[0].ms).toBe(0.025);
    expect(report.matmuls[0].tflops).toBeCloseTo(27.17909, 6);
    expect(report.matmuls[1].tflops).toBeCloseTo(1.88744, 6);
    expect(report.matmuls[2].tflops).toBeNaN(); // a failed row has no number, not a zero
  });

  it('bench:train: the row without recomputation, wherever it sits', () => {
    const report = parseTrain(TRAIN);
    expect(report.tokensPerSecond).toBe(12000);
    expect(report.msPerStep).toBe(85.3);
    expect(report.model).toMatch(/^smol \(30 layers/);
  });

  it('bench:train without a result gives NaN, not a number from elsewhere', () => {
    expect(parseTrain('Error: device lost').tokensPerSecond).toBeNaN();
  });

  it("peft_anchor.py's lines, thousands separators included", () => {
    const rows = parseAnchor(ANCHOR);
    expect(rows.map((r) => [r.label, r.tokensPerSecond, r.msPerStep])).toEqual([
      ['f16 weights + autocast', 48000, 21.3],
      ['f32 weights + autocast', 30000, 34.1],
    ]);
    expect(rows[0].detail).toContain('NVIDIA H200');
  });

  it("nvidia-smi's csv line; an empty one is no GPU", () => {
    expect(parseGpu('x\nTUNELAB_GPU NVIDIA H200, 580.159.03, 143771 MiB\n')).toEqual({
      name: 'NVIDIA H200',
      driver: '580.159.03',
      memory: '143771 MiB',
    });
    expect(parseGpu('TUNELAB_GPU \n')).toBeUndefined();
  });
});

describe('the adapter check', () => {
  it('passes under 1e-4 relative over the same tokens, fails at or above it', () => {
    expect(compareLosses({ loss: 3.5, tokens: 118 }, { loss: 3.5 * (1 + 5e-5), tokens: 118 }).pass).toBe(
      true,
    );
    const off = compareLosses({ loss: 3.5, tokens: 118 }, { loss: 3.5 * (1 + 2e-4), tokens: 118 });
    expect(off.pass).toBe(false);
    expect(off.relative).toBeCloseTo(2e-4 / (1 + 2e-4), 10);
  });

  it('fails on different token counts and on a non-finite loss, whatever the numbers', () => {
    expect(compareLosses({ loss: 3.5, tokens: 118 }, { loss: 3.5, tokens: 117 })).toMatchObject({
      pass: false,
      reason: 'the losses average different token counts',
    });
    expect(compareLosses({ loss: NaN, tokens: 118 }, { loss: NaN, tokens: 118 }).pass).toBe(false);
  });

  it('reads the last JSON line with a loss after Python warnings; NaN reads as a failed loss', () => {
    const text = 'UserWarning: something\n{"other": 1}\n{"loss": 3.25, "tokens": 118}\n';
    expect(lossJson(text, 'peft')).toEqual({ loss: 3.25, tokens: 118 });
    expect(lossJson('{"loss": NaN, "tokens": 118}\n', 'peft').loss).toBeNaN();
    expect(() => lossJson('Traceback (most recent call last):\n', 'peft.log')).toThrow(
      'peft.log: no JSON with a "loss" in it',
    );
  });

  it('reads tunelab-loss.json, written indented over many lines', () => {
    const text = `${JSON.stringify({ loss: 3.53, tokens: 118, baseLoss: 6.1 }, null, 2)}\n`;
    expect(lossJson(text, 'tunelab-loss.json')).toEqual({ loss: 3.53, tokens: 118 });
  });
});

describe('summaryBlock', () => {
  const check = compareLosses({ loss: 3.53112, tokens: 118 }, { loss: 3.53113, tokens: 118 });
  const texts: RunTexts = {
    setup:
      'TUNELAB_PACK packed from abc1234\nTUNELAB_GPU NVIDIA H200, 580.159.03, 143771 MiB\n' +
      'TUNELAB_ADAPTER {"vendor":"nvidia","architecture":"hopper","description":"NVIDIA H200","software":false,' +
      '"features":["shader-f16","subgroups","timestamp-query","texture-compression-bc"]}\n' +
      'TUNELAB_ADAPTER_UNSAFE {"vendor":"nvidia","architecture":"hopper","description":"NVIDIA H200","software":false,' +
      '"features":["chromium-experimental-subgroup-matrix","shader-f16"]}\n',
    kernels: KERNELS,
    train: TRAIN,
    anchor: ANCHOR,
    check: `TUNELAB_LOSS_CHECK ${JSON.stringify(check)}\n`,
    steps: 'setup: ok\nkernels: ok\n',
    date: '2026-12-01',
  };

  it('names the card, the ratio to PyTorch + PEFT f16, the matmul TFLOPS and the verdict', () => {
    const block = summaryBlock(texts);
    expect(block).toContain('## Real GPU — NVIDIA H200, 2026-12-01');
    expect(block).toContain('(143771 MiB, driver 580.159.03)');
    expect(block).toContain('with allow_unsafe_apis also chromium-experimental-subgroup-matrix');
    expect(block).toContain('**tunelab / PyTorch + PEFT eager (f16 weights): 0.25×**');
    expect(block).toContain('| matmul q_proj fwd X·Wᵀ 1024×576×576 f16 | 0.025 | 27.2 |');
    expect(block).toContain('**PASS**');
    expect(block).toContain('Steps: setup: ok; kernels: ok.');
  });

  it('says n/a and where to look when a step left no result', () => {
    const block = summaryBlock({ ...texts, anchor: '', check: '' });
    expect(block).toContain('**tunelab / PyTorch + PEFT eager (f16 weights): n/a×**');
    expect(block).toContain('PyTorch + PEFT eager: no result (see anchor.txt)');
    expect(block).toContain('Adapter check: no verdict (see adapter-check.txt).');
  });
});
