/**
 * Operator actions on one job (API `cancel`, `retry`), each inside the
 * caller's transaction: lock the row, decide from its current state, write
 * the transition with its attempt row and queue depth change.
 */
import type pg from 'pg';
import { TERMINAL_STATES } from '../../core/types.js';
import { cancelWaits, LOCK_PENDING_WAIT } from './durable.js';
import * as q from './queries.js';
import type { RawJob } from './rows.js';

/**
 * Cancel a job that has not finished (revoking a running one's lease, and
 * cancelling a suspended one's wait); a finished job comes back unchanged.
 */
export async function cancelJob(client: pg.PoolClient, id: number, now: number): Promise<RawJob | null> {
  await client.query(LOCK_PENDING_WAIT, [id]);
  const before = (await client.query<RawJob>(q.LOCK_JOB, [id])).rows[0];
  if (!before) return null;
  if (TERMINAL_STATES.includes(before.state)) return before;
  const raw = (await client.query<RawJob>(q.CANCEL, [id, now])).rows[0]!;
  if (before.state === 'running') {
    await client.query(q.END_ATTEMPT, [id, before.lease_seq, before.worker_id ?? '', before.leased_at ?? now, now, 'cancelled']);
  }
  // A suspended job was counted finished when it suspended (durable.ts).
  if (before.state === 'suspended') await cancelWaits(client, id, now);
  else await client.query(q.COUNT_ONE, [raw.queue, 'finished']);
  return raw;
}

/** Queue a dead or cancelled job again with a fresh attempt budget; any other job comes back unchanged. */
export async function retryJob(client: pg.PoolClient, id: number, now: number): Promise<RawJob | null> {
  const before = (await client.query<RawJob>(q.LOCK_JOB, [id])).rows[0];
  if (!before) return null;
  if (before.state !== 'dead' && before.state !== 'cancelled') return before;
  const raw = (await client.query<RawJob>(q.RETRY, [id, now])).rows[0]!;
  await client.query(q.COUNT_ONE, [raw.queue, 'added']);
  return raw;
}
