/**
 * The lease-ahead buffer (runtime/attempt.ts): first in, first out across its
 * head-index compaction, and removals keep the order of what stays.
 */
import { describe, expect, it } from 'vitest';
import { Attempt, AttemptQueue, type Lane } from '../../src/runtime/attempt.js';
import type { LeasedJob } from '../../src/core/types.js';

const lane = { handler: { name: 'h' }, deps: {} } as unknown as Lane;
const attempt = (n: number) => new Attempt(lane, { id: String(n), queue: n % 3 === 0 ? 'q3' : 'q' } as LeasedJob, 0);
const ids = (list: Attempt[]) => list.map((a) => Number(a.job.id));

describe('AttemptQueue', () => {
  it('hands out jobs in order while it is refilled before it empties (compacting as it goes)', () => {
    const queue = new AttemptQueue();
    const out: number[] = [];
    let next = 0;
    for (let round = 0; round < 50; round++) {
      while (queue.length < 64) queue.push(attempt(next++));
      for (let i = 0; i < 40; i++) out.push(Number(queue.shift()!.job.id));
    }
    expect(out).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    expect(queue.length).toBe(next - 2000);
    expect(ids(queue.clear())).toEqual(Array.from({ length: next - 2000 }, (_, i) => 2000 + i));
    expect(queue.length).toBe(0);
    expect(queue.shift()).toBeUndefined();
  });

  it('takes out what a predicate picks and keeps the rest in order', () => {
    const queue = new AttemptQueue();
    for (let n = 0; n < 10; n++) queue.push(attempt(n));
    queue.shift();
    expect(queue.some((a) => a.job.id === '0')).toBe(false);
    expect(queue.some((a) => a.job.queue === 'q3')).toBe(true);
    expect(ids(queue.removeWhere((a) => a.job.queue === 'q3'))).toEqual([3, 6, 9]);
    expect(queue.removeWhere(() => false)).toEqual([]);
    expect(queue.length).toBe(6);
    expect(ids(queue.clear())).toEqual([1, 2, 4, 5, 7, 8]);
  });
});
