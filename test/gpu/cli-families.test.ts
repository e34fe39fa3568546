// `tunelab eval`, `train`, `generate` and a 2-trial `tune` on a tiny checkpoint of each newer family, in real HF
// layout (test/fixtures/tiny-models.ts): Llama-3.2-style (llama3 RoPE scaling), Qwen3 (per-head q/k norms,
// head_dim ≠ hidden / heads), SmolLM3 (NoPE layers), Mistral with a sliding window shorter than the sequence, and
// Gemma 3 (Gemma-3-270M's structure: a sliding layer (window 6 < 12) then a global one, two RoPE bases).
// Small budgets: the point is that every command runs the
// family end to end and writes what it promises, not the training itself (load-and-train.test.ts checks that).
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_MODEL_OF_FAMILY } from '../../src/engine/export/colab.ts';
import { importPeftAdapter } from '../../src/engine/lora/peft.ts';
import { parseModelConfig } from '../../src/engine/model/config.ts';
import { runCli } from '../fixtures/cli.ts';
import { buildTinyModel, writeTinyModel, type TinyArch } from '../fixtures/tiny-models.ts';
import { additionPrompts } from './tune-workspace.ts';

let dir: string;
let data: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tunelab-families-'));
  data = join(dir, 'add.jsonl');
  await writeFile(data, additionPrompts(24));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FAMILIES: [TinyArch, string, Record<string, unknown>?][] = [
  ['llama3', 'LlamaForCausalLM'],
  ['qwen3', 'Qwen3ForCausalLM'],
  ['smollm3', 'SmolLM3ForCausalLM'],
  ['mistral', 'MistralForCausalLM', { sliding_window: 4 }],
  ['gemma3', 'Gemma3ForCausalLM'],
];

describe.each(FAMILIES)(
  '%s (%s) through the command line',
  { timeout: 400_000 },
  (arch, architecture, config) => {
    let model: string;
    beforeAll(async () => {
      model = await writeTinyModel(buildTinyModel({ arch, dtype: 'BF16', config }), join(dir, arch));
    });

    it('eval, train (PEFT adapter of every linear), generate through that adapter', async () => {
      const evaluated = await runCli(`eval --model ${model} --data ${data} --seq 12 --json`);
      expect(evaluated.code, evaluated.stderr).toBe(0);
      const { loss, tokens } = JSON.parse(evaluated.stdout);
      expect(tokens).toBeGreaterThan(0);
      expect(loss).toBeGreaterThan(0);

      const out = join(dir, `${arch}-run`);
      const trained = await runCli(
        `train --model ${model} --data ${data} --out ${out} --steps 4 --seq 12 --batch 2 --targets all-linear --r 4`,
      );
      expect(trained.code, trained.stderr).toBe(0);
      const config = await readFile(join(out, 'adapter_config.json'), 'utf8');
      const spec = parseModelConfig(await readFile(join(model, 'config.json'), 'utf8'));
      expect(spec.architecture).toBe(architecture);
      const adapter = await importPeftAdapter(
        config,
        new Uint8Array(await readFile(join(out, 'adapter_model.safetensors'))),
        spec,
      );
      expect(adapter.baseModel).toBe(model);
      expect(adapter.layout.modules).toHaveLength(7 * spec.layers);
      const steps = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(steps.filter((s) => s.type === 'step').every((s) => Number.isFinite(s.loss))).toBe(true);

      const generated = await runCli(
        `generate --model ${model} --prompt 1+2= --max-new-tokens 4 --adapter ${out}`,
      );
      expect(generated.code, generated.stderr).toBe(0);
      expect(generated.stdout.startsWith('1+2=')).toBe(true);
      expect(generated.stderr).toMatch(/\d+ tokens, stopped: (length|eos)/);
    });

    it('tune: 2 trials on one worker, every export written', async () => {
      const out = join(dir, `${arch}-study`);
      const tuned = await runCli(
        `tune --model ${model} --data ${data} --preset lora-basic --trials 2 --workers 1 --seq 12 --batch 2 ` +
          `--steps 3 --eval-every 3 --r 4 --out ${out}`,
      );
      expect(tuned.code, tuned.stderr).toBe(0);
      const trials = (await readFile(join(out, 'trials.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l));
      expect(trials).toHaveLength(2);
      expect(trials.every((t) => t.state === 'complete')).toBe(true);
      const family = parseModelConfig(await readFile(join(model, 'config.json'), 'utf8')).family;
      const best = JSON.parse(await readFile(join(out, 'best-config.json'), 'utf8'));
      expect(best.model).toMatchObject({ id: model, family });
      // Every export names the base model it was tuned on, and the adapter's every linear by its PEFT name.
      expect(await readFile(join(out, 'axolotl.yaml'), 'utf8')).toContain(`base_model: ${model}`);
      const adapter = JSON.parse(await readFile(join(out, 'adapter', 'adapter_config.json'), 'utf8'));
      expect(adapter.base_model_name_or_path).toBe(model);
      expect(adapter.target_modules.every((m: string) => /^(q|k|v|o|gate|up|down)_proj$/.test(m))).toBe(true);
      // The Colab notebook trains a Hub model of the family, since this one is a local folder.
      const colab = await readFile(join(out, 'colab.ipynb'), 'utf8');
      expect(colab).toContain(`${HUB_MODEL_OF_FAMILY[family]} is a Hub model of the same family`);
    });
  },
);
