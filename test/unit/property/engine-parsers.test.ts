// Property tests of the engine's parsers (safetensors header, config.json, datasets, PEFT import, tokenizer
// files): a valid input is accepted as sound; a mutated one (truncated, bit-flipped, invalid UTF-8, a field
// of the wrong type, huge/negative/non-finite numbers, deep nesting, prototype-named keys) gives the parser's
// typed error naming the file, or a sound result — never a bare TypeError/RangeError/SyntaxError, a stack
// overflow, or a silently wrong result. The targets and what "sound" means for each are in mutations.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FileFormatError } from '../../../src/engine/json.ts';
import { PeftImportError } from '../../../src/engine/lora/peft.ts';
import { Rng } from '../../../src/engine/rng.ts';
import { DatasetError } from '../../../src/engine/train/data.ts';
import {
  INVALID_UTF8,
  PROTO_KEYS,
  TARGETS,
  WEIRD_VALUES,
  applyMutation,
  classify,
  type ByteEdit,
  type JsonEdit,
  type Mutation,
} from './mutations.ts';

const SEED = 2026;

const deep = (depth: number): string => 'RAW:' + '['.repeat(depth) + ']'.repeat(depth);
const nonFinite = (d: number): number | string =>
  Number.isFinite(d) ? d : `RAW:${Number.isNaN(d) ? 'NaN' : d > 0 ? '1e999' : '-1e999'}`;

/** Values a field may be replaced with: the known troublemakers, any JSON, any double, deep nesting. */
const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(...WEIRD_VALUES),
  fc.jsonValue({ maxDepth: 3 }),
  fc.double().map(nonFinite),
  fc.integer({ min: 65, max: 3000 }).map(deep),
);

const byteEdit: fc.Arbitrary<ByteEdit> = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('flip' as const),
    flips: fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 7 })), { minLength: 1, maxLength: 4 }),
  }),
  fc.record({
    kind: fc.constant('insert' as const),
    at: fc.nat(),
    bytes: fc.oneof(
      fc.constantFrom(...INVALID_UTF8),
      fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 4 }),
    ),
  }),
);

const jsonEdit: fc.Arbitrary<JsonEdit> = fc.oneof(
  fc.record({
    kind: fc.constant('protoKey' as const),
    slot: fc.nat(),
    key: fc.constantFrom(...PROTO_KEYS),
    value: weirdValue,
  }),
  fc.record({ kind: fc.constant('delete' as const), slot: fc.nat() }),
  fc.record({ kind: fc.constant('replace' as const), slot: fc.nat(), value: weirdValue }),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('special' as const), seed: fc.integer() }),
  fc.record({ kind: fc.constant('bytes' as const), file: fc.nat(), edit: byteEdit }),
  fc.record({ kind: fc.constant('json' as const), file: fc.nat(), edit: jsonEdit }),
);

/** The typed error each parser refuses with. */
const TYPED: Record<string, new (...args: never[]) => Error> = {
  safetensors: FileFormatError,
  'hf-config': FileFormatError,
  dataset: DatasetError,
  'peft-import': PeftImportError,
  tokenizer: FileFormatError,
};

describe.each(TARGETS.map((t) => [t.name, t] as const))('%s', (name, target) => {
  it('accepts every valid input as sound', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer(), async (seed) => {
        const result = await classify(target, target.valid(new Rng('valid', seed)));
        expect(result.detail).toBe('');
        expect(result.outcome).toBe('ok');
      }),
      { seed: SEED, numRuns: 25 },
    );
  });

  it('refuses a mutated input with its typed error naming the file, or accepts it as sound', async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer(), mutation, async (seed, m) => {
        const c = applyMutation(target, target.valid(new Rng('valid', seed)), m);
        const result = await classify(target, c);
        // The detail first, so a failure shows the message (or what was silently wrong).
        expect(result.outcome === 'crash' || result.outcome === 'silent' ? result.detail : '').toBe('');
        if (result.outcome === 'clear') expect(result.error).toBeInstanceOf(TYPED[name]);
      }),
      { seed: SEED, numRuns: 200 },
    );
  });
});
