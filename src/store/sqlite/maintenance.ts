/**
 * Background upkeep that runs as one group-commit write op each: staging due
 * scheduled jobs (and waking due durable waits), restamping queued jobs'
 * fairness order, and pruning finished jobs and old events.
 *
 * Every op is bounded (`STAGE_BATCH`, the caller's span or batch size) so it
 * never holds the write lock for long; callers loop while there is more.
 */
import type { PruneRequest, RestampRequest, RestampResult, StageResult } from '../engine.js';
import { wakeDue, type DurableContext } from './durable.js';
import { parseJobId } from './rows.js';
import type { FixedStatements } from './statements.js';
import { pruneTriggerGroups, type TriggerStatements } from './trigger-groups.js';

/** Most scheduled jobs one stageDue call moves, so it never holds the write lock for long. */
const STAGE_BATCH = 5000;

/** Moves at most 5000 jobs per call; when more are due, `nextDueAt` is <= now, so call again. */
export function stageDueJobs(ctx: DurableContext): StageResult {
  const { s, d, now, own } = ctx;
  const staged = s.stageDue.all({ now, limit: STAGE_BATCH });
  for (const { queue, handler } of staged) own.woken.add(queue, handler);
  const woken = wakeDue(ctx, STAGE_BATCH);
  const nextDueAt = minOrNull(s.nextDue.get()?.t ?? null, d.nextWake.get()?.t ?? null);
  return woken.length > 0 ? { staged: staged.length, woken, nextDueAt } : { staged: staged.length, nextDueAt };
}

export function restampJobs(s: FixedStatements, request: RestampRequest): RestampResult {
  const after = request.afterId === null ? (s.oldestWaitingJobId.get()?.id ?? null) : parseJobId(request.afterId);
  const newest = s.newestJobId.get()?.id ?? null;
  if (after === null || newest === null) return { restamped: 0, nextAfterId: null };
  // The first window starts just before the oldest waiting job.
  const from = request.afterId === null ? after - 1 : after;
  const until = from + Math.max(1, Math.floor(request.span));
  let restamped = 0;
  for (const stamp of request.stamps) {
    const keep = stamp.fairness === 'tenant' ? 1 : 0;
    restamped += s.restampWindow.run({ queue: stamp.queue, priority_ms: stamp.priorityMs, keep_turns: keep, after: from, until }).changes;
  }
  return { restamped, nextAfterId: until >= newest ? null : String(until) };
}

export function pruneStore(s: FixedStatements, t: TriggerStatements, request: PruneRequest, now: () => number): { jobs: number; events: number } {
  const size = Math.max(0, Math.floor(request.batchSize));
  // Deleting a job cascades to its attempts (foreign key ON DELETE CASCADE).
  let jobs = s.pruneFinished.run(request.finishedBefore, size).changes;
  if (jobs < size) jobs += s.pruneDead.run(request.deadBefore, size - jobs).changes;
  const events = s.pruneEvents.run(request.eventsBefore, size).changes;
  pruneTriggerGroups(t, request.eventsBefore, now(), size);
  return { jobs, events };
}

function minOrNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  return b === null ? a : Math.min(a, b);
}
