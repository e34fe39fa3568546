// The Data step's column form: the mapping a task or a column choice gives, and the mapping's way from the
// form's settings into the study plan and back (a reopened study reads its data as it did).
import { describe, expect, it } from 'vitest';
import { resolveMapping } from '../../src/engine/train/columns.ts';
import { mappingForTask, taskOf, tasksFor, withColumn } from '../../src/ui/lib/column-form.ts';
import { defaultSettings, settingsFromPlan, studyPlan } from '../../src/ui/lib/search-config.ts';

const COLUMNS = ['row_id', 'verdict', 'remark'];

describe('the Data step column form', () => {
  it('a task keeps the columns the roles had, else takes the column named as the role, else a free one', () => {
    expect(mappingForTask('classification', COLUMNS, null)).toEqual({ text: 'row_id', label: 'verdict' });
    expect(mappingForTask('classification', ['label', 'text'], null)).toEqual({
      text: 'text',
      label: 'label',
    });
    expect(mappingForTask('text', COLUMNS, { text: 'remark', label: 'verdict' })).toEqual({ text: 'remark' });
    // One column for two roles: the second is left to choose (the engine then names the missing column).
    expect(mappingForTask('prompt-completion', ['q'], null)).toEqual({ prompt: 'q' });
  });

  it('choosing a column another role has swaps the two, so a mapping never names a column twice', () => {
    const m = { text: 'remark', label: 'verdict' };
    expect(withColumn(m, 'text', 'verdict')).toEqual({ text: 'verdict', label: 'remark' });
    expect(withColumn(m, 'text', 'row_id')).toEqual({ text: 'row_id', label: 'verdict' });
    expect(withColumn({ label: 'verdict' }, 'text', 'verdict')).toEqual({ text: 'verdict' });
    expect(() => resolveMapping(withColumn(m, 'label', 'remark'))).not.toThrow();
  });

  it('offers chat for JSONL only, and names the task of a mapping', () => {
    expect(tasksFor('a.csv')).toEqual(['text', 'classification', 'prompt-completion']);
    expect(tasksFor('a.JSONL')).toContain('chat');
    expect(taskOf({ label: 'verdict' })).toBe('classification');
    expect(taskOf(null)).toBeNull();
    expect(taskOf({ text: 'a', messages: 'b' })).toBeNull();
  });

  it('the mapping goes into the study plan and comes back from it; none stays none', () => {
    const settings = { ...defaultSettings(), columns: { text: 'remark', label: 'verdict' } };
    const plan = studyPlan(settings, 'llama').toJSON();
    expect(plan.columns).toEqual({ text: 'remark', label: 'verdict' });
    expect(settingsFromPlan(plan).columns).toEqual({ text: 'remark', label: 'verdict' });
    const none = studyPlan(defaultSettings(), 'llama').toJSON();
    expect(none.columns).toBeUndefined();
    expect(settingsFromPlan(none).columns).toBeNull();
  });
});
