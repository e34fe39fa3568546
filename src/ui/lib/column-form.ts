// The Data step's column mapping form: which tasks a file offers, and the mapping a choice of task or column
// gives (the engine's columns.ts checks and reads it).
import {
  resolveMapping,
  TASK_ROLES,
  type ColumnMapping,
  type ColumnRole,
  type MappedFormat,
} from '../../engine/train/columns.ts';

export const TASK_LABELS: Readonly<Record<MappedFormat, string>> = {
  text: 'Text (documents, packed)',
  classification: 'Classification (text → label)',
  'prompt-completion': 'Prompt → completion',
  chat: 'Chat (a list of messages)',
};

export const ROLE_LABELS: Readonly<Record<ColumnRole, string>> = {
  text: 'Text column',
  label: 'Label column',
  prompt: 'Prompt column',
  completion: 'Completion column',
  messages: 'Messages column',
};

/** The tasks a file can be read as: chat needs JSONL (a CSV cell holds text, not a list of messages). */
export function tasksFor(fileName: string): MappedFormat[] {
  const all = Object.keys(TASK_ROLES) as MappedFormat[];
  return fileName.toLowerCase().endsWith('.csv') ? all.filter((t) => t !== 'chat') : all;
}

/** The task a mapping names; null for none (the fixed names) or one the engine refuses. */
export function taskOf(mapping: ColumnMapping | null): MappedFormat | null {
  if (!mapping) return null;
  try {
    return resolveMapping(mapping).format;
  } catch {
    return null;
  }
}

/**
 * A mapping for `task` over the file's columns: each role keeps the column it has in `current`, else takes the
 * column named as the role, else the first column no other role took.
 */
export function mappingForTask(
  task: MappedFormat,
  columns: readonly string[],
  current: ColumnMapping | null,
): ColumnMapping {
  const mapping: ColumnMapping = {};
  const taken = new Set<string>();
  for (const role of TASK_ROLES[task]) {
    const candidates = [current?.[role], columns.find((c) => c.toLowerCase() === role), ...columns];
    const pick = candidates.find((c) => c !== undefined && columns.includes(c) && !taken.has(c));
    if (pick === undefined) continue;
    mapping[role] = pick;
    taken.add(pick);
  }
  return mapping;
}

/** `current` with `role` read from `column`; a role that had that column takes the role's old one (a swap). */
export function withColumn(current: ColumnMapping, role: ColumnRole, column: string): ColumnMapping {
  const mapping: ColumnMapping = { ...current, [role]: column };
  const other = (Object.keys(current) as ColumnRole[]).find((r) => r !== role && current[r] === column);
  if (other !== undefined) {
    if (current[role] !== undefined) mapping[other] = current[role];
    else delete mapping[other];
  }
  return mapping;
}
