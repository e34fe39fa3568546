// Which variant of a kernel family runs for a class of shapes on this adapter. Autotuning fills it by timing
// the candidates on the device (kernels/autotune.ts); without an entry each family's own heuristic decides.
// The host keeps it between sessions (IndexedDB in the page, a cache file in Node), keyed by the adapter.

/** Bumped whenever variants or shape classes change meaning: older records are then ignored. */
export const TUNING_VERSION = 1;

export interface TuningRecord {
  version: number;
  /** `KernelTuning.adapterKey` of the device the record was measured on. */
  adapter: string;
  /** 'family/shape class' → variant name. */
  choices: Record<string, string>;
  /** When the record was made (ISO date), for display. */
  tunedAt?: string;
}

export class KernelTuning {
  readonly #choices = new Map<string, string>();
  tunedAt: string | null = null;

  constructor(readonly adapterKey: string) {}

  get size(): number {
    return this.#choices.size;
  }

  get(family: string, shapeClass: string): string | undefined {
    return this.#choices.get(`${family}/${shapeClass}`);
  }

  set(family: string, shapeClass: string, variant: string): void {
    this.#choices.set(`${family}/${shapeClass}`, variant);
  }

  entries(): [string, string][] {
    return [...this.#choices.entries()].sort(([a], [b]) => a.localeCompare(b));
  }

  clear(): void {
    this.#choices.clear();
    this.tunedAt = null;
  }

  toRecord(): TuningRecord {
    return {
      version: TUNING_VERSION,
      adapter: this.adapterKey,
      choices: Object.fromEntries(this.entries()),
      ...(this.tunedAt ? { tunedAt: this.tunedAt } : {}),
    };
  }

  /** Loads a stored record; false (and nothing changed) when it belongs to another adapter or version. */
  load(record: unknown): boolean {
    if (!isRecord(record) || record.version !== TUNING_VERSION || record.adapter !== this.adapterKey)
      return false;
    this.#choices.clear();
    for (const [key, variant] of Object.entries(record.choices)) this.#choices.set(key, variant);
    this.tunedAt = record.tunedAt ?? null;
    return true;
  }
}

function isRecord(value: unknown): value is TuningRecord {
  if (typeof value !== 'object' || value === null) return false;
  const r = value as Partial<TuningRecord>;
  return (
    typeof r.version === 'number' &&
    typeof r.adapter === 'string' &&
    typeof r.choices === 'object' &&
    r.choices !== null &&
    Object.values(r.choices).every((v) => typeof v === 'string') &&
    (r.tunedAt === undefined || typeof r.tunedAt === 'string')
  );
}
