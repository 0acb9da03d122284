/**
 * How a queue orders its jobs for leasing (docs/configuration.md "Flow
 * control"). Pure: the store stamps `priorityMs` on each job and orders by
 * `run_at - priority * priorityMs` ascending, then `id`; fair queues order by
 * each tenant's turn (`fair_tag`) before that.
 *
 * Why a stamped number and not a score computed at lease time: a score that
 * depends on "now" cannot be held by an index, so every lease would sort the
 * whole backlog. Linear aging has the useful property that its order does
 * not change as time passes, only as jobs arrive.
 */

/** One priority level's worth under strict priority: 2^40 ms (about 35 years), so waiting never overtakes priority. */
export const STRICT_PRIORITY_MS = 2 ** 40;

export interface QueueWeights {
  /** Weight of the job's priority in its score; `priority + age = 1`. */
  priority: number;
  /** Weight of the time it has waited, in `ageUnitMs` units. 0 is strict priority. */
  age: number;
}

export interface QueuePolicy {
  /** Jobs not yet finished (scheduled + queued + running) allowed in the queue. */
  maxDepth: number;
  weights: QueueWeights;
  /** The unit of waiting time the `age` weight applies to (default 1000: seconds). */
  ageUnitMs: number;
  /** Derived: what one priority level is worth in ms of waiting (STRICT_PRIORITY_MS when `age` is 0). */
  priorityMs: number;
  /** Tenants take turns (start-time fair queuing by tenant); `'none'`: one line for everyone. */
  fairness: 'none' | 'tenant';
}

export const STRICT_WEIGHTS: QueueWeights = { priority: 1, age: 0 };

/** `queues.<name>.ageUnitMs` when not set: waiting is counted in seconds. */
export const DEFAULT_AGE_UNIT_MS = 1000;

/**
 * score = weights.priority × priority + weights.age × (waited / ageUnitMs);
 * ordering by that score at any instant equals ordering by
 * `run_at - priority × priorityMs` with priorityMs = ageUnitMs × wP / wA.
 *
 * @example
 * priorityMsFor({ priority: 0.6, age: 0.4 }, 1000); // 1500: a level is worth 1.5 s of waiting
 * priorityMsFor({ priority: 1, age: 0 }, 1000); // STRICT_PRIORITY_MS
 */
export function priorityMsFor(weights: QueueWeights, ageUnitMs: number): number {
  if (weights.age <= 0) return STRICT_PRIORITY_MS;
  return Math.min(STRICT_PRIORITY_MS, Math.max(0, Math.round((ageUnitMs * weights.priority) / weights.age)));
}

export function queuePolicy(options: { maxDepth: number; weights?: QueueWeights; ageUnitMs?: number; fairness?: 'none' | 'tenant' }): QueuePolicy {
  const weights = options.weights ?? STRICT_WEIGHTS;
  const ageUnitMs = options.ageUnitMs ?? DEFAULT_AGE_UNIT_MS;
  return { maxDepth: options.maxDepth, weights, ageUnitMs, priorityMs: priorityMsFor(weights, ageUnitMs), fairness: options.fairness ?? 'none' };
}

/**
 * What `GET /v1/queues` shows for a stamp: the number, or `"strict"` when
 * waiting never overtakes priority.
 *
 * @example
 * priorityMsLabel(STRICT_PRIORITY_MS); // 'strict'
 * priorityMsLabel(1500); // 1500
 */
export function priorityMsLabel(priorityMs: number): number | 'strict' {
  return priorityMs >= STRICT_PRIORITY_MS ? 'strict' : priorityMs;
}

/** The lease-order key of a job, exact (BigInt: priority × 2^40 passes 2^53). Lower leases first. */
export function leaseRank(runAt: number, priority: number, priorityMs: number): bigint {
  return BigInt(runAt) - BigInt(priority) * BigInt(priorityMs);
}

/** Lease order over raw rows: fair turn, then rank, then id. */
export function compareLeaseOrder(
  a: { fair_tag: number; run_at: number; priority: number; priority_ms: number; id: number },
  b: { fair_tag: number; run_at: number; priority: number; priority_ms: number; id: number },
): number {
  if (a.fair_tag !== b.fair_tag) return a.fair_tag - b.fair_tag;
  // Same priority and stamp (the usual case): the rank difference is the run_at difference, no BigInt needed.
  // Different priorities must weigh run_at too (aging): comparing priorities alone is strict order.
  if (a.priority === b.priority && a.priority_ms === b.priority_ms) return a.run_at - b.run_at || a.id - b.id;
  const ra = leaseRank(a.run_at, a.priority, a.priority_ms);
  const rb = leaseRank(b.run_at, b.priority, b.priority_ms);
  if (ra !== rb) return ra < rb ? -1 : 1;
  return a.id - b.id;
}
