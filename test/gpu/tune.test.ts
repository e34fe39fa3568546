// `tunelab tune` for real: worker threads with their own Dawn device each, on a tiny checkpoint written to a
// temporary directory. A study with each kind of sampler, ASHA pruning a hopeless region, a worker killed
// mid-trial, and a stopped study resumed without running a finished trial again.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { decodeTrialCheckpoint, trialCheckpointName } from '../../src/engine/checkpoint/trial-checkpoint.ts';
import { LlamaModel } from '../../src/engine/model/llama.ts';
import { createStudy, loadStudy } from '../../src/engine/search/index.ts';
import type { TrialResult } from '../../src/engine/tune/index.ts';
import { defaultSettings, studyPlan } from '../../src/ui/lib/search-config.ts';
import { WorkerPool } from '../../src/workers/pool.ts';
import { runCli } from '../fixtures/cli.ts';
import { useTuneWorkspace } from './tune-workspace.ts';

// Two regions: a learning rate that learns, and one (1e-7) that cannot move the loss in 8 steps.
const ws = useTuneWorkspace('tune', {
  lr: { type: 'categorical', choices: [3e-2, 1e-7] },
  lora_dropout: { type: 'float', low: 0, high: 0.1 },
});

// Every study here: 8 steps of batch 4 at seq 8, evaluated every 2 steps, rank 4, two worker threads.
const COMMON = '--seq 8 --batch 4 --steps 8 --eval-every 2 --r 4 --workers 2';

async function outputs(out: string) {
  const { study, errors } = loadStudy(await readFile(join(out, 'study.jsonl'), 'utf8'));
  const results = (await readFile(join(out, 'trials.jsonl'), 'utf8'))
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as TrialResult);
  return { study, errors, results };
}

