// The paused trial's checkpoint file: it round-trips exactly, and a truncated, corrupt or foreign one is refused
// with a FileFormatError that names the file and the field (the caller then restarts the trial from step 0).
import { describe, expect, it } from 'vitest';
import {
  decodeTrialCheckpoint,
  encodeTrialCheckpoint,
} from '../../../src/engine/checkpoint/trial-checkpoint.ts';
import { writeSafetensors } from '../../../src/engine/checkpoint/safetensors.ts';
import { FileFormatError } from '../../../src/engine/json.ts';
import { Rng } from '../../../src/engine/rng.ts';
import type { TrainerCheckpoint } from '../../../src/engine/train/trainer.ts';

function randomCheckpoint(n: number, moments: number, seed: number): TrainerCheckpoint {
  const rng = new Rng(seed, 'checkpoint-test');
  const values = () => Float32Array.from({ length: n }, () => rng.normal());
  return {
    step: 37,
    params: values(),
    moments: Array.from({ length: moments }, values),
    optimizerStep: Uint32Array.from([37, 0xffffffff, 5, 0]),
    position: { seed: 11, epoch: 2, index: 13, step: 37 },
    scaler: { scale: 16384, cleanSteps: 12, skippedSteps: 3, totalSteps: 37 },
  };
}

const FILE = 'trial-3.checkpoint.safetensors';

async function refusal(bytes: Uint8Array, trial = 3): Promise<string> {
  try {
    await decodeTrialCheckpoint(bytes, FILE, trial);
  } catch (e) {
    expect(e).toBeInstanceOf(FileFormatError);
    return (e as Error).message;
  }
  throw new Error('the checkpoint was accepted');
}

/** Rewrites the metadata of an encoded checkpoint (checksum kept, so only the changed field is wrong). */
function withMetadata(c: TrainerCheckpoint, patch: Record<string, string>): Uint8Array {
  const good = encodeTrialCheckpoint(3, c);
  const headerLength = Number(new DataView(good.buffer).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(good.subarray(8, 8 + headerLength))) as Record<
    string,
    { data_offsets: [number, number] } & Record<string, unknown>
  >;
  const meta = { ...(header.__metadata__ as unknown as Record<string, string>), ...patch };
  const data = good.subarray(8 + headerLength);
  const tensors = Object.fromEntries(
    Object.entries(header)
      .filter(([k]) => k !== '__metadata__')
      .map(([k, t]) => [
        k,
        {
          dtype: 'F32' as const,
          shape: t.shape as number[],
          data: data.subarray(t.data_offsets[0], t.data_offsets[1]),
        },
      ]),
  );
  return writeSafetensors(tensors, meta);
}

describe('trial checkpoint file', () => {
  it('round-trips every field bit for bit (f32 moments of AdamW, and SGD with one moment, no scaler)', async () => {
    for (const [n, moments, scaler] of [
      [1001, 2, true],
      [7, 1, false],
    ] as const) {
      const c = { ...randomCheckpoint(n, moments, n), ...(scaler ? {} : { scaler: null }) };
      const back = await decodeTrialCheckpoint(encodeTrialCheckpoint(3, c), FILE, 3);
      expect(back).toEqual(c);
      expect(Buffer.from(back.params.buffer).equals(Buffer.from(c.params.buffer))).toBe(true);
    }
  });

  it('refuses a file cut short anywhere: in the length, the header or the data', async () => {
    const bytes = encodeTrialCheckpoint(3, randomCheckpoint(300, 2, 1));
    expect(await refusal(bytes.subarray(0, 5))).toMatch(/^trial-3\.checkpoint\.safetensors: truncated/);
    expect(await refusal(bytes.subarray(0, 100))).toMatch(/header length \d+ runs past the end/);
    expect(await refusal(bytes.subarray(0, bytes.length - 1))).toMatch(
      /tensor '(params|moment\.\d)': data_offsets .* run past the end/,
    );
  });

  it('refuses a flipped byte in the data and bytes appended after it, by the checksum', async () => {
    const bytes = encodeTrialCheckpoint(3, randomCheckpoint(300, 2, 2));
    const flipped = bytes.slice();
    flipped[flipped.length - 500] ^= 0x10;
    expect(await refusal(flipped)).toMatch(/does not match __metadata__\.checksum .*: it is corrupt$/);
    const longer = new Uint8Array(bytes.length + 4);
    longer.set(bytes);
    expect(await refusal(longer)).toMatch(/it is corrupt$/);
  });

  it("refuses another trial's checkpoint, another format, and each bad metadata field by name", async () => {
    const c = randomCheckpoint(50, 2, 3);
    expect(await refusal(encodeTrialCheckpoint(4, c))).toMatch(
      /__metadata__\.trial: expected trial 3, got 4/,
    );
    expect(await refusal(withMetadata(c, { format: 'peft' }))).toMatch(/__metadata__\.format: expected/);
    expect(await refusal(withMetadata(c, { version: '9' }))).toMatch(/__metadata__\.version: expected '1'/);
    expect(await refusal(withMetadata(c, { step: '-1' }))).toMatch(/__metadata__\.step: expected a whole/);
    expect(await refusal(withMetadata(c, { moments: '3' }))).toMatch(/tensor 'moment\.2' is missing/);
    expect(await refusal(withMetadata(c, { moments: '1' }))).toMatch(/expected 2 tensors, found 3/);
    expect(await refusal(withMetadata(c, { position: '{"seed":1}' }))).toMatch(
      /__metadata__\.position\.epoch: expected a whole number, got undefined/,
    );
    expect(await refusal(withMetadata(c, { position: '{' }))).toMatch(
      /__metadata__\.position: expected JSON/,
    );
    expect(await refusal(withMetadata(c, { scaler: '{"scale":0}' }))).toMatch(/__metadata__\.scaler\.scale/);
    expect(await refusal(withMetadata(c, { optimizer_step: '[1.5]' }))).toMatch(
      /__metadata__\.optimizer_step: expected a list of 32-bit words/,
    );
  });
});
