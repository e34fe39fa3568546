import { describe, expect, it } from 'vitest';
import { runCli } from '../../fixtures/cli.ts';

const rowOf = (stdout: string, id: string) => stdout.split('\n').find((l) => l.includes(` ${id} `)) ?? '';

describe('tunelab models', () => {
  it('prints the ladder with parameters and memory, and with --gpu-memory the verdict', async () => {
    const { code, stdout } = await runCli('models --gpu-memory 3');
    expect(code).toBe(0);
    expect(rowOf(stdout, 'HuggingFaceTB/SmolLM2-135M')).toMatch(/^SmolLM2 +\S+ +135M .* fits$/);
    // 3.70 GiB with every block's activations, 2.67 GiB recomputing them.
    expect(rowOf(stdout, 'meta-llama/Llama-3.2-1B')).toMatch(/1\.24B .* needs --recompute$/);
    expect(rowOf(stdout, 'Qwen/Qwen3-4B')).toMatch(/4\.02B .* does not fit$/);
    expect(rowOf(stdout, 'HuggingFaceTB/SmolLM3-3B')).toMatch(/^SmolLM3 /);
    expect(rowOf(stdout, 'google/gemma-3-270m')).toMatch(/^Gemma-3 +google\/gemma-3-270m +268M .* fits$/);
    expect(stdout).not.toMatch(/Listed once their family loads/);
  });

  it('without --gpu-memory: no verdict column; --batch and --seq change the estimate', async () => {
    const small = await runCli('models');
    expect(small.stdout.split('\n')[0]).not.toMatch(/verdict/);
    const big = await runCli('models --batch 8 --seq 1024');
    const memory = (out: string) => rowOf(out, 'Qwen/Qwen3-0.6B').split(/ {2,}/)[3];
    expect(memory(big.stdout)).not.toBe(memory(small.stdout));
  });

  it.each([
    ['models --gpu-memory 0', /--gpu-memory: expected a number > 0 ≤ 1048576, got '0'/],
    ['models --batch 0', /--batch: expected a whole number ≥ 1/],
    ['models --precision f8', /--precision: expected f16 or f32, got 'f8'/],
    ['models --model x', /'--model'/],
  ])('%s is refused (exit 2)', async (line, message) => {
    const { code, stderr } = await runCli(line);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });
});
