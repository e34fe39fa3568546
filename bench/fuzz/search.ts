// Fuzzing the two ways a search space gets into a study: a space spec (what `tunelab tune --space` reads) through
// StudyPlan.create, and the page's Search form (text rows) through its problems check and plan. Each case ends
// as a clear error (a typed error, or a message next to a row), a crash (anything else thrown), or silent: the
// space was accepted but a trial would reject one of its samples (trial config or the model's bounds).
//
//   npx tsx bench/fuzz/search.ts                 # 3000 cases each, seed 1
//   npx tsx bench/fuzz/search.ts --cases 500 --seed 7 --show 3
//
// Seed 1, 3000 cases each (clear / crash / silent):
//   before the trial-config check of the space  search space 2656 / 72 / 272   search form 2680 / 113 / 207
//   after (StudyPlan.create, searchProblems)     search space 3000 / 0 / 0      search form 3000 / 0 / 0
// (the crashes: a grid sampler study whose grid was too large, refused only at its first trial; the form's
// check was then search-state.svelte.ts's, copied into this script.)
import { parseArgs } from 'node:util';
import { createStudy, SAMPLER_NAMES } from '../../src/engine/search/index.ts';
import { createSpace, resolveParams, type Params, type SpaceSpec } from '../../src/engine/search/space.ts';
import { Rng } from '../../src/engine/rng.ts';
import { TrialConfigError } from '../../src/engine/train/config.ts';
import { PlanError, StudyPlan, type PlanInput } from '../../src/engine/tune/plan.ts';
import { preset } from '../../src/engine/tune/presets.ts';
import {
  defaultSettings,
  HYPER_NAMES,
  HYPERPARAMETERS,
  planInput as planInputOf,
  PRESETS,
  searchProblems,
  type SearchSettings,
} from '../../src/ui/lib/search-config.ts';
import { FORM_TEXTS, PARAM_NAMES } from '../../test/fixtures/search-inputs.ts';
import { rng } from '../../test/reference/random.ts';

const { values: args } = parseArgs({
  options: {
    cases: { type: 'string', default: '3000' },
    seed: { type: 'string', default: '1' },
    show: { type: 'string', default: '0' },
  },
});
const CASES = Number(args.cases);
const SHOW = Number(args.show);

/** The model the fuzzed studies run on (SmolLM2-135M's bounds). */
const MODEL = { family: 'llama' as const, maxPositions: 2048, hidden: 576 };

type Outcome = 'clear' | 'crash' | 'silent';

const rand = rng(Number(args.seed)); // seeded, so a run is repeatable
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)];

const NUMBERS: unknown[] = [
  0,
  1,
  2,
  8,
  64,
  -1,
  -1e-3,
  0.5,
  0.9999999999999999,
  1.5,
  3.7,
  1e-5,
  1e-3,
  1e308,
  -1e308,
  5e-324,
  4096,
  1e6,
  NaN,
  Infinity,
  -Infinity,
  '1e-3',
  null,
  true,
];
const WORDS: unknown[] = [
  'cosine',
  'cosin',
  'linear',
  'constant',
  'all-linear',
  'attention',
  'q_proj',
  'q_proj,v_proj',
  'foo bar',
  '',
  'adamw',
  'sgd',
  'f16',
  true,
  false,
];
const NAMES = PARAM_NAMES;
const TYPES: unknown[] = ['float', 'int', 'categorical', 'derived', 'floaty', undefined, 3];

const randomChoices = (): unknown[] =>
  Array.from({ length: Math.floor(rand() * 4) }, () => (rand() < 0.5 ? pick(NUMBERS) : pick(WORDS)));

function randomSpec(names: string[]): Record<string, unknown> {
  const type = pick(TYPES);
  if (type === 'categorical') return { type, choices: randomChoices() };
  if (type === 'derived') return { type, from: pick(names), scale: pick(NUMBERS) };
  const spec: Record<string, unknown> = { type, low: pick(NUMBERS), high: pick(NUMBERS) };
  if (rand() < 0.3) spec.log = rand() < 0.8 ? true : 'yes';
  if (rand() < 0.3) spec.step = pick(NUMBERS);
  return spec;
}

/** One to three mutations of a preset's space: values, types, names, extra and missing parameters. */
function mutatedSpace(): Record<string, unknown> {
  const base = structuredClone(preset(pick(['lora-basic', 'lora-full'] as const)).space) as unknown as Record<
    string,
    Record<string, unknown>
  >;
  const entries = Object.entries(base);
  for (let m = 1 + Math.floor(rand() * 3); m > 0; m--) {
    const i = Math.floor(rand() * entries.length);
    const [name, spec] = entries[i];
    switch (Math.floor(rand() * 7)) {
      case 0:
        spec[pick(['low', 'high', 'step', 'scale', 'offset'])] = pick(NUMBERS);
        break;
      case 1:
        if (spec.type === 'categorical') spec.choices = randomChoices();
        else spec.type = pick(TYPES);
        break;
      case 2:
        entries[i] = [pick(NAMES), spec];
        break;
      case 3:
        entries.push([pick(NAMES), randomSpec(entries.map(([n]) => n))]);
        break;
      case 4:
        entries.splice(i, 1);
        break;
      case 5:
        if (Array.isArray(spec.choices)) (spec.choices as unknown[]).push(pick([...NUMBERS, ...WORDS]));
        else spec.log = !spec.log;
        break;
      default:
        entries[i] = [name, randomSpec(entries.map(([n]) => n))];
    }
    if (entries.length === 0) entries.push([pick(NAMES), randomSpec(NAMES)]);
  }
  // defineProperty: a '__proto__' name stays an own property, as JSON.parse makes it.
  const out: Record<string, unknown> = {};
  for (const [name, spec] of entries)
    Object.defineProperty(out, name, { value: spec, enumerable: true, writable: true, configurable: true });
  return out;
}

