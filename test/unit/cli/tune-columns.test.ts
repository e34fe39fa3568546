// tune's plan keeps the data's columns: from the flags for a new study, from a stored plan (--plan, --resume)
// otherwise, and column flags given with --plan take its place (the same recipe on a file with other names).
import { describe, expect, it } from 'vitest';
import { columnsFromFlags } from '../../../src/cli/common.ts';
import { tunePlan } from '../../../src/cli/tune-plan.ts';
import { UsageError } from '../../../src/cli/args.ts';

const data = { trainExamples: 10, valRatio: 0.1 };

describe('tune and the column mapping', () => {
  it('a new study keeps the flags’ mapping with every column of its task', async () => {
    const flags = { 'label-column': 'sentiment', trials: '2' };
    const plan = await tunePlan(flags, 'llama', { ...data, columns: columnsFromFlags(flags) }, null);
    expect(plan.spec.columns).toEqual({ text: 'text', label: 'sentiment' });
    expect((await tunePlan({ trials: '2' }, 'llama', data, null)).spec.columns).toBeUndefined();
  });

  it('a stored plan keeps its mapping unless column flags replace it', async () => {
    const stored = (
      await tunePlan({ trials: '2' }, 'llama', { ...data, columns: { prompt: 'q', completion: 'a' } }, null)
    ).toJSON();
    expect((await tunePlan({}, 'llama', data, stored)).spec.columns).toEqual({
      prompt: 'q',
      completion: 'a',
    });
    const flags = { 'messages-column': 'conversation' };
    const replaced = await tunePlan(flags, 'llama', { ...data, columns: columnsFromFlags(flags) }, stored);
    expect(replaced.spec.columns).toEqual({ messages: 'conversation' });
  });

  it('column flags of two tasks are a usage error naming the flag', () => {
    expect(() => columnsFromFlags({ 'text-column': 'a', 'completion-column': 'b' })).toThrow(
      new UsageError(
        '--text-column: a prompt-completion mapping has prompt and completion columns only; drop the text column',
      ),
    );
    expect(columnsFromFlags({})).toBeUndefined();
  });
});
