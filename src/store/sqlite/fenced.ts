/**
 * Lease-fenced transitions: each update matches (id, lease_token, state =
 * 'running'), so a holder whose lease was reaped, released, cancelled or
 * re-leased changes nothing and is told `stale_lease`. This is what turns
 * at-least-once execution into at-most-once completion.
 */
import type { FailRequest, FenceResult, MatchResult, StartResult } from '../engine.js';
import type { HeldLease, LeaseMemo } from './lease-memo.js';
import { addDepth, type WriteEffects } from './queue-depth.js';
import { DroverError } from '../../core/errors.js';
import type { AttemptOutcome, JobRow } from '../../core/types.js';
import { parseJobId, toJobRow, toJson } from './rows.js';
import type { FencedRow, FixedStatements } from './statements.js';

/**
 * Run a fenced update (`true`: it matched); no match means the token is
 * stale, or the job is gone. The job row in the result is read when first
 * asked for: the dispatcher only looks at `ok`, and reading the whole row per
 * completion would cost more than the update (see statements.ts).
 */
function fenced(s: FixedStatements, jobId: string, update: (id: number) => boolean): FenceResult {
  const id = parseJobId(jobId);
  if (id === null) return { ok: false, reason: 'not_found' };
  if (!update(id)) return refused(s, id);
  let job: JobRow | undefined;
  return {
    ok: true,
    get job(): JobRow {
      if (job) return job;
      const raw = s.jobById.get(id);
      if (!raw) throw new DroverError('not_found', `job ${jobId} was deleted (pruned) after this transition`);
      job = toJobRow(raw);
      return job;
    },
  };
}

function refused(s: FixedStatements, id: number): { ok: false; reason: 'stale_lease' | 'not_found' } {
  return { ok: false, reason: s.jobExists.get(id) ? 'stale_lease' : 'not_found' };
}

/** The lease a settle ended: its queue (depth effects), and its number, holder and start (its attempt row). */
type EndedLease = Pick<HeldLease, 'queue' | 'seq' | 'workerId' | 'leasedAt'>;

/**
 * The settled job's lease: as the lease that issued `token` left it
 * (lease-memo.ts; none of these columns changes while a lease is held), else
 * read by id after the update matched, in the same write op (cheaper than
 * RETURNING: statements.ts). `now` stands in for a start a job leased before
 * migration 0009 may lack.
 */
function settledLease(s: FixedStatements, memo: LeaseMemo, id: number, jobId: string, token: string, now: number): EndedLease {
  const held = memo.settled(jobId, token);
  if (held !== undefined) return held;
  const row: FencedRow = s.fencedRow.get(id)!;
  return { queue: row.queue, seq: row.lease_seq, workerId: row.worker_id ?? '', leasedAt: row.leased_at ?? now };
}

/**
 * The ended attempt's one row (migration 0009: a lease writes none; the
 * running attempt is read from the job row until then).
 */
function endAttempt(s: FixedStatements, id: number, lease: EndedLease, now: number, outcome: AttemptOutcome, error: string | null): void {
  s.insertAttempt.run(id, lease.seq, lease.workerId, lease.leasedAt, now, outcome, error);
}

const MATCHED: MatchResult = Object.freeze({ ok: true });

/** `row: false` (the node's own dispatcher): whether the fence held, without the deferred row read's object. */
export function withoutRow(result: FenceResult): MatchResult {
  return result.ok ? MATCHED : result;
}

export function heartbeatJob(s: FixedStatements, jobId: string, token: string, leaseMs: number, now: number): FenceResult {
  return fenced(s, jobId, (id) => s.heartbeat.run(now + leaseMs, now, id, token).changes > 0);
}

/** The handler is about to run: from now on a reclaim of this lease counts as a crash. */
export function startJob(s: FixedStatements, jobId: string, token: string): StartResult {
  const id = parseJobId(jobId);
  if (id === null) return { ok: false, reason: 'not_found' };
  return s.start.run(id, token).changes > 0 ? STARTED : refused(s, id);
}

const STARTED: StartResult = Object.freeze({ ok: true });

export function completeJob(
  s: FixedStatements,
  memo: LeaseMemo,
  jobId: string,
  token: string,
  result: unknown,
  now: number,
  own: WriteEffects,
): FenceResult {
  return fenced(s, jobId, (id) => {
    if (s.complete.run(toJson(result), now, now, id, token).changes === 0) return false;
    const lease = settledLease(s, memo, id, jobId, token, now);
    endAttempt(s, id, lease, now, 'succeeded', null);
    addDepth(own, lease.queue, -1);
    return true;
  });
}

export function failJob(
  s: FixedStatements,
  memo: LeaseMemo,
  jobId: string,
  token: string,
  request: FailRequest,
  now: number,
  own: WriteEffects,
): FenceResult {
  return fenced(s, jobId, (id) => {
    const { error, retryAt } = request;
    const crashed = request.crashed ? 1 : 0;
    const state = retryAt === null ? 'dead' : retryAt <= now ? 'queued' : 'scheduled';
    const matched =
      state === 'dead'
        ? s.failDead.run(request.deadReason ?? 'exhausted', error, crashed, now, now, id, token).changes > 0
        : s.failRetry.run(state, retryAt!, error, crashed, now, id, token).changes > 0;
    if (!matched) return false;
    const lease = settledLease(s, memo, id, jobId, token, now);
    endAttempt(s, id, lease, now, request.outcome, error);
    if (state === 'dead') addDepth(own, lease.queue, -1);
    // settledLease reads no handler: wake any handler of the queue.
    if (state === 'queued') own.woken.add(lease.queue, null);
    return true;
  });
}

/** Hand the job back without spending the attempt (graceful shutdown; held back until `runAt`). */
export function releaseJob(s: FixedStatements, memo: LeaseMemo, jobId: string, token: string, now: number, own: WriteEffects, runAt = 0): FenceResult {
  return fenced(s, jobId, (id) => {
    if (s.release.run({ id, token, now, runAt }).changes === 0) return false;
    const lease = settledLease(s, memo, id, jobId, token, now);
    endAttempt(s, id, lease, now, 'released', null);
    // The statement's own choice of state, made in JS: `runAt > now` compares the same numbers.
    if (!(runAt > now)) own.woken.add(lease.queue, null);
    return true;
  });
}
