// Studies in IndexedDB: metadata, the study's event log appended line by line as events happen, and files
// (the dataset text needed to resume, the best adapter, paused trials' checkpoints). A reload rebuilds the study from its log. Also the
// kernel choices autotuned on each GPU adapter (version 2), so an adapter is tuned once.
import { openDB, type DBSchema, type IDBPDatabase, type IDBPTransaction, type StoreNames } from 'idb';
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

type EventRow = { study: string; event: StudyEvent } | { study: string; events: StudyEvent[] };

interface Schema extends DBSchema {
  studies: { key: string; value: StudyMeta };
  /** One event per row as a run appends them; an imported log in rows of many (one row per event is slow). */
  events: { key: number; value: EventRow; indexes: { study: string } };
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
  takeInjectedWriteError();
  await (await db()).put('studies', $snapshotless(meta));
}

/** A new study with its dataset, in one transaction: without room for both, neither is stored. */
export async function createStudyRecord(meta: StudyMeta, data: string): Promise<void> {
  await atomically(['studies', 'files'], async (tx) => {
    takeInjectedWriteError();
    await tx.objectStore('studies').add($snapshotless(meta));
    takeInjectedWriteError();
    await tx.objectStore('files').put({ study: meta.id, name: 'data', data });
  });
}

export async function appendEvent(study: string, event: StudyEvent): Promise<void> {
  takeInjectedWriteError();
  await (await db()).add('events', { study, event });
}

/** How many events an import stores in one row: 60,000 rows of one take seconds, 60 of 1,000 a fraction. */
const IMPORT_EVENTS_PER_ROW = 1000;

/**
 * Stores an imported study and its whole log in one transaction: if any write fails (a full disk), none is
 * kept. `onProgress` hears how many events are written.
 */
export async function importStudy(
  meta: StudyMeta,
  events: readonly StudyEvent[],
  onProgress: (written: number, total: number) => void = () => {},
): Promise<void> {
  await atomically(['studies', 'events'], async (tx) => {
    takeInjectedWriteError();
    await tx.objectStore('studies').add($snapshotless(meta));
    const store = tx.objectStore('events');
    for (let start = 0; start < events.length; start += IMPORT_EVENTS_PER_ROW) {
      takeInjectedWriteError();
      const row = events.slice(start, start + IMPORT_EVENTS_PER_ROW);
      // Awaited: the page repaints between request callbacks, and the transaction stays open.
      await store.add({ study: meta.id, events: row });
      onProgress(start + row.length, events.length);
    }
  });
}

/**
 * Runs `write` in one readwrite transaction and waits for it to commit. If anything in it throws (a bad
 * record, a full disk at a write or at the commit), the transaction is aborted and nothing of it is kept.
 */
async function atomically<Stores extends StoreNames<Schema>[]>(
  stores: Stores,
  write: (tx: IDBPTransaction<Schema, Stores, 'readwrite'>) => Promise<void>,
): Promise<void> {
  const tx = (await db()).transaction(stores, 'readwrite');
  const done = tx.done;
  done.catch(() => {}); // awaited below; after an abort it must not also surface as unhandled
  try {
    await write(tx);
    await done;
  } catch (e) {
    abortQuietly(tx);
    throw e;
  }
}

function abortQuietly(tx: { abort(): void }): void {
  try {
    tx.abort();
  } catch {
    // Already finished or aborted: nothing was committed by this transaction either way.
  }
}

/** What a full disk (or the browser's storage quota for this page) makes a write throw. */
export function isQuotaError(error: unknown): boolean {
  return error instanceof DOMException && error.name === 'QuotaExceededError';
}

let injected: { after: number; name: string } | null = null;

/**
 * Test hook: after `writes` more record writes, the next one throws a DOMException named `name`, by default
 * the QuotaExceededError of a full disk (Chromium's quota cannot be lowered from a test, so this stands in).
 */
export function injectWriteError(writes: number, name = 'QuotaExceededError'): void {
  injected = { after: writes, name };
}

function takeInjectedWriteError(): void {
  if (injected === null) return;
  if (injected.after-- > 0) return;
  const { name } = injected;
  injected = null;
  throw new DOMException(`The write failed (${name} injected by a test).`, name);
}

/** The log in append order (auto-increment keys are monotonic). */
export async function readEvents(study: string): Promise<StudyEvent[]> {
  const rows = await (await db()).getAllFromIndex('events', 'study', study);
  return rows.flatMap((r) => ('events' in r ? r.events : [r.event]));
}

export async function putFile(
  study: string,
  name: string,
  data: string | Uint8Array<ArrayBuffer>,
): Promise<void> {
  takeInjectedWriteError();
  await (await db()).put('files', { study, name, data });
}

export async function getFile(
  study: string,
  name: string,
): Promise<string | Uint8Array<ArrayBuffer> | undefined> {
  return (await (await db()).get('files', [study, name]))?.data;
}

export async function deleteFile(study: string, name: string): Promise<void> {
  takeInjectedWriteError();
  await (await db()).delete('files', [study, name]);
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
