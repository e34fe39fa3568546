// Engine errors in words a person understands: the message the engine wrote (it names the file, line,
// parameter or buffer), with a hint where the usual fix is known.
import { DatasetError } from '../../engine/train/data.ts';
import { isQuotaError } from './db.ts';

/**
 * An engine message without the function that threw it ('parseDataset: seq must…', 'loadStudy: line 3: …'):
 * the name means something to a developer reading a stack, not to the person at the page.
 */
export function withoutFunctionName(message: string): string {
  return message.replace(/^[a-z]+[A-Z][A-Za-z]*: /, '');
}

export function describeError(error: unknown): string {
  if (error instanceof DatasetError) {
    const where = error.line > 0 ? `${error.file}, line ${error.line}` : error.file;
    return `The dataset has a problem at ${where}: ${error.reason}.`;
  }
  if (isQuotaError(error))
    return "The browser's storage for this page is full: delete studies you no longer need in the Studies list (or free disk space) and try again.";
  const message = withoutFunctionName(error instanceof Error ? error.message : String(error));
  if (/Failed to fetch|NetworkError|cannot list the repo files|cannot download/i.test(message))
    return `${message}. Check the connection, the repo id and (for gated models) the access token; the demo model works offline.`;
  if (/does not fit this device|maxStorageBufferBindingSize|maxBufferSize/.test(message))
    return `${message}. Try a smaller model, a shorter sequence or a smaller batch.`;
  if (/device (was )?lost/i.test(message))
    return `The GPU stopped responding (${message}). Reload the page; the study is saved and resumes.`;
  return message;
}
