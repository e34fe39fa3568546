import { describe, expect, it } from 'vitest';
import {
  FileFormatError,
  MAX_JSON_DEPTH,
  decodeUtf8,
  firstInvalidUtf8,
  jsonDepth,
  ownValue,
  parseJson,
} from '../../src/engine/json.ts';

describe('decodeUtf8', () => {
  it('decodes valid UTF-8 and refuses invalid bytes naming the file and the offset', () => {
    expect(decodeUtf8(new TextEncoder().encode('héllo 日本 🙂'), 'a.txt')).toBe('héllo 日本 🙂');
    const bad = new Uint8Array([0x61, 0x62, 0xc3, 0xa9, 0xff, 0x63]);
    expect(() => decodeUtf8(bad, 'data/a.txt')).toThrow(
      new FileFormatError('data/a.txt', 'not valid UTF-8 (first bad byte at offset 4)'),
    );
  });

  it('finds the first invalid sequence as the strict decoder does', () => {
    const cases: [number[], number][] = [
      [[0x41], 1],
      [[0xc0, 0x80], 0], // overlong
      [[0x41, 0xed, 0xa0, 0x80], 1], // surrogate
      [[0xe2, 0x82], 0], // truncated
      [[0xf4, 0x90, 0x80, 0x80], 0], // past U+10FFFF
      [[0xf0, 0x9f, 0x99, 0x82, 0x80], 4], // stray continuation
    ];
    for (const [bytes, offset] of cases) expect(firstInvalidUtf8(new Uint8Array(bytes))).toBe(offset);
  });
});

describe('parseJson', () => {
  it('parses JSON at the depth limit and refuses one level deeper, naming the file', () => {
    const nested = (d: number) => '['.repeat(d) + ']'.repeat(d);
    expect(parseJson(nested(MAX_JSON_DEPTH), 'x.json')).toBeDefined();
    expect(() => parseJson(nested(MAX_JSON_DEPTH + 1), 'x.json')).toThrow(
      new FileFormatError('x.json', `JSON nested deeper than ${MAX_JSON_DEPTH} levels`),
    );
    expect(() => parseJson(nested(1_000_000), 'x.json')).toThrow(FileFormatError);
  });

  it('does not count brackets inside strings', () => {
    expect(jsonDepth('{"a":"[[[[\\"{{{{"}')).toBe(1);
    expect(parseJson(`{"a":"${'['.repeat(1000)}"}`, 'x.json')).toEqual({ a: '['.repeat(1000) });
  });

  it('refuses malformed JSON and non-UTF-8 bytes naming the file', () => {
    expect(() => parseJson('{"a":', 'c.json')).toThrow(/^c\.json: not valid JSON/);
    expect(() => parseJson(new Uint8Array([0x7b, 0xfe, 0x7d]), 'c.json')).toThrow(
      'c.json: not valid UTF-8 (first bad byte at offset 1)',
    );
  });
});

describe('ownValue', () => {
  it('finds own properties only', () => {
    const table: Record<string, number> = { a: 1 };
    expect(ownValue(table, 'a')).toBe(1);
    for (const key of ['constructor', '__proto__', 'toString']) expect(ownValue(table, key)).toBeUndefined();
  });
});