// Each worker thread has a Dawn device of its own and compiles every pipeline itself: with a cold shader cache
// (a fresh CI machine) a study takes about a minute, and the resume test runs three. A test that outlives its
// timeout keeps running and would restore the next test's captured stderr, so the margin is wide.
describe('tunelab tune on two worker threads', { timeout: 400_000 }, () => {
  it('random sampler + ASHA: 6 trials, the hopeless learning rate pruned, the best adapter written', async () => {
    const out = join(ws.dir, 'asha');
    const { code, stdout } = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --space ${ws.spaceFile} ${COMMON} ` +
        `--sampler random --pruner asha --trials 6 --seed 3 --out ${out}`,
    );
    console.log(stdout);
    expect(code).toBe(0);
    const { study, errors } = await outputs(out);
    expect(errors).toEqual([]);
    const states = study.trials.map((t) => t.state);
    expect(states).toHaveLength(6);
    expect(states.every((s) => s === 'complete' || s === 'pruned')).toBe(true);
    expect(states).toContain('pruned');
    // Every pruned trial stopped at an eval point, before the end.
    for (const t of study.trials.filter((t) => t.state === 'pruned'))
      expect(t.intermediate.at(-1)![0]).toBeLessThan(8);
    // The seeded study draws lr 1e-7 after two trials have passed the first rung: it is pruned there.
    const hopeless = study.trials.filter((t) => t.params.lr === 1e-7);
    expect(hopeless.length).toBeGreaterThan(0);
    for (const t of hopeless) expect(t.state).toBe('pruned');
    const best = study.bestTrial!;
    expect(best.params.lr).toBe(3e-2);
    // The export bundle of the best trial, with its trained adapter.
    const saved = JSON.parse(await readFile(join(out, 'best-config.json'), 'utf8'));
    expect(JSON.stringify(saved)).toContain(`"trial":${best.number}`);
    const config = JSON.parse(await readFile(join(out, 'adapter', 'adapter_config.json'), 'utf8'));
    expect(config.r).toBe(4);
    expect((await readFile(join(out, 'adapter', 'adapter_model.safetensors'))).byteLength).toBeGreaterThan(
      1000,
    );
    for (const f of ['hf/training_args.json', 'axolotl.yaml', 'optuna_search.py', 'trials.csv'])
      expect((await readFile(join(out, f), 'utf8')).length).toBeGreaterThan(0);
  });

  it('GP sampler: 6 trials complete, each evaluated at every rung', async () => {
    const out = join(ws.dir, 'gp');
    const { code, stdout } = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --preset lora-basic ${COMMON} --sampler gp --trials 6 --out ${out}`,
    );
    expect(code).toBe(0);
    const { study } = await outputs(out);
    expect(study.trials.map((t) => t.state)).toEqual(Array(6).fill('complete'));
    // The summary ranks the two parameters over the whole space and among the best trials.
    expect(stdout).toMatch(/^importance, whole space \(fANOVA\): (lr|lora_dropout) \d\.\d\d, \w+ \d\.\d\d$/m);
    expect(stdout).toMatch(/^importance, top 10 % \(PED-ANOVA\): (lr|lora_dropout) \d\.\d\d, \w+ \d\.\d\d$/m);
    for (const t of study.trials) expect(t.intermediate.map(([s]) => s)).toEqual([2, 4, 6, 8]);
    // --r fixes the rank: it left the space, and lora_alpha (derived from it) with it.
    expect(Object.keys(study.space.spec).sort()).toEqual(['lora_dropout', 'lr']);
  });

  it('--warm-start: a new study asks the finished study’s best configurations first, then samples', async () => {
    const source = join(ws.dir, 'warm-source');
    const first = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --space ${ws.spaceFile} ${COMMON} --sampler random --trials 3 --out ${source}`,
    );
    expect(first.code).toBe(0);
    const done = (await outputs(source)).study;
    const ranked = done.trials
      .filter((t) => t.state === 'complete')
      .sort((a, b) => (a.value ?? Infinity) - (b.value ?? Infinity));
    const out = join(ws.dir, 'warm');
    const { code, stderr } = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --space ${ws.spaceFile} ${COMMON} --sampler tpe --trials 4 --warm-start ${source} --out ${out}`,
    );
    expect(code, stderr).toBe(0);
    const { study } = await outputs(out);
    expect(study.warmStart?.replay.length).toBe(ranked.length);
    // Replayed best first, marked as replays in the log; every trial of the new study trained to the end.
    const replays = study.trials.filter((t) => t.system.warmStart === 'replay');
    expect(replays.map((t) => t.params)).toEqual(ranked.map((t) => t.params));
    expect(study.trials.slice(0, ranked.length)).toEqual(replays);
    expect(study.trials[ranked.length].system.warmStart).toBeUndefined();
    expect(study.trials.map((t) => t.state)).toEqual(Array(4).fill('complete'));
  });

  it('a worker killed mid-trial fails that trial, is replaced, and the study completes', async () => {
    const out = join(ws.dir, 'kill');
    let killed = -1;
    const { code } = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --preset lora-basic ${COMMON} --sampler random --trials 4 --out ${out}`,
      {
        onTrialStep(pool, trial, step, slot) {
          if (trial === 1 && step === 3 && killed < 0) {
            killed = trial;
            (pool as WorkerPool).kill(slot, 'killed by the test');
          }
        },
      },
    );
    expect(code).toBe(0);
    expect(killed).toBe(1);
    const { study, results } = await outputs(out);
    expect(study.trial(1).state).toBe('failed');
    expect(results.find((r) => r.number === 1)!.reason).toMatch(
      /WorkerDiedError: worker \d killed by the test/,
    );
    // 4 complete trials besides the failed one: the replacement worker ran trials after it.
    expect(study.trials.filter((t) => t.state === 'complete')).toHaveLength(4);
    expect(study.trials).toHaveLength(5);
  });

  it('Ctrl-C pauses the running trials into checkpoints; --resume continues them from there to the end (a damaged one from step 0)', async () => {
    const out = join(ws.dir, 'resume');
    let signalled = false;
    const first = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --preset lora-basic ${COMMON} --sampler tpe --trials 6 --out ${out}`,
      {
        onTrialStep(_pool, trial, step) {
          // Trial 3 is asked when the second trial ends: a real SIGINT while it runs, with 0 and 1 finished.
          if (trial === 3 && step === 3 && !signalled) {
            signalled = true;
            process.kill(process.pid, 'SIGINT');
          }
        },
      },
    );
    expect(first.code).toBe(130);
    expect(first.stdout).toContain(`continue the paused trials with: tunelab tune --resume ${out}`);
    // The validation set is capped by the plan (256 by default): these 5 examples are all used.
    expect(first.stderr).toMatch(/ 5 validation examples \(each evaluation uses all 5\)/);
    const before = await outputs(out);
    const done = before.study.trials.filter((t) => t.state === 'complete').map((t) => t.number);
    expect(done.length).toBeGreaterThanOrEqual(2);
    const paused = before.results.filter((r) => r.state === 'paused');
    expect(paused.map((r) => r.number)).toContain(3);
    for (const r of paused) {
      // Paused, not failed: still running in the log, its checkpoint on disk at the step it reached.
      expect(before.study.trial(r.number).state).toBe('running');
      expect(first.stdout).toContain(`trial ${r.number} paused at step ${r.steps}, checkpointed`);
      const file = join(out, 'checkpoints', trialCheckpointName(r.number));
      const checkpoint = await decodeTrialCheckpoint(await readFile(file), file, r.number);
      expect(checkpoint.step).toBe(r.steps);
      // Trial 3 was signalled at its step 3; the other running trial is wherever its own worker had got to
      // (another batch size, another speed: CI once caught it at step 2), which the checkpoint records.
      if (r.number === 3) expect(checkpoint.step).toBeGreaterThanOrEqual(3);
    }

    // A crash mid-write tears the last line: resume cuts it off (keeping the original) rather than appending
    // onto it, which glued the next event to it and lost that line on the following resume.
    const torn = `${(await readFile(join(out, 'study.jsonl'), 'utf8')).trimEnd()}\n{"type":"tell","number":3,"st`;
    await writeFile(join(out, 'study.jsonl'), torn);
    const trialsTorn = `${(await readFile(join(out, 'trials.jsonl'), 'utf8')).trimEnd()}\n{"number":`;
    await writeFile(join(out, 'trials.jsonl'), trialsTorn);

    // A checkpoint damaged on disk is refused, said, and its trial restarts from step 0 (the others do not).
    const damaged = paused[0];
    const damagedFile = join(out, 'checkpoints', trialCheckpointName(damaged.number));
    const bytes = await readFile(damagedFile);
    bytes[bytes.length - 7] ^= 0xff;
    await writeFile(damagedFile, bytes);

    const second = await runCli(`tune --resume ${out}`);
    console.log(`${first.stdout}--- resumed ---\n${second.stdout}`);
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(new RegExp(`\\(${paused.length} continued from the last pause\\)`));
    const after = await outputs(out);
    expect(after.errors).toEqual([]);
    expect(second.stdout).toContain(`trial ${damaged.number} resumed from step 0 on worker`);
    expect(second.stdout).toContain(
      `(its checkpoint was refused (${damagedFile}: the data does not match __metadata__.checksum`,
    );
    expect(second.stdout).toContain('it is corrupt): restarting from step 0)');
    for (const r of paused) {
      const from = r === damaged ? 0 : r.steps;
      expect(second.stdout).toMatch(new RegExp(`trial ${r.number} resumed from step ${from} on worker \\d`));
      expect(after.study.trial(r.number).state).toBe('complete');
      // Its reports before the pause kept, the later ones added: every rung once, in order.
      expect(after.study.trial(r.number).intermediate.map(([s]) => s)).toEqual([2, 4, 6, 8]);
    }
    // The finished trials kept their values and were not run again; no trial was asked in a paused one's place.
    for (const n of done) expect(after.study.trial(n).value).toBe(before.study.trial(n).value);
    expect(after.study.trials.map((t) => t.state)).toEqual(Array(6).fill('complete'));
    await expect(readdir(join(out, 'checkpoints'))).resolves.toEqual([]);
    // The exports' record of the plan holds the cap.
    const bestConfig = JSON.parse(await readFile(join(out, 'best-config.json'), 'utf8')) as {
      study: { plan: { maxEvalExamples: number } };
    };
    expect(bestConfig.study.plan.maxEvalExamples).toBe(256);
    expect(second.stderr).toMatch(/study\.jsonl line \d+ was cut short by a crash mid-write/);
    expect(await readFile(join(out, 'study.jsonl.bak'), 'utf8')).toBe(torn);
    expect(await readFile(join(out, 'trials.jsonl.bak'), 'utf8')).toBe(trialsTorn);
  });

  it('--constraints: every trial told its constraint values; none feasible, so no best and exit 1', async () => {
    const out = join(ws.dir, 'constrained');
    const { code, stdout, stderr } = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --preset lora-basic ${COMMON} --sampler tpe --trials 2 ` +
        `--constraints tokens_per_second>=1e12,peak_memory<=1GiB --out ${out}`,
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(
      /no feasible trial: all 2 complete trials break --constraints tokens_per_second>=1000000000000,peak_memory<=1073741824/,
    );
    expect(stdout).toMatch(/trial \d complete, val_loss [\d.]+ \(infeasible: breaks a constraint\)/);
    const { study, results } = await outputs(out);
    expect(study.plan?.constraints).toEqual([
      { metric: 'tokens_per_second', op: '>=', bound: 1e12 },
      { metric: 'peak_memory', op: '<=', bound: 2 ** 30 },
    ]);
    expect(study.trials.map((t) => t.state)).toEqual(['complete', 'complete']);
    for (const t of study.trials) {
      const [speed, memory] = t.constraints!;
      expect(speed).toBeGreaterThan(1e11); // 1e12 − tokens/s: broken
      // The tiny model's weights, adapter, optimizer state and activations: kept (≤ 0), but not nothing.
      expect(memory).toBeLessThan(0);
      expect(memory).toBeGreaterThan(-(2 ** 30));
    }
    expect(study.bestTrial).toBeUndefined();
    expect(results.map((r) => r.feasible)).toEqual([false, false]);
    await expect(readFile(join(out, 'best-config.json'), 'utf8')).rejects.toThrow(/ENOENT/);
  });

  it('exits 1 and says why when no trial completed', async () => {
    const out = join(ws.dir, 'none');
    const { code, stderr } = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --preset lora-basic ${COMMON} --trials 1 --out ${out}`,
      {
        // Mid-training, as in the test above (worker-kill.test.ts kills at every moment of a trial).
        onTrialStep(pool, _trial, step, slot) {
          if (step === 3) (pool as WorkerPool).kill(slot, 'killed by the test');
        },
      },
    );
    expect(code).toBe(1);
    expect(stderr).toMatch(/no trial completed \(1 failed, 0 pruned\); trial 0 failed: .*killed by the test/);
  });

  it('PBT: bottom trials continue from a top trial checkpoint with perturbed parameters (lineage in the log)', async () => {
    const out = join(ws.dir, 'pbt');
    const { code, stdout } = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --preset lora-basic ${COMMON} --sampler random --pbt --trials 4 --out ${out}`,
    );
    expect(code).toBe(0);
    const { study } = await outputs(out);
    expect(study.trials.map((t) => t.state)).toEqual(Array(4).fill('complete'));
    const exploits = study.events.filter((e) => e.type === 'pbt');
    expect(exploits.length).toBeGreaterThan(0);
    for (const e of exploits) {
      expect(study.lineage(e.number).some((l) => l.donor === e.donor && l.step === e.step)).toBe(true);
      expect(stdout).toContain(`trial ${e.number} exploits trial ${e.donor}`);
    }
  });

  it('refuses --pbt over the rank and accuracy on data without labels, naming the flag', async () => {
    const base = `tune --model ${ws.modelDir} --data ${ws.dataFile} --seq 8 --batch 4 --steps 8 --eval-every 2`;
    const refused = async (line: string, message: RegExp) => {
      const { code, stderr } = await runCli(line);
      expect(code).toBe(2);
      expect(stderr).toMatch(message);
    };
    const out = `--out ${join(ws.dir, 'refused')}`;
    await refused(`${base} ${out} --preset lora-basic --pbt`, /--pbt: r change the adapter/);
    await refused(`${base} --out ${join(ws.dir, 'gp')}`, /already holds a study; continue it with --resume/);
    await refused(
      `${base} ${out} --objective accuracy`,
      /--objective: objective accuracy: only available for classification data/,
    );
  });

  it('runs the plan of a study the page made (--plan study.jsonl): the same recipe, on the CLI', async () => {
    const settings = { ...defaultSettings(), stepsPerTrial: 8, seq: 8, trials: 2, pruner: 'median' as const };
    const page = studyPlan(settings, 'llama');
    const exported = join(ws.dir, 'page-study.jsonl');
    await writeFile(exported, createStudy(page.studyOptions()).log());
    const out = join(ws.dir, 'from-page');
    const recipe = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --plan ${exported} --lr 1 --out ${out}`,
    );
    expect(recipe.stderr).toMatch(/--plan gives the whole recipe: drop --lr/);
    const { code } = await runCli(
      `tune --model ${ws.modelDir} --data ${ws.dataFile} --plan ${exported} --workers 2 --out ${out}`,
    );
    expect(code).toBe(0);
    const { study } = await outputs(out);
    expect(study.plan).toEqual(page.toJSON());
    // Two trials on two workers under the page's median pruner (one startup trial): once one has completed, the
    // other may be pruned, depending on which finishes first, so one complete and one complete or pruned.
    const states = study.trials.map((t) => t.state).sort();
    expect([
      ['complete', 'complete'],
      ['complete', 'pruned'],
    ]).toContainEqual(states);
    // The page's budget: eight steps, evaluated every ceil(8 / 4) = 2 steps, at seq 8 (a pruned trial stops early).
    for (const t of study.trials) {
      const steps = t.intermediate.map(([s]) => s);
      expect(steps).toEqual([2, 4, 6, 8].slice(0, t.state === 'complete' ? 4 : steps.length));
      expect(steps.length).toBeGreaterThan(0);
    }
    const best = JSON.parse(await readFile(join(out, 'best-config.json'), 'utf8'));
    expect(best.hyperparameters).toMatchObject({
      steps: 8,
      seq: 8,
      seed: settings.seed,
      targets: 'all-linear',
    });
  });

  it('--recompute trains every trial to the same evaluations (it changes memory, not the math)', async () => {
    const run = async (name: string, extra: string) => {
      const out = join(ws.dir, name);
      const space = `--space ${ws.spaceFile} --seq 8 --batch 4 --steps 8 --eval-every 2 --r 4`;
      const budget = '--in-process --sampler random --trials 2';
      const line = `tune --model ${ws.modelDir} --data ${ws.dataFile} ${space} ${budget} ${extra} --out ${out}`;
      expect((await runCli(line)).code).toBe(0);
      const { study } = await outputs(out);
      return study.trials.map((t) => ({ params: t.params, intermediate: t.intermediate }));
    };
    // In process, so the trainers' activations can be watched: the flag must reach every trial.
    const activations = vi.spyOn(LlamaModel.prototype, 'createActivations');
    const recomputing = () => activations.mock.calls.map((c) => c[3]?.recompute === true);
    try {
      const plain = await run('plain', '');
      expect(recomputing()).toEqual([false, false]);
      activations.mockClear();
      const recomputed = await run('recomputed', '--recompute');
      expect(recomputing()).toEqual([true, true]);
      expect(plain.every((t) => t.intermediate.length === 4)).toBe(true);
      expect(recomputed).toEqual(plain);
    } finally {
      activations.mockRestore();
    }
  });
});
