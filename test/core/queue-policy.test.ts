/** Queue policies: the config keys that set them (validation, defaults) and the pure lease-order math of core/queue-policy.ts. */
import { describe, expect, it } from 'vitest';
import { resolveConfig, type ConfigIssue } from '../../src/core/config.js';
import { DroverError } from '../../src/core/errors.js';
import { compareLeaseOrder, leaseRank, priorityMsFor, priorityMsLabel, queuePolicy, STRICT_PRIORITY_MS } from '../../src/core/queue-policy.js';

function issues(queues: unknown): string[] {
  try {
    resolveConfig({ handlers: [], queues }, {});
  } catch (error) {
    expect(error).toBeInstanceOf(DroverError);
    return ((error as DroverError).extensions.errors as ConfigIssue[]).map((i) => `${i.path}: ${i.message}`);
  }
  throw new Error('expected resolveConfig to throw');
}

describe('queues.<name> lease-order keys', () => {
  it('defaults to strict priority, seconds as the age unit, and no fairness', () => {
    const c = resolveConfig({ handlers: [], queues: { bulk: {} } }, {});
    expect(c.queues.get('bulk')).toEqual({ maxDepth: 100_000, weights: { priority: 1, age: 0 }, ageUnitMs: 1000, priorityMs: STRICT_PRIORITY_MS, fairness: 'none' });
    expect(c.queues.get('default')).toEqual(c.queues.get('bulk'));
  });

  it('resolves weights, ageUnitMs and fairness into a policy with its derived priorityMs', () => {
    const c = resolveConfig({ handlers: [], queues: { bulk: { weights: { priority: 0.6, age: 0.4 }, ageUnitMs: 10, fairness: 'tenant' } } }, {});
    expect(c.queues.get('bulk')).toEqual({ maxDepth: 100_000, weights: { priority: 0.6, age: 0.4 }, ageUnitMs: 10, priorityMs: 15, fairness: 'tenant' });
  });

  it('accepts weights whose sum is 1 up to floating-point error', () => {
    expect(() => resolveConfig({ handlers: [], queues: { q: { weights: { priority: 0.7, age: 0.3 } } } }, {})).not.toThrow();
    expect(() => resolveConfig({ handlers: [], queues: { q: { weights: { priority: 0.1 + 0.2, age: 0.7 } } } }, {})).not.toThrow();
  });

  it('names the path and the expectation of every bad value', () => {
    expect(issues({ bulk: { weights: { priority: 0.6, age: 0.6 } } })).toEqual([
      'queues.bulk.weights: expected priority + age = 1 (e.g. { priority: 0.6, age: 0.4 }; { priority: 1, age: 0 } is strict priority), got {"priority":0.6,"age":0.6}',
    ]);
    expect(issues({ bulk: { weights: { priority: 1.5, age: -0.5 } } })).toEqual([
      'queues.bulk.weights.priority: expected a number from 0 to 1, got 1.5',
      'queues.bulk.weights.age: expected a number from 0 to 1, got -0.5',
    ]);
    expect(issues({ bulk: { weights: { priority: 1 } } })).toEqual(['queues.bulk.weights.age: expected a number from 0 to 1, but it is missing']);
    expect(issues({ bulk: { weights: { priority: 1, age: 0, speed: 1 } } })).toEqual(['queues.bulk.weights.speed: unknown key; allowed keys: priority, age']);
    expect(issues({ bulk: { ageUnitMs: 0 } })).toEqual(['queues.bulk.ageUnitMs: expected an integer ≥ 1 (milliseconds), got 0']);
    expect(issues({ bulk: { ageUnitMs: 1.5 } })).toEqual(['queues.bulk.ageUnitMs: expected an integer ≥ 1 (milliseconds), got 1.5']);
    expect(issues({ bulk: { fairness: 'handler' } })).toEqual(['queues.bulk.fairness: expected one of "none", "tenant", got "handler"']);
    expect(issues({ bulk: { weight: {} } })).toEqual(['queues.bulk.weight: unknown key; allowed keys: maxDepth, weights, ageUnitMs, fairness, tenantMaxActiveLeases']);
  });
});

