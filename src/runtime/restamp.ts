/**
 * At node start, jobs already waiting in a queue take the lease-order stamp
 * its weights now set (docs/configuration.md "Weighted priority and aging").
 * Jobs enqueued later are stamped at intake; a retry or a wake keeps its
 * job's stamp (only run_at moves, and the rank follows it). A queue no longer
 * fair has its waiting jobs' turns cleared: a job keeping a turn would be
 * leased after every new job (turn 0) and could wait forever.
 *
 * Why at start and not at lease time: the stamp is part of the indexed lease
 * order (core/queue-policy.ts), so it is written once, in bounded windows of
 * job ids, so a large backlog never holds the store's write lock for long.
 * With several nodes the last one to start with a changed config decides.
 */
import type { QueuePolicy } from '../core/queue-policy.js';
import type { Logger } from '../obs/logger.js';
import type { JobStore } from '../store/engine.js';

/** Job ids per store call: one call rewrites at most this many rows. */
export const RESTAMP_SPAN = 5000;

/**
 * Restamp every configured queue's waiting jobs; returns how many changed.
 *
 * @example
 * await restampQueues(store, config.queues, logger); // 0 when no weight changed
 */
export async function restampQueues(
  store: Pick<JobStore, 'restampJobs'>,
  queues: ReadonlyMap<string, QueuePolicy>,
  logger?: Pick<Logger, 'info'>,
  span = RESTAMP_SPAN,
): Promise<number> {
  const stamps = [...queues].map(([queue, policy]) => ({ queue, priorityMs: policy.priorityMs, fairness: policy.fairness }));
  if (stamps.length === 0) return 0;
  let total = 0;
  let afterId: string | null = null;
  do {
    const result = await store.restampJobs({ stamps, afterId, span });
    total += result.restamped;
    afterId = result.nextAfterId;
  } while (afterId !== null);
  if (total > 0) {
    logger?.info({ jobs: total, queues: stamps.map((s) => s.queue) }, 'waiting jobs restamped with their queue weights');
  }
  return total;
}
