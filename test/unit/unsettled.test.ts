import { describe, expect, it } from 'vitest';
import { Unsettled } from '../../src/engine/unsettled.ts';

describe('Unsettled', () => {
  it('settled() waits for every promise, a rejected one and one added while it waits included', async () => {
    const pending = new Unsettled();
    const order: string[] = [];
    let releaseLate!: () => void;
    const first = pending.add(
      new Promise<void>((r) => setTimeout(r, 5)).then(() => {
        order.push('first');
        // Added while settled() waits on the first one.
        pending.add(new Promise<void>((r) => (releaseLate = r)).then(() => order.push('late')));
        setTimeout(() => releaseLate(), 5);
      }),
    );
    pending.add(Promise.reject(new Error('rejected'))).catch(() => order.push('rejected'));
    await pending.settled();
    order.push('settled');
    await first;
    expect(order).toEqual(['rejected', 'first', 'late', 'settled']);
  });

  it('add returns the promise itself', () => {
    const p = Promise.resolve(1);
    expect(new Unsettled().add(p)).toBe(p);
  });
});