describe('priorityMsFor', () => {
  it('is what one priority level is worth in ms of waiting: ageUnitMs × priority / age', () => {
    expect(priorityMsFor({ priority: 0.6, age: 0.4 }, 1000)).toBe(1500);
    expect(priorityMsFor({ priority: 0.5, age: 0.5 }, 10)).toBe(10);
    expect(priorityMsFor({ priority: 0, age: 1 }, 1000)).toBe(0); // age only: first come, first served
  });

  it('is strict when age has no weight, and never beyond strict', () => {
    expect(priorityMsFor({ priority: 1, age: 0 }, 1000)).toBe(STRICT_PRIORITY_MS);
    expect(priorityMsFor({ priority: 1 - 1e-12, age: 1e-12 }, 2 ** 30)).toBe(STRICT_PRIORITY_MS);
    expect(priorityMsLabel(STRICT_PRIORITY_MS)).toBe('strict');
    expect(priorityMsLabel(1500)).toBe(1500);
  });

  it('queuePolicy fills the defaults', () => {
    expect(queuePolicy({ maxDepth: 5 })).toEqual({ maxDepth: 5, weights: { priority: 1, age: 0 }, ageUnitMs: 1000, priorityMs: STRICT_PRIORITY_MS, fairness: 'none' });
  });
});

describe('compareLeaseOrder', () => {
  const row = (over: Partial<{ fair_tag: number; run_at: number; priority: number; priority_ms: number; id: number }>) => ({
    fair_tag: 0,
    run_at: 1_000_000,
    priority: 0,
    priority_ms: STRICT_PRIORITY_MS,
    id: 1,
    ...over,
  });
  const sorted = (rows: ReturnType<typeof row>[]) => [...rows].sort(compareLeaseOrder).map((r) => r.id);

  it('orders by turn, then rank (run_at - priority × priorityMs), then id', () => {
    expect(sorted([row({ id: 1, fair_tag: 2, priority: 9 }), row({ id: 2, fair_tag: 1 })])).toEqual([2, 1]);
    expect(sorted([row({ id: 2 }), row({ id: 1 })])).toEqual([1, 2]);
    expect(sorted([row({ id: 1, run_at: 5 }), row({ id: 2, run_at: 4 })])).toEqual([2, 1]);
  });

  it('strict stamps: priority wins over any wait', () => {
    expect(sorted([row({ id: 1, run_at: 0 }), row({ id: 2, run_at: 1e12, priority: 1 })])).toEqual([2, 1]);
  });

  it('aged stamps: a job that waited longer than its priority gap is worth goes first', () => {
    const low = row({ id: 1, run_at: 1000, priority_ms: 10 });
    expect(sorted([low, row({ id: 2, run_at: 1050, priority: 10, priority_ms: 10 })])).toEqual([2, 1]); // rank 950 < 1000
    expect(sorted([low, row({ id: 3, run_at: 1150, priority: 10, priority_ms: 10 })])).toEqual([1, 3]); // rank 1050 > 1000
  });

  it('agrees with leaseRank exactly past 2^53 (mixed stamps)', () => {
    const a = row({ id: 1, run_at: 1_700_000_000_000, priority: 2_000_000_000, priority_ms: STRICT_PRIORITY_MS });
    const b = row({ id: 2, run_at: 1_700_000_000_001, priority: 2_000_000_000, priority_ms: STRICT_PRIORITY_MS - 1 });
    const expected = leaseRank(a.run_at, a.priority, a.priority_ms) < leaseRank(b.run_at, b.priority, b.priority_ms) ? [1, 2] : [2, 1];
    expect(sorted([a, b])).toEqual(expected);
    expect(expected).toEqual([1, 2]);
  });
});
