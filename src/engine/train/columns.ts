// Column mapping for CSV and JSONL data, as AutoTrain's: which column holds the text (and the label), the prompt
// and the completion, or the chat messages, instead of requiring the fixed names. A mapping names the columns of
// one task; the roles it leaves out take their standard name ({label: 'sentiment'} reads the text from 'text').
// detectColumns lists a file's columns and suggests a mapping from their names.

import { parseCsv } from './csv.ts';

export const COLUMN_ROLES = ['text', 'label', 'prompt', 'completion', 'messages'] as const;
export type ColumnRole = (typeof COLUMN_ROLES)[number];

/** Role → the file's column name. */
export type ColumnMapping = Partial<Record<ColumnRole, string>>;

/** What a mapped file is trained as (the formats of data.ts that read named columns). */
export type MappedFormat = 'text' | 'classification' | 'prompt-completion' | 'chat';

/** The roles each task reads, in the order a form shows them. */
export const TASK_ROLES: Readonly<Record<MappedFormat, readonly ColumnRole[]>> = {
  text: ['text'],
  classification: ['text', 'label'],
  'prompt-completion': ['prompt', 'completion'],
  chat: ['messages'],
};

export interface ResolvedMapping {
  format: MappedFormat;
  /** Every role of the format, named. */
  columns: ColumnMapping;
}

export class ColumnMappingError extends Error {
  constructor(
    /** The role whose column is wrong. */
    readonly role: ColumnRole,
    readonly reason: string,
  ) {
    super(`column mapping: ${role}: ${reason}`);
    this.name = 'ColumnMappingError';
  }
}

/**
 * The task a mapping names and all its columns: messages → chat; prompt or completion → prompt-completion;
 * label → classification; text alone → text. Throws a ColumnMappingError for roles of two tasks, an empty or
 * non-string name, or one column in two roles.
 */
export function resolveMapping(mapping: ColumnMapping): ResolvedMapping {
  const given = COLUMN_ROLES.filter((role) => mapping[role] !== undefined);
  for (const role of given) {
    const name = mapping[role];
    if (typeof name !== 'string' || name.trim() === '')
      throw new ColumnMappingError(role, `expected a column name, got ${JSON.stringify(name)}`);
  }
  if (given.length === 0) throw new ColumnMappingError('text', 'the mapping names no column');
  const format: MappedFormat = given.includes('messages')
    ? 'chat'
    : given.includes('prompt') || given.includes('completion')
      ? 'prompt-completion'
      : given.includes('label')
        ? 'classification'
        : 'text';
  const roles = TASK_ROLES[format];
  const stray = given.find((role) => !roles.includes(role));
  if (stray !== undefined) {
    throw new ColumnMappingError(
      stray,
      `a ${format} mapping has ${roles.join(' and ')} columns only; drop the ${stray} column`,
    );
  }
  const columns: ColumnMapping = {};
  for (const role of roles) columns[role] = mapping[role] ?? role;
  const names = roles.map((role) => columns[role]);
  const twice = roles.find((_, i) => names.indexOf(names[i]) !== i);
  if (twice !== undefined)
    throw new ColumnMappingError(twice, `column '${columns[twice]}' is already mapped to another role`);
  return { format, columns };
}

export interface DetectedColumns {
  /** The columns found: the CSV header, or the keys of the first JSONL rows in order of appearance. */
  columns: string[];
  /** A mapping by the columns' names; null when none fits (or the fixed names already say the format). */
  suggested: ColumnMapping | null;
}

/** JSONL rows whose keys are listed (a big file's first rows say enough). */
const ROWS_LOOKED_AT = 100;

/**
 * The columns of a .csv or .jsonl file and a suggested mapping; null for other files or text that does not
 * parse (the parse reports why).
 */
export function detectColumns(file: string, text: string): DetectedColumns | null {
  const ext = file.toLowerCase().match(/\.([a-z]+)$/)?.[1];
  let columns: string[];
  if (ext === 'csv') columns = csvHeader(text);
  else if (ext === 'jsonl') columns = jsonlKeys(text);
  else return null;
  return columns.length === 0 ? null : { columns, suggested: suggestMapping(columns) };
}

function csvHeader(text: string): string[] {
  // The header is the first record: parse up to the first few lines only, the whole file when a quoted field
  // spans them.
  const head = text.slice(0, 64 * 1024);
  for (const part of [head, text]) {
    try {
      return (parseCsv(part)[0]?.fields ?? []).map((f) => f.trim());
    } catch {
      // Cut inside a quoted field (or a broken file: the parse says where).
    }
  }
  return [];
}

function jsonlKeys(text: string): string[] {
  const keys = new Set<string>();
  let rows = 0;
  for (const line of text.split('\n', 10 * ROWS_LOOKED_AT)) {
    if (line.trim() === '') continue;
    let row: unknown;
    try {
      row = JSON.parse(line);
    } catch {
      return [...keys];
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) return [...keys];
    for (const k of Object.keys(row)) keys.add(k);
    if (++rows >= ROWS_LOOKED_AT) break;
  }
  return [...keys];
}

/** Column names people give each role (lower case), most usual first. */
const ROLE_NAMES: Readonly<Record<ColumnRole, readonly string[]>> = {
  messages: ['messages', 'conversations', 'conversation', 'chat', 'dialog', 'dialogue'],
  prompt: ['prompt', 'question', 'query', 'source', 'input'],
  completion: ['completion', 'answer', 'response', 'output', 'reply', 'target'],
  text: ['text', 'sentence', 'content', 'review', 'document', 'body', 'comment', 'tweet', 'input'],
  label: ['label', 'labels', 'class', 'category', 'sentiment', 'intent', 'target', 'y'],
};

/**
 * A mapping by column names: chat, then prompt/completion, then text with a label, then text. Null when the
 * columns are in a fixed-name format with no mapping (input_ids tokens, Alpaca's instruction/output) or when no
 * name fits a role.
 */
export function suggestMapping(columns: readonly string[]): ColumnMapping | null {
  const lower = columns.map((c) => c.toLowerCase());
  if (lower.includes('input_ids') || (lower.includes('instruction') && lower.includes('output'))) return null;
  const find = (role: ColumnRole, except?: string): string | undefined => {
    for (const name of ROLE_NAMES[role]) {
      const i = lower.indexOf(name);
      if (i >= 0 && columns[i] !== except) return columns[i];
    }
    return undefined;
  };
  const messages = find('messages');
  if (messages !== undefined) return { messages };
  const prompt = find('prompt');
  const completion = prompt === undefined ? undefined : find('completion', prompt);
  if (prompt !== undefined && completion !== undefined) return { prompt, completion };
  const text = find('text') ?? (columns.length === 1 ? columns[0] : undefined);
  if (text === undefined) return null;
  const label = find('label', text);
  return label === undefined ? { text } : { text, label };
}

/** "a, b, c" for a message. */
export function columnList(columns: readonly string[]): string {
  return columns.length === 0 ? 'none' : columns.map((c) => `'${c}'`).join(', ');
}
