// Property tests (fast-check, fixed seeds): a search space, however malformed, is refused with a typed error
// naming what is wrong, or every value it can give is one a trial accepts; any string survives the YAML writer,
// the Python literal encoder and the CSV writer (no formula start).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { pyString } from '../../../src/engine/export/py.ts';
import { csvField } from '../../../src/engine/export/trials-csv.ts';
import { toYaml } from '../../../src/engine/export/yaml.ts';
import { Rng } from '../../../src/engine/rng.ts';
import { createStudy, SAMPLER_NAMES, type SamplerName } from '../../../src/engine/search/index.ts';
import { createSpace, resolveParams, type SpaceSpec } from '../../../src/engine/search/space.ts';
import { parseCsv } from '../../../src/engine/train/csv.ts';
import { PlanError, StudyPlan } from '../../../src/engine/tune/plan.ts';
import {
  defaultSettings,
  HYPERPARAMETERS,
  PRESETS,
  hasProblems,
  searchProblems,
  studyPlan,
  type ParamRow,
  type SearchSettings,
} from '../../../src/ui/lib/search-config.ts';
import { pyYamlAvailable, python3Available, runPython } from '../export/python.ts';
import { FORM_TEXTS, PARAM_NAMES } from '../../fixtures/search-inputs.ts';

const MODEL = { family: 'llama' as const, maxPositions: 2048, hidden: 576 };

/** Every value a plan's space gives (its sampler's first asks, then prior draws) is one a trial accepts. */
function expectTrialsAccept(plan: StudyPlan): void {
  const study = createStudy(plan.studyOptions());
  const rng = new Rng(5);
  const params = [];
  for (let i = 0; i < 6; i++) {
    const trial = study.ask();
    params.push(trial.params);
    study.tell(trial, rng.random());
  }
  const space = createSpace(plan.spec.space);
  for (let i = 0; i < 20; i++) params.push(resolveParams(space, {}, rng));
  for (const p of params) {
    const config = plan.trialConfig(p);
    expect(config.seq).toBeLessThanOrEqual(MODEL.maxPositions);
    expect(config.r).toBeLessThanOrEqual(MODEL.hidden);
  }
}

/** A thrown PlanError names what is wrong: a parameter of the space, or a field of the plan. */
function expectNamedPlanError(e: unknown): void {
  expect(e).toBeInstanceOf(PlanError);
  const error = e as PlanError;
  if (error.param !== undefined) expect(error.message).toContain(`'${error.param}'`);
  else expect(error.field).not.toBe('');
}

const NAMES = PARAM_NAMES;
const number = fc.oneof(
  fc.double(),
  fc.constantFrom(0, 1, 2, 8, 16, -1, 0.5, 0.9999, 1e-5, 1e308, -1e308, 5e-324, 4096, NaN, Infinity),
  fc.integer({ min: -10, max: 3000 }),
);
const value = fc.oneof(
  number,
  fc.constantFrom(
    'cosine',
    'cosin',
    'linear',
    'all-linear',
    'attention',
    'q_proj',
    'adamw',
    '',
    true,
    false,
    null,
  ),
);
const numeric = fc.record(
  {
    type: fc.constantFrom('float', 'int'),
    low: number,
    high: number,
    log: fc.boolean(),
    step: number,
  },
  { requiredKeys: ['type', 'low', 'high'] },
);
const spec = fc.oneof(
  numeric,
  fc.record({ type: fc.constant('categorical'), choices: fc.array(value, { maxLength: 4 }) }),
  fc.record({ type: fc.constant('derived'), from: fc.constantFrom(...NAMES), scale: number }),
  fc.record({ type: value, low: value, high: value }),
);
/** A space of random entries, '__proto__' kept an own property as JSON.parse keeps it. */
const space = fc.array(fc.tuple(fc.constantFrom(...NAMES), spec), { maxLength: 4 }).map((entries) => {
  const out: Record<string, unknown> = {};
  for (const [name, s] of entries)
    Object.defineProperty(out, name, { value: s, enumerable: true, writable: true, configurable: true });
  return out;
});

const double = (min: number, max: number) => fc.double({ min, max, noNaN: true });
/** Spaces inside the rules (and the model's bounds): most are accepted, so their samples get checked. */
const validSpace = fc.record(
  {
    lr: fc
      .tuple(double(1e-6, 1e-3), double(1.1, 100), fc.boolean())
      .map(([low, k, log]) => ({ type: 'float', low, high: low * k, log })),
    r: fc
      .uniqueArray(fc.integer({ min: 1, max: 576 }), { minLength: 1, maxLength: 4 })
      .map((choices) => ({ type: 'categorical', choices })),
    lora_alpha: double(0.25, 4).map((scale) => ({ type: 'derived', from: 'r', scale })),
    lora_dropout: fc
      .tuple(double(0, 0.5), double(0.01, 0.49), fc.option(double(0.001, 0.01), { nil: undefined }))
      .map(([low, width, step]) => ({ type: 'float', low, high: low + width, ...(step ? { step } : {}) })),
    seq_len: fc
      .tuple(fc.integer({ min: 2, max: 1000 }), fc.integer({ min: 1, max: 1048 }))
      .map(([low, width]) => ({ type: 'int', low, high: low + width })),
    schedule: fc
      .subarray(['constant', 'linear', 'cosine'], { minLength: 1 })
      .map((choices) => ({ type: 'categorical', choices })),
  },
  { requiredKeys: [] },
);
/** A valid space with one of its values replaced (wrong type, NaN, ∞, 1e308, negative, empty choices ...). */
const mutatedSpace = fc
  .tuple(
    validSpace,
    fc.nat(),
    fc.constantFrom('low', 'high', 'step', 'scale', 'choices', 'type', 'log', 'from'),
    value,
  )
  .map(([valid, index, key, v]) => {
    const entries = Object.entries(valid as Record<string, Record<string, unknown>>);
    if (entries.length > 0)
      entries[index % entries.length][1][key] = key === 'choices' && v !== null ? [] : v;
    return Object.fromEntries(entries);
  });

