// Test page (served by the e2e Vite server): a tiny checkpoint built here, a 2-trial study on a pool of two
// dedicated Workers, each with its own GPUDevice. The outcome lands in `window.poolResult`.
import { memoryFiles } from '../../../src/engine/checkpoint/byte-source.ts';
import { openModel } from '../../../src/engine/model/open.ts';
import { createStudy } from '../../../src/engine/search/index.ts';
import { dataTokenizer, padIdOf, parseDataset, splitExamples } from '../../../src/engine/train/data.ts';
import { optimize, StudyPlan } from '../../../src/engine/tune/index.ts';
import { WorkerPool } from '../../../src/workers/pool.ts';
import { spawnBrowserWorker } from '../../../src/workers/spawn-browser.ts';
import { buildTinyModel } from '../../fixtures/tiny-models.ts';

interface PoolResult {
  states?: string[];
  values?: (number | undefined)[];
  adapters?: string[];
  workers?: string[];
  events?: number;
  error?: string;
}

const log = (text: string) => {
  document.getElementById('log')!.textContent += `${text}\n`;
};

async function main(): Promise<PoolResult> {
  const tiny = buildTinyModel({ arch: 'llama' });
  const files = Object.fromEntries(
    Object.entries(tiny.files).map(([name, data]) => [name, new Blob([data as BlobPart])]),
  );
  const opened = await openModel(memoryFiles('tiny-llama', tiny.files));
  const rows = Array.from({ length: 24 }, (_, i) =>
    JSON.stringify({ prompt: `${i}+${i % 7}=`, completion: `${i + (i % 7)}` }),
  );
  const tok = dataTokenizer(opened.tokenizer);
  const data = parseDataset('add.jsonl', rows.join('\n'), tok, { seq: 8 });
  const { train, validation } = splitExamples(data.examples, 0.25, 1);
  const plan = StudyPlan.create(
    {
      space: { lr: { type: 'float', low: 1e-3, high: 3e-2, log: true } },
      fixed: {
        targets: 'all-linear',
        r: 4,
        schedule: 'constant',
        batch: 2,
        seq: 8,
        steps: 4,
        seed: 7,
        evalEvery: 2,
      },
      sampler: 'random',
      trials: 2,
      valRatio: 0.25,
    },
    { family: opened.spec.family },
  );
  const pool = new WorkerPool(spawnBrowserWorker, 2, {
    model: { kind: 'files', label: 'tiny-llama', files },
    precision: 'auto',
    train,
    validation,
    padId: padIdOf(tok),
  });
  const infos = await pool.start();
  log(`workers: ${infos.map((i) => `${i.adapter} (${i.precision})`).join(' | ')}`);
  const study = createStudy(plan.studyOptions());
  const adapters: string[] = [];
  const result = await optimize(study, pool, {
    trials: plan.spec.trials,
    objective: plan.spec.objective,
    trainerOptions: (params) => plan.trainerOptions(params),
    baseModel: 'tiny-llama',
    listener: {
      trialStarted: (t) => log(`trial ${t.number} on worker ${t.slot}: lr ${t.params.lr}`),
      trialFinished: (r) => log(`trial ${r.number}: ${r.state} ${r.value ?? r.reason ?? ''}`),
      newBest: (b) =>
        adapters.push(`${b.number}:${b.adapter?.['adapter_model.safetensors'].byteLength ?? 0}`),
    },
  });
  await pool.close();
  return {
    states: study.trials.map((t) => t.state),
    values: study.trials.map((t) => t.value),
    workers: [...new Set(result.results.map((r) => String(r.slot)))],
    adapters,
    events: study.events.length,
  };
}

const w = window as unknown as { poolResult?: PoolResult };
main().then(
  (r) => {
    w.poolResult = r;
  },
  (error: unknown) => {
    w.poolResult = { error: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  },
);
