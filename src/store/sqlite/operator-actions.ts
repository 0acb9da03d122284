/**
 * Operator actions on one job, each one group-commit write op: cancel (a
 * running job's attempt ends `cancelled`; a suspended job's wait goes with
 * it) and retry (a dead or cancelled job goes back to the queue). A job
 * already past the action is answered as it is.
 */
import { TERMINAL_STATES, type JobRow } from '../../core/types.js';
import { cancelWaits } from './durable.js';
import type { DurableFixed } from './durable-statements.js';
import { addDepth, type WriteEffects } from './queue-depth.js';
import { parseJobId, toJobRow } from './rows.js';
import type { FixedStatements } from './statements.js';

export function cancelJob(s: FixedStatements, d: DurableFixed, jobId: string, now: () => number, own: WriteEffects): JobRow | null {
  const id = parseJobId(jobId);
  const before = id === null ? undefined : s.jobById.get(id);
  if (id === null || !before) return null;
  if (TERMINAL_STATES.includes(before.state)) return toJobRow(before);
  const at = now();
  const raw = s.cancel.get({ id, now: at })!;
  // The running attempt's one row (migration 0009), from the lease as it stood.
  if (before.state === 'running') s.insertAttempt.run(id, before.lease_seq, before.worker_id ?? '', before.leased_at ?? at, at, 'cancelled', null);
  // A suspended job is not in the queue depth (durable.ts); its wait is cancelled with it.
  if (before.state === 'suspended') cancelWaits({ s, d, now: at, own }, id);
  else addDepth(own, raw.queue, -1);
  return toJobRow(raw);
}

export function retryJob(s: FixedStatements, jobId: string, now: () => number, own: WriteEffects): JobRow | null {
  const id = parseJobId(jobId);
  const before = id === null ? undefined : s.jobById.get(id);
  if (id === null || !before) return null;
  if (before.state !== 'dead' && before.state !== 'cancelled') return toJobRow(before);
  const raw = s.retry.get({ id, now: now() })!;
  addDepth(own, raw.queue, 1);
  own.woken.add(raw.queue, raw.handler);
  return toJobRow(raw);
}