const isTyped = (e: unknown): boolean => e instanceof PlanError || e instanceof TrialConfigError;

/**
 * Whether a trial would reject one of the plan's samples (its config, or a value past the model's bounds): the
 * plan's own sampler asks a dozen trials (told made-up values, so model-based samplers fit), then 30 prior draws.
 */
function rejectsASample(plan: StudyPlan): string | null {
  const rng = new Rng(Number(args.seed));
  const study = createStudy(plan.studyOptions());
  const asked: Params[] = [];
  for (let i = 0; i < 12; i++) {
    const trial = study.ask();
    asked.push(trial.params);
    study.tell(trial, rng.random());
  }
  const space = createSpace(plan.spec.space);
  for (let i = 0; i < 30; i++) asked.push(resolveParams(space, {}, rng));
  for (const params of asked) {
    try {
      const config = plan.trialConfig(params);
      if (config.seq > MODEL.maxPositions) return `seq ${config.seq} > ${MODEL.maxPositions} positions`;
      if (config.r > MODEL.hidden) return `r ${config.r} > hidden ${MODEL.hidden}`;
    } catch (e) {
      return `${JSON.stringify(params)}: ${(e as Error).message}`;
    }
  }
  return null;
}

/** A case's outcome once the plan accepted it: silent when a trial rejects a sample, crash when sampling throws. */
function sampled(plan: StudyPlan): [Outcome, string] {
  let why: string | null;
  try {
    why = rejectsASample(plan);
  } catch (e) {
    return ['crash', `sampling: ${String((e as Error).stack)}`];
  }
  return why === null ? ['clear', 'valid'] : ['silent', why];
}

function spaceCase(space: Record<string, unknown>): [Outcome, string] {
  const input: PlanInput = {
    space: space as SpaceSpec,
    fixed: { steps: 10, seq: 64 },
    trials: 5,
    valRatio: 0.1,
    sampler: pick(SAMPLER_NAMES),
  };
  let plan: StudyPlan;
  try {
    plan = StudyPlan.create(input, { family: 'llama', trainExamples: 100, model: MODEL });
  } catch (e) {
    return isTyped(e) ? ['clear', (e as Error).message] : ['crash', String((e as Error).stack)];
  }
  return sampled(plan);
}

const TEXTS = FORM_TEXTS;

/** The quick preset's form with one to three rows changed (mode, texts, log), and sometimes the budget. */
function mutatedForm(): SearchSettings {
  const settings: SearchSettings = {
    ...defaultSettings(),
    sampler: pick(SAMPLER_NAMES),
    rows: PRESETS[pick(['quick', 'lora-basic', 'lora-full'] as const)].rows(),
  };
  for (let m = 1 + Math.floor(rand() * 3); m > 0; m--) {
    const row = settings.rows[Math.floor(rand() * settings.rows.length)];
    const info = HYPERPARAMETERS[row.name];
    const what = Math.floor(rand() * 8);
    if (what < 2) row.mode = pick(info.modes);
    else if (what < 6) row[pick(['fixed', 'low', 'high', 'choices', 'scale'] as const)] = pick(TEXTS);
    else if (what < 7) row.log = !row.log;
    else settings.seq = pick([24, 256, 2048, 4096, 8192, 3, 0]);
  }
  return settings;
}

function formCase(settings: SearchSettings): [Outcome, string] {
  let problems: ReturnType<typeof searchProblems>;
  try {
    problems = searchProblems(settings, MODEL);
  } catch (e) {
    return ['crash', String((e as Error).stack)];
  }
  const named = Object.entries(problems.byParam);
  if (named.length > 0) return ['clear', named.map(([k, v]) => `${k}: ${v}`).join('; ')];
  if (problems.general) return ['clear', problems.general];
  let plan: StudyPlan;
  try {
    plan = StudyPlan.create(
      {
        ...planInputOf(settings),
      },
      { family: 'llama', trainExamples: 100, model: MODEL },
    );
  } catch (e) {
    return ['silent', `the form found no problem, but the plan: ${(e as Error).message}`];
  }
  return sampled(plan);
}

function run(label: string, make: () => [Outcome, string]): void {
  const counts: Record<Outcome, number> = { clear: 0, crash: 0, silent: 0 };
  const shown: Record<Outcome, string[]> = { clear: [], crash: [], silent: [] };
  for (let i = 0; i < CASES; i++) {
    const [outcome, detail] = make();
    counts[outcome]++;
    if (shown[outcome].length < SHOW) shown[outcome].push(detail);
  }
  console.log(`${label}: ${CASES} → clear ${counts.clear} / crash ${counts.crash} / silent ${counts.silent}`);
  for (const o of ['crash', 'silent'] as const)
    for (const d of shown[o]) console.log(`  ${o}: ${d.slice(0, 400)}`);
}

void HYPER_NAMES;
run('search space', () => spaceCase(mutatedSpace()));
run('search form ', () => formCase(mutatedForm()));
