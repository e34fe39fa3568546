// A paused trial's trainer checkpoint as one file: safetensors with the LoRA parameters and optimizer moments
// as F32 tensors, and in `__metadata__` everything else a trial needs to continue on the same trajectory
// (its step, the data iterator's position, the loss scaler, the optimizer's step words) plus a checksum of the
// data region. The page keeps these bytes in IndexedDB, the CLI in <out>/checkpoints/; both read them back
// through `decodeTrialCheckpoint`, which refuses a truncated, corrupt or foreign file naming the field.
import { FileFormatError, parseJson } from '../json.ts';
import type { BatchPosition } from '../train/data.ts';
import type { LossScalerState } from '../train/loss-scaler.ts';
import type { TrainerCheckpoint } from '../train/trainer.ts';
import { bytesSource } from './byte-source.ts';
import { openSafetensors, writeSafetensors } from './safetensors.ts';

export const TRIAL_CHECKPOINT_FORMAT = 'tunelab-trial-checkpoint';
export const TRIAL_CHECKPOINT_VERSION = '1';

/** The file name a trial's checkpoint is kept under (in the page's files store and the CLI's folder). */
export const trialCheckpointName = (trial: number): string => `trial-${trial}.checkpoint.safetensors`;

/** FNV-1a (32 bit): cheap, and any flipped or lost byte changes it. Not a defence against tampering. */
function fnv1a(bytes: Uint8Array): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) {
    h ^= bytes[i];
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

export function encodeTrialCheckpoint(trial: number, c: TrainerCheckpoint): Uint8Array<ArrayBuffer> {
  const tensors: Parameters<typeof writeSafetensors>[0] = {
    params: { dtype: 'F32', shape: [c.params.length], data: bytesOf(c.params) },
  };
  c.moments.forEach((m, i) => {
    tensors[`moment.${i}`] = { dtype: 'F32', shape: [m.length], data: bytesOf(m) };
  });
  const metadata: Record<string, string> = {
    format: TRIAL_CHECKPOINT_FORMAT,
    version: TRIAL_CHECKPOINT_VERSION,
    trial: String(trial),
    step: String(c.step),
    moments: String(c.moments.length),
    position: JSON.stringify(c.position),
    scaler: JSON.stringify(c.scaler),
    optimizer_step: JSON.stringify([...c.optimizerStep]),
    checksum: '',
  };
  // The checksum covers the data region, which the header's length does not change: write, hash, rewrite.
  const draft = writeSafetensors(tensors, { ...metadata, checksum: '00000000' });
  const dataStart = 8 + Number(new DataView(draft.buffer).getBigUint64(0, true));
  return writeSafetensors(tensors, { ...metadata, checksum: fnv1a(draft.subarray(dataStart)) });
}

const bytesOf = (a: Float32Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

/**
 * The checkpoint in `bytes`, checked whole: its structure (safetensors), the checksum of its data, every
 * metadata field, and that it belongs to trial `trial`. Throws a FileFormatError naming `file` and the field.
 */
export async function decodeTrialCheckpoint(
  bytes: Uint8Array,
  file: string,
  trial: number,
): Promise<TrainerCheckpoint> {
  const fail = (why: string): never => {
    throw new FileFormatError(file, why);
  };
  const st = await openSafetensors(bytesSource(file, bytes));
  const meta = st.metadata;
  if (meta.format !== TRIAL_CHECKPOINT_FORMAT)
    fail(`__metadata__.format: expected '${TRIAL_CHECKPOINT_FORMAT}', got ${JSON.stringify(meta.format)}`);
  if (meta.version !== TRIAL_CHECKPOINT_VERSION)
    fail(`__metadata__.version: expected '${TRIAL_CHECKPOINT_VERSION}', got ${JSON.stringify(meta.version)}`);
  const sum = fnv1a(bytes.subarray(st.dataOffset));
  if (meta.checksum !== sum)
    fail(
      `the data does not match __metadata__.checksum (${meta.checksum} stored, ${sum} read): it is corrupt`,
    );
  const whole = (field: string, min = 0): number => {
    const v = Number(meta[field]);
    if (meta[field] === undefined || !/^\d+$/.test(meta[field]) || !Number.isSafeInteger(v) || v < min)
      fail(`__metadata__.${field}: expected a whole number ≥ ${min}, got ${JSON.stringify(meta[field])}`);
    return v;
  };
  if (whole('trial') !== trial) fail(`__metadata__.trial: expected trial ${trial}, got ${meta.trial}`);
  const step = whole('step');
  const moments = whole('moments');
  const json = (field: string): unknown => {
    try {
      return parseJson(meta[field] ?? '', `${file} __metadata__.${field}`);
    } catch {
      return fail(`__metadata__.${field}: expected JSON, got ${JSON.stringify(meta[field])}`);
    }
  };
  const position = checkPosition(json('position'), fail);
  const scaler = checkScaler(json('scaler'), fail);
  const words = json('optimizer_step');
  if (!Array.isArray(words) || !words.every((w) => Number.isInteger(w) && w >= 0 && w < 2 ** 32))
    fail(`__metadata__.optimizer_step: expected a list of 32-bit words, got ${meta.optimizer_step}`);
  const tensor = async (name: string): Promise<Float32Array> => {
    const info = st.tensors.get(name) ?? fail(`tensor '${name}' is missing`);
    if (info.dtype !== 'F32' || info.shape.length !== 1)
      fail(`tensor '${name}': expected a 1-D F32 tensor, got ${info.dtype} ${JSON.stringify(info.shape)}`);
    const raw = await st.source.read(info.offset, info.byteLength);
    return new Float32Array(raw.slice().buffer); // a copy: aligned, and owned by the checkpoint
  };
  const params = await tensor('params');
  const momentArrays: Float32Array[] = [];
  for (let i = 0; i < moments; i++) {
    const m = await tensor(`moment.${i}`);
    if (m.length !== params.length)
      fail(`tensor 'moment.${i}': ${m.length} values, expected ${params.length} (as 'params')`);
    momentArrays.push(m);
  }
  if (st.tensors.size !== 1 + moments) fail(`expected ${1 + moments} tensors, found ${st.tensors.size}`);
  return {
    step,
    params,
    moments: momentArrays,
    optimizerStep: Uint32Array.from(words as number[]),
    position,
    scaler,
  };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function checkPosition(v: unknown, fail: (why: string) => never): BatchPosition {
  if (!isObject(v)) return fail(`__metadata__.position: expected {seed, epoch, index, step}`);
  for (const k of ['seed', 'epoch', 'index', 'step'] as const) {
    const x = v[k];
    if (typeof x !== 'number' || !Number.isSafeInteger(x) || (k !== 'seed' && x < 0))
      fail(`__metadata__.position.${k}: expected a whole number, got ${JSON.stringify(x)}`);
  }
  return { seed: v.seed, epoch: v.epoch, index: v.index, step: v.step } as BatchPosition;
}

function checkScaler(v: unknown, fail: (why: string) => never): LossScalerState | null {
  if (v === null) return null;
  if (!isObject(v)) return fail(`__metadata__.scaler: expected null or {scale, cleanSteps, ...}`);
  for (const k of ['scale', 'cleanSteps', 'skippedSteps', 'totalSteps'] as const) {
    const x = v[k];
    if (typeof x !== 'number' || !Number.isFinite(x) || x < 0 || (k === 'scale' && x === 0))
      fail(
        `__metadata__.scaler.${k}: expected a finite number ≥ 0 (> 0 for scale), got ${JSON.stringify(x)}`,
      );
  }
  return v as unknown as LossScalerState;
}