describe('search spaces (property)', () => {
  it('a random space is refused naming what is wrong, or every sample trains', () => {
    fc.assert(
      fc.property(
        fc.oneof(space, validSpace, mutatedSpace),
        fc.constantFrom<SamplerName>(...SAMPLER_NAMES),
        (s, sampler) => {
          let plan: StudyPlan;
          try {
            plan = StudyPlan.create(
              { space: s as SpaceSpec, fixed: { steps: 10 }, trials: 3, valRatio: 0.1, sampler },
              { family: 'llama', trainExamples: 50, model: MODEL },
            );
          } catch (e) {
            expectNamedPlanError(e);
            return;
          }
          expectTrialsAccept(plan);
        },
      ),
      { seed: 20251130, numRuns: 400 },
    );
  });

  const text = fc.constantFrom(...FORM_TEXTS);
  const rowChange = fc.record({
    row: fc.nat({ max: 10 }),
    mode: fc.constantFrom('fixed', 'range', 'choices', 'derived'),
    field: fc.constantFrom('fixed', 'low', 'high', 'choices', 'scale'),
    text,
    log: fc.boolean(),
  });

  it('a random form is refused at a row or in its message, or every sample trains', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('quick', 'lora-basic', 'lora-full'),
        fc.array(rowChange, { maxLength: 3 }),
        fc.constantFrom(24, 256, 2048, 4096, 3),
        (presetName, changes, seq) => {
          const rows: ParamRow[] = PRESETS[presetName as keyof typeof PRESETS].rows();
          for (const c of changes) {
            const row = rows[c.row];
            if (HYPERPARAMETERS[row.name].modes.includes(c.mode)) row.mode = c.mode;
            row[c.field] = c.text;
            row.log = c.log;
          }
          const settings: SearchSettings = { ...defaultSettings(), rows, seq };
          const problems = searchProblems(settings, MODEL);
          if (hasProblems(problems)) return;
          expectTrialsAccept(studyPlan(settings, 'llama', MODEL));
        },
      ),
      { seed: 7, numRuns: 300 },
    );
  });
});

/** Any string: full Unicode, single UTF-16 code units (lone surrogates), and the troublemakers. */
const anyString = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), maxLength: 12 }),
  fc.string({
    unit: fc.constantFrom(
      '\0',
      '\x85',
      '\x9f',
      '\x7f',
      '\u2028',
      '\ufeff',
      '\ud800',
      '"',
      "'",
      '\\',
      '\n',
      '\r',
      '\t',
      'a',
      ' ',
      '#',
      ':',
      '-',
      '=',
    ),
    maxLength: 12,
  }),
);

describe('strings through the exports (property)', () => {
  it('YAML: any string, as a value or a key, parses back the same (YAML 1.1 and 1.2)', () => {
    fc.assert(
      fc.property(anyString, (s) => {
        const doc = { value: s, list: [s], [`k${s}`]: 1 };
        expect(parseYaml(toYaml(doc), { version: '1.1' })).toEqual(doc);
        expect(parseYaml(toYaml(doc))).toEqual(doc);
      }),
      { seed: 11, numRuns: 500 },
    );
  });

  const sample = fc.sample(anyString, { seed: 12, numRuns: 300 });

  it.skipIf(!pyYamlAvailable)('YAML: PyYAML reads any string back (one batch)', () => {
    const docs = sample.map((s) => toYaml({ s }));
    const out = runPython(
      'import json, yaml\n' +
        // A JSON string literal is a valid Python one (kept apart from the encoder under test).
        `docs = json.loads(${JSON.stringify(JSON.stringify(docs))})\n` +
        'print(json.dumps([yaml.safe_load(d)["s"] for d in docs]))\n',
    );
    expect(JSON.parse(out)).toEqual(sample);
  });

  it.skipIf(!python3Available)('Python: any string’s literal evaluates back to it (one batch)', () => {
    const out = runPython(`import json\nprint(json.dumps([${sample.map(pyString).join(',\n')}]))\n`);
    expect(JSON.parse(out)).toEqual(sample);
  });

  it('CSV: no cell starts with a formula character, and the text reads back (behind a quote when escaped)', () => {
    fc.assert(
      fc.property(anyString, (s) => {
        const [cell] = parseCsv(`${csvField(s)},end\r\n`)[0].fields;
        expect(cell).toMatch(/^(?![=+\-@\t\r])/);
        expect(cell === s || cell === `'${s}`).toBe(true);
      }),
      { seed: 13, numRuns: 500 },
    );
  });
});
