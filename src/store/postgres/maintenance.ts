/**
 * The PostgreSQL side of the background passes that keep the tables in
 * shape: staging scheduled jobs (and waking suspended ones), restamping
 * queue order, pruning finished work. The engine passes its checked query,
 * its pool and its wakeups; the SQL lives in `queries.ts` and beside it.
 */
import type pg from 'pg';
import type { PruneRequest, RestampRequest, RestampResult, StageResult } from '../engine.js';
import { Woken } from '../woken.js';
import { inTransaction, type Query } from './connection.js';
import * as durable from './durable.js';
import type { IntakeEffects } from './intake.js';
import * as q from './queries.js';
import { PRUNE_RATE_WINDOWS } from './rate-windows.js';
import { pruneTriggerGroups } from './trigger-groups.js';

/** Most scheduled jobs one stageDue call moves. */
const STAGE_BATCH = 5000;

/** The engine's transaction that may queue suspended jobs again (its `#durableWrite`). */
export type DurableWrite = <T>(what: string, work: (client: pg.PoolClient, effects: IntakeEffects) => Promise<T>) => Promise<T>;

/** Moves at most 5000 jobs per call; when more are due, `nextDueAt` is <= now, so call again. */
export async function stageDue(query: Query, now: number, woke: (woken: Woken) => void, durableWrite: DurableWrite): Promise<StageResult> {
  const rows = await query<{ staged: number; queues: string[] | null; handlers: string[] | null; next_due: number | null; next_wake: number | null }>(q.STAGE_DUE, [
    now,
    STAGE_BATCH,
  ]);
  const row = rows[0];
  if (row?.queues?.length) woke(Woken.of(row.queues, row.handlers));
  const staged = row?.staged ?? 0;
  let nextWake = row?.next_wake ?? null;
  // Suspended jobs to wake (sleeps over, waits timed out): a transaction only when one is due.
  if (nextWake === null || nextWake > now) return { staged, nextDueAt: minOrNull(row?.next_due ?? null, nextWake) };
  const woken = await durableWrite('waking suspended jobs', async (client, effects) => {
    const waits = await durable.wakeDue(client, now, STAGE_BATCH, effects);
    nextWake = (await client.query<{ t: number | null }>(durable.NEXT_WAKE)).rows[0]?.t ?? null;
    return waits;
  });
  const nextDueAt = minOrNull(row?.next_due ?? null, nextWake);
  return woken.length > 0 ? { staged, woken, nextDueAt } : { staged, nextDueAt };
}

export async function restampJobs(query: Query, request: RestampRequest): Promise<RestampResult> {
  const span = Math.max(1, Math.floor(request.span));
  const rows = await query<{ restamped: number; after: number | null; newest: number | null }>(q.RESTAMP_JOBS, [
    request.stamps.map((s) => s.queue),
    request.stamps.map((s) => s.priorityMs),
    request.afterId,
    span,
    request.stamps.map((s) => s.fairness === 'tenant'),
  ]);
  const row = rows[0];
  if (!row || row.after === null || row.newest === null) return { restamped: 0, nextAfterId: null };
  const until = row.after + span;
  return { restamped: row.restamped, nextAfterId: until >= row.newest ? null : String(until) };
}

/** One transaction on `pool`: finished jobs, old events, spent rate windows and trigger groups. */
export function prune(pool: pg.Pool, clock: () => number, request: PruneRequest): Promise<{ jobs: number; events: number }> {
  const size = Math.max(0, Math.floor(request.batchSize));
  return inTransaction(pool, async (client) => {
    const count = async (states: string[], before: number, limit: number) =>
      (await client.query<{ n: number }>(q.PRUNE_JOBS, [states, before, limit])).rows[0]?.n ?? 0;
    let jobs = await count(['succeeded', 'cancelled'], request.finishedBefore, size);
    if (jobs < size) jobs += await count(['dead'], request.deadBefore, size - jobs);
    const events = (await client.query(q.PRUNE_EVENTS, [request.eventsBefore, size])).rowCount ?? 0;
    await client.query(PRUNE_RATE_WINDOWS, [clock()]);
    await pruneTriggerGroups(client, request.eventsBefore, clock(), size);
    return { jobs, events };
  });
}

function minOrNull(a: number | null, b: number | null): number | null {
  if (a === null) return b;
  return b === null ? a : Math.min(a, b);
}
