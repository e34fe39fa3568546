// Studies in IndexedDB: metadata, the study's event log appended line by line as events happen, and files
// (the dataset text needed to resume, the best adapter). A reload rebuilds the study from its log. Also the
// kernel choices autotuned on each GPU adapter (version 2), so an adapter is tuned once.
import { openDB, type DBSchema, type IDBPDatabase } from 'idb';
import type { TuningRecord } from '../../engine/gpu/tuning.ts';
import type { StudyEvent } from '../../engine/search/index.ts';
import type { SearchSettings } from './search-config.ts';

export type ModelRef =
  | { kind: 'demo'; label: string }
  | { kind: 'hub'; label: string; repo: string; revision: string }
  | { kind: 'local'; label: string };

/** How exports and adapters name the base model: the Hub repo id, else the label. */
export const modelId = (ref: ModelRef): string => (ref.kind === 'hub' ? ref.repo : ref.label);

export type StudyStatus = 'running' | 'paused' | 'finished' | 'stopped';

export interface StudyMeta {
  id: string;
  name: string;
  created: number;
  updated: number;
  status: StudyStatus;
  model: ModelRef;
  dataFile: string;
  settings: SearchSettings;
  trials: number;
  bestValue: number | null;
  bestTrial: number | null;
}

interface Schema extends DBSchema {
  studies: { key: string; value: StudyMeta };
  events: { key: number; value: { study: string; event: StudyEvent }; indexes: { study: string } };
  files: {
    key: [string, string];
    value: { study: string; name: string; data: string | Uint8Array<ArrayBuffer> };
  };
  /** Keyed by the adapter (KernelTuning.adapterKey). */
  tuning: { key: string; value: TuningRecord };
}

/** 1: studies, events, files. 2: + tuning. Each upgrade step only adds, so stored studies survive it. */
export const DB_VERSION = 2;

let dbPromise: Promise<IDBPDatabase<Schema>> | null = null;

function db(): Promise<IDBPDatabase<Schema>> {
  dbPromise ??= openDB<Schema>('tunelab', DB_VERSION, {
    upgrade(d, oldVersion) {
      if (oldVersion < 1) {
        d.createObjectStore('studies', { keyPath: 'id' });
        d.createObjectStore('events', { autoIncrement: true }).createIndex('study', 'study');
        d.createObjectStore('files', { keyPath: ['study', 'name'] });
      }
      if (oldVersion < 2) d.createObjectStore('tuning', { keyPath: 'adapter' });
    },
  });
  return dbPromise;
}

export async function listStudies(): Promise<StudyMeta[]> {
  const all = await (await db()).getAll('studies');
  return all.sort((a, b) => b.updated - a.updated);
}

export async function putStudy(meta: StudyMeta): Promise<void> {
  await (await db()).put('studies', $snapshotless(meta));
}

export async function appendEvent(study: string, event: StudyEvent): Promise<void> {
  await (await db()).add('events', { study, event });
}

/** The log in append order (auto-increment keys are monotonic). */
export async function readEvents(study: string): Promise<StudyEvent[]> {
  const rows = await (await db()).getAllFromIndex('events', 'study', study);
  return rows.map((r) => r.event);
}

export async function putFile(
  study: string,
  name: string,
  data: string | Uint8Array<ArrayBuffer>,
): Promise<void> {
  await (await db()).put('files', { study, name, data });
}

export async function getFile(
  study: string,
  name: string,
): Promise<string | Uint8Array<ArrayBuffer> | undefined> {
  return (await (await db()).get('files', [study, name]))?.data;
}

export async function deleteStudy(id: string): Promise<void> {
  const d = await db();
  const tx = d.transaction(['studies', 'events', 'files'], 'readwrite');
  await tx.objectStore('studies').delete(id);
  for await (const cursor of tx.objectStore('events').index('study').iterate(id)) await cursor.delete();
  for await (const cursor of tx.objectStore('files').iterate(IDBKeyRange.bound([id, ''], [id, '\uffff'])))
    await cursor.delete();
  await tx.done;
}

/** The kernel choices stored for an adapter, if any (KernelTuning.load checks the version). */
export async function getTuning(adapter: string): Promise<TuningRecord | undefined> {
  return (await db()).get('tuning', adapter);
}

export async function putTuning(record: TuningRecord): Promise<void> {
  await (await db()).put('tuning', $snapshotless(record));
}

/** A structured-clone-safe deep copy (Svelte state proxies cannot be stored as they are). */
function $snapshotless<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

export function newStudyId(): string {
  return `study-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
}
