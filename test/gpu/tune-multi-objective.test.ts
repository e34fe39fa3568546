// `tunelab tune --objectives` for real on a tiny checkpoint: a two-objective study (validation loss and peak GPU
// memory, which the LoRA rank trades against each other) runs to its end, every trial told both values; the
// summary prints the Pareto front, front/ holds exactly the front trials' adapters, the export is of the
// front's best validation loss; then `--resume --pick N` re-exports another front trial, and a trial off the
// front is refused, naming the front.
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadStudy } from '../../src/engine/search/index.ts';
import { runCli } from '../fixtures/cli.ts';
import { useTuneWorkspace } from './tune-workspace.ts';

const ws = useTuneWorkspace('tune-mo', {
  r: { type: 'categorical', choices: [2, 16] },
  lr: { type: 'float', low: 1e-3, high: 5e-2, log: true },
});

const COMMON = '--seq 8 --batch 4 --steps 6 --eval-every 3 --workers 2 --in-process';

describe('tunelab tune --objectives val_loss,peak_memory', { timeout: 400_000 }, () => {
  it('runs to a Pareto front, exports its best val_loss trial, and --pick re-exports another', async () => {
    const out = join(ws.dir, 'mo');
    const run = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --space ${ws.spaceFile} ${COMMON} ` +
        `--objectives val_loss,peak_memory --sampler tpe --trials 5 --seed 4 --out ${out}`,
    );
    console.log(run.stdout);
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/objectives val_loss,peak_memory/);
    const { study, errors } = loadStudy(await readFile(join(out, 'study.jsonl'), 'utf8'));
    expect(errors).toEqual([]);
    expect(study.directions).toEqual(['minimize', 'minimize']);
    const complete = study.trials.filter((t) => t.state === 'complete');
    expect(complete).toHaveLength(5);
    for (const t of complete) {
      expect(t.values).toHaveLength(2);
      expect(t.values![0]).toBe(t.value);
      expect(t.values![1]).toBeGreaterThan(0);
    }
    // The rank sets the memory: every r=16 trial holds more GPU bytes than every r=2 trial.
    const bytes = (r: number) => complete.filter((t) => t.params.r === r).map((t) => t.values![1]);
    if (bytes(2).length > 0 && bytes(16).length > 0)
      expect(Math.min(...bytes(16))).toBeGreaterThan(Math.max(...bytes(2)));

    const front = study.bestTrials.map((t) => t.number);
    expect(front.length).toBeGreaterThanOrEqual(2);
    expect(run.stdout).toMatch(
      new RegExp(`Pareto front: ${front.length} trials; val_loss \\(min\\), peak_memory \\(min\\)`),
    );
    for (const n of front) expect(run.stdout).toMatch(new RegExp(`^  trial ${n}( \\*)?  val_loss `, 'm'));
    expect((await readdir(join(out, 'front'))).sort()).toEqual(front.map((n) => `trial-${n}`).sort());

    // The default export: the front's lowest val_loss, adapter and config both of it.
    const byLoss = [...study.bestTrials].sort((a, b) => a.value! - b.value! || a.number - b.number);
    const exported = byLoss[0].number;
    expect(run.stdout).toMatch(new RegExp(`exported: trial ${exported} \\(\\*\\)`));
    const config = async () =>
      JSON.parse(await readFile(join(out, 'best-config.json'), 'utf8')) as { trial: number; value: number };
    expect((await config()).trial).toBe(exported);
    const adapter = () => readFile(join(out, 'adapter', 'adapter_model.safetensors'));
    const stored = (n: number) => readFile(join(out, 'front', `trial-${n}`, 'adapter_model.safetensors'));
    expect(Buffer.compare(await adapter(), await stored(exported))).toBe(0);

    // --pick another front trial: no new trial, its configuration and adapter exported.
    const other = byLoss[1].number;
    const picked = await runCli(`tune --resume ${out} --pick ${other}`);
    expect(picked.code).toBe(0);
    expect(picked.stdout).toMatch(new RegExp(`exported: trial ${other} \\(\\*\\)`));
    expect(loadStudy(await readFile(join(out, 'study.jsonl'), 'utf8')).study.trials).toHaveLength(5);
    expect((await config()).trial).toBe(other);
    expect(Buffer.compare(await adapter(), await stored(other))).toBe(0);

    // A trial off the front: refused before anything changes.
    const off = complete.find((t) => !front.includes(t.number));
    if (off) {
      const before = await readFile(join(out, 'best-config.json'), 'utf8');
      const refused = await runCli(`tune --resume ${out} --pick ${off.number}`);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toMatch(
        new RegExp(
          `--pick ${off.number}: trial ${off.number} is not on the Pareto front \\(front: trials ${front.join(', ')}\\)`,
        ),
      );
      expect(await readFile(join(out, 'best-config.json'), 'utf8')).toBe(before);
    }
    expect(existsSync(join(out, 'front', `trial-${off?.number ?? -1}`))).toBe(false);
  });
});
