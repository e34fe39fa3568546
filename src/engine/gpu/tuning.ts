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
  /** 'family/shape class' → the chosen variant's measured milliseconds per launch, for display. */
  ms?: Record<string, number>;
  /** When the record was made (ISO date), for display. */
  tunedAt?: string;
}

export class KernelTuning {
  readonly #choices = new Map<string, string>();
  readonly #ms = new Map<string, number>();
  tunedAt: string | null = null;

  constructor(readonly adapterKey: string) {}

  get size(): number {
    return this.#choices.size;
  }

  get(family: string, shapeClass: string): string | undefined {
    return this.#choices.get(`${family}/${shapeClass}`);
  }

  /** `ms`: what the variant measured when it was chosen (kept for display only). */
  set(family: string, shapeClass: string, variant: string, ms?: number): void {
    const key = `${family}/${shapeClass}`;
    this.#choices.set(key, variant);
    if (ms === undefined) this.#ms.delete(key);
    else this.#ms.set(key, ms);
  }

  /** Milliseconds per launch the chosen variant measured, when known. */
  ms(family: string, shapeClass: string): number | undefined {
    return this.#ms.get(`${family}/${shapeClass}`);
  }

  entries(): [string, string][] {
    return [...this.#choices.entries()].sort(([a], [b]) => a.localeCompare(b));
  }

  clear(): void {
    this.#choices.clear();
    this.#ms.clear();
    this.tunedAt = null;
  }

  toRecord(): TuningRecord {
    return {
      version: TUNING_VERSION,
      adapter: this.adapterKey,
      choices: Object.fromEntries(this.entries()),
      ...(this.#ms.size > 0 ? { ms: Object.fromEntries(this.#ms) } : {}),
      ...(this.tunedAt ? { tunedAt: this.tunedAt } : {}),
    };
  }

  /** Loads a stored record; false (and nothing changed) when it belongs to another adapter or version. */
  load(record: unknown): boolean {
    if (!isRecord(record) || record.version !== TUNING_VERSION || record.adapter !== this.adapterKey)
      return false;
    this.#choices.clear();
    this.#ms.clear();
    for (const [key, variant] of Object.entries(record.choices)) this.#choices.set(key, variant);
    for (const [key, ms] of Object.entries(record.ms ?? {}))
      if (this.#choices.has(key)) this.#ms.set(key, ms);
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
    (r.ms === undefined ||
      (typeof r.ms === 'object' &&
        r.ms !== null &&
        Object.values(r.ms).every((v) => typeof v === 'number' && Number.isFinite(v)))) &&
    (r.tunedAt === undefined || typeof r.tunedAt === 'string')
  );
}
