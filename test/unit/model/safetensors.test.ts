import { describe, expect, it } from 'vitest';
import { blobSource, bytesSource, memoryFiles } from '../../../src/engine/checkpoint/byte-source.ts';
import {
  fromFloat32,
  f32ToBf16Bits,
  toFloat16Bits,
  toFloat32,
} from '../../../src/engine/checkpoint/dtypes.ts';
import type { SafetensorsDtype } from '../../../src/engine/checkpoint/dtypes.ts';
import {
  openCheckpoint,
  openSafetensors,
  writeSafetensors,
} from '../../../src/engine/checkpoint/safetensors.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../../src/engine/gpu/half.ts';
import { randomArray } from '../../reference/random.ts';
import { buildTinyModel, tinyModelFiles } from '../../fixtures/tiny-models.ts';

/** A safetensors file with a hand-written header (and optionally a lying length prefix). */
function rawFile(header: string | object, dataBytes: number, headerLength?: number): Uint8Array {
  const json = new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + json.byteLength + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLength ?? json.byteLength), true);
  out.set(json, 8);
  return out;
}

const open = (bytes: Uint8Array, name = 'model.safetensors') => openSafetensors(bytesSource(name, bytes));

describe('writeSafetensors → openSafetensors', () => {
  for (const dtype of ['F32', 'F16', 'BF16'] as SafetensorsDtype[]) {
    it(`round-trips ${dtype} tensors, sorted, header padded to 8 bytes with spaces`, async () => {
      const a = randomArray(3 * 5, 1, 3);
      const b = randomArray(7, 2, 0.01);
      const bytes = writeSafetensors(
        { 'z.weight': { dtype, shape: [3, 5], data: a }, 'a.bias': { dtype, shape: [7], data: b } },
        { format: 'pt' },
      );
      const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
      expect(n % 8).toBe(0);
      const headerText = new TextDecoder().decode(bytes.subarray(8, 8 + n));
      expect(headerText.trimEnd().length + (n - headerText.trimEnd().length)).toBe(n);
      expect(/^ *$/.test(headerText.slice(headerText.trimEnd().length))).toBe(true);
      expect(headerText.startsWith('{"__metadata__":{"format":"pt"},"a.bias"')).toBe(true);

      const f = await openSafetensors(blobSource('model.safetensors', new Blob([bytes])));
      expect(f.metadata).toEqual({ format: 'pt' });
      expect([...f.tensors.keys()]).toEqual(['a.bias', 'z.weight']);
      const z = f.tensors.get('z.weight')!;
      expect(z).toMatchObject({ dtype, shape: [3, 5], file: 'model.safetensors' });
      const values = toFloat32(await f.source.read(z.offset, z.byteLength), dtype);
      const round = (v: number) =>
        dtype === 'F32'
          ? Math.fround(v)
          : dtype === 'F16'
            ? f16BitsToF32(f32ToF16Bits(v))
            : toFloat32(new Uint8Array(new Uint16Array([f32ToBf16Bits(v)]).buffer), 'BF16')[0];
      expect(Array.from(values)).toEqual(Array.from(a, round));
    });
  }

  it('converts bf16 and f32 to f16 bits for upload, and bf16 rounds to nearest even', () => {
    expect(f32ToBf16Bits(1)).toBe(0x3f80);
    expect(f32ToBf16Bits(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(f32ToBf16Bits(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even (up)
    expect(f32ToBf16Bits(NaN) & 0x7f80).toBe(0x7f80);
    const v = [0.5, -3.25, 1e-3, 65504];
    for (const dtype of ['BF16', 'F32'] as const) {
      const bits = toFloat16Bits(fromFloat32(v, dtype), dtype);
      expect(Array.from(bits, f16BitsToF32)).toEqual(
        Array.from(toFloat32(fromFloat32(v, dtype), dtype), (x) => f16BitsToF32(f32ToF16Bits(x))),
      );
    }
  });

  it('reads tensors at offsets unaligned for their dtype (odd F16 before F32)', async () => {
    const bytes = writeSafetensors({
      a: { dtype: 'F16', shape: [3], data: [1, 2, 3] },
      b: { dtype: 'F32', shape: [2], data: [0.25, -8] },
    });
    const f = await open(bytes);
    const b = f.tensors.get('b')!;
    expect((b.offset - f.dataOffset) % 4).toBe(2);
    expect(Array.from(toFloat32(await f.source.read(b.offset, b.byteLength), 'F32'))).toEqual([0.25, -8]);
  });

  it('tiny fixtures are deterministic from the seed', () => {
    const a = buildTinyModel({ arch: 'gpt2', dtype: 'BF16', seed: 9 });
    const b = buildTinyModel({ arch: 'gpt2', dtype: 'BF16', seed: 9 });
    const c = buildTinyModel({ arch: 'gpt2', dtype: 'BF16', seed: 10 });
    expect(a.files['model.safetensors']).toEqual(b.files['model.safetensors']);
    expect(a.files['model.safetensors']).not.toEqual(c.files['model.safetensors']);
  });

  it('streams tensors of a sharded checkpoint through its index', async () => {
    const model = buildTinyModel({ arch: 'llama', dtype: 'BF16', shards: 3 });
    const ckpt = await openCheckpoint(tinyModelFiles(model));
    expect(ckpt.files.map((f) => f.name)).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
    ]);
    expect(ckpt.tensors.size).toBe(model.tensors.size);
    let count = 0;
    for await (const { info, bytes } of ckpt.stream()) {
      expect(Array.from(toFloat32(bytes, info.dtype))).toEqual(
        Array.from(model.tensors.get(info.name)!.data),
      );
      count++;
    }
    expect(count).toBe(model.tensors.size);
  });

  it('refuses an index naming a missing shard or a tensor the shard lacks', async () => {
    const model = buildTinyModel({ arch: 'llama', dtype: 'F16', shards: 2 });
    const files = { ...model.files };
    delete files['model-00002-of-00002.safetensors'];
    await expect(openCheckpoint(memoryFiles('dir', files))).rejects.toThrow(
      "model.safetensors.index.json: shard 'model-00002-of-00002.safetensors'",
    );
    const index = JSON.parse(model.files['model.safetensors.index.json'] as string);
    index.weight_map['model.extra.weight'] = 'model-00001-of-00002.safetensors';
    await expect(
      openCheckpoint(
        memoryFiles('dir', { ...model.files, 'model.safetensors.index.json': JSON.stringify(index) }),
      ),
    ).rejects.toThrow(
      "model-00001-of-00002.safetensors: tensor 'model.extra.weight' listed in model.safetensors.index.json is missing",
    );
  });

  it('says when there is no safetensors checkpoint at all', async () => {
    await expect(openCheckpoint(memoryFiles('repo', { 'pytorch_model.bin': 'x' }))).rejects.toThrow(
      'repo: no model.safetensors or model.safetensors.index.json (found pytorch_model.bin',
    );
  });
});

describe('__metadata__ with prototype-named keys', () => {
  it('keeps them as plain entries', async () => {
    const header =
      '{"__metadata__":{"__proto__":"x","constructor":"y"},"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
    const file = await open(rawFile(header, 4));
    expect(Object.entries(file.metadata)).toEqual([
      ['__proto__', 'x'],
      ['constructor', 'y'],
    ]);
    expect(Object.getPrototypeOf(file.metadata)).toBe(Object.prototype);
  });
});

describe('openSafetensors rejects', () => {
  it('a header nested too deeply, naming the file (not a stack overflow)', async () => {
    const deep = `{"__metadata__":{"a":"b"},"x":${'['.repeat(50000)}${']'.repeat(50000)}}`;
    await expect(open(rawFile(deep, 0))).rejects.toThrow(
      'model.safetensors: header is JSON nested deeper than 64 levels',
    );
  });

  it('a dtype that names an Object.prototype member', async () => {
    for (const dtype of ['constructor', 'toString', '__proto__']) {
      const header = { w: { dtype, shape: [1], data_offsets: [0, 4] } };
      await expect(open(rawFile(header, 4))).rejects.toThrow(
        `model.safetensors: tensor 'w': unknown dtype '${dtype}'`,
      );
    }
  });

  const good = { w: { dtype: 'F32', shape: [2, 2], data_offsets: [0, 16] } };

  it('a truncated file (< 8 bytes)', async () => {
    await expect(open(new Uint8Array(5))).rejects.toThrow('model.safetensors: truncated: 5 bytes');
  });

  it('a header length past the end of the file', async () => {
    await expect(open(rawFile(good, 16, 10_000))).rejects.toThrow(
      'model.safetensors: header length 10000 runs past the end of the file',
    );
  });

  it('a truncated data region (tensor past the end)', async () => {
    const full = writeSafetensors({ w: { dtype: 'F32', shape: [4], data: [1, 2, 3, 4] } });
    await expect(open(full.subarray(0, full.byteLength - 3), 'cut.safetensors')).rejects.toThrow(
      "cut.safetensors: tensor 'w': data_offsets [0, 16] run past the end of the data region (13 bytes)",
    );
  });

  it('invalid JSON', async () => {
    await expect(open(rawFile('{"w": {', 0))).rejects.toThrow('model.safetensors: header is not valid JSON');
  });

  it('a bad __metadata__', async () => {
    await expect(open(rawFile({ __metadata__: { n: 3 } }, 0))).rejects.toThrow(
      'model.safetensors: __metadata__.n must be a string',
    );
  });

  it('overlapping ranges', async () => {
    const header = {
      a: { dtype: 'F32', shape: [4], data_offsets: [0, 16] },
      b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] },
    };
    await expect(open(rawFile(header, 16))).rejects.toThrow(
      "model.safetensors: tensors 'a' [0, 16) and 'b' [8, 16) overlap",
    );
  });

  it('shape × dtype size ≠ range length', async () => {
    const header = { 'model.norm.weight': { dtype: 'BF16', shape: [4], data_offsets: [0, 16] } };
    await expect(open(rawFile(header, 16))).rejects.toThrow(
      "model.safetensors: tensor 'model.norm.weight': shape [4] × 2 bytes (BF16) = 8 bytes, but data_offsets [0, 16] hold 16",
    );
  });

  it('unknown and unsupported dtypes, naming the tensor', async () => {
    const unknown = { w: { dtype: 'F17', shape: [1], data_offsets: [0, 4] } };
    await expect(open(rawFile(unknown, 4))).rejects.toThrow(
      "model.safetensors: tensor 'w': unknown dtype 'F17'",
    );
    const int8 = { q: { dtype: 'I8', shape: [4], data_offsets: [0, 4] } };
    await expect(open(rawFile(int8, 4))).rejects.toThrow(
      "model.safetensors: tensor 'q': dtype I8 is not supported (supported: F32, F16, BF16)",
    );
  });

  it('malformed entries', async () => {
    await expect(
      open(rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, 4)),
    ).rejects.toThrow("tensor 'w': shape must be a list of non-negative integers");
    await expect(open(rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, 4))).rejects.toThrow(
      "tensor 'w': data_offsets must be [begin, end]",
    );
    await expect(open(rawFile('[1, 2]', 0))).rejects.toThrow(
      'model.safetensors: header is not a JSON object',
    );
  });

  it('accepts an uncovered gap in the data region', async () => {
    const header = { a: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } };
    const f = await open(rawFile(header, 16));
    expect(f.tensors.get('a')!.byteLength).toBe(4);
  });
});
