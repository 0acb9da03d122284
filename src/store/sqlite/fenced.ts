/**
 * Lease-fenced transitions: each update matches (id, lease_token, state =
 * 'running'), so a holder whose lease was reaped, released, cancelled or
 * re-leased changes nothing and is told `stale_lease`. This is what turns
 * at-least-once execution into at-most-once completion.
 */
import type { FailRequest, FenceResult, StartResult } from '../engine.js';
import { addDepth, type WriteEffects } from './queue-depth.js';
import { DroverError } from '../../core/errors.js';
import type { JobRow } from '../../core/types.js';
import { parseJobId, toJobRow, toJson } from './rows.js';
import type { FencedRow, FixedStatements } from './statements.js';

/**
 * Run a fenced update; no row back means the token is stale, or the job is gone.
 * The job row in the result is read when first asked for: the dispatcher only
 * looks at `ok`, and reading the whole row per completion would cost more than
 * the update (see statements.ts).
 */
function fenced(s: FixedStatements, jobId: string, update: (id: number) => FencedRow | undefined): FenceResult {
  const id = parseJobId(jobId);
  if (id === null) return { ok: false, reason: 'not_found' };
  const row = update(id);
  if (!row) return { ok: false, reason: s.jobExists.get(id) ? 'stale_lease' : 'not_found' };
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

export function heartbeatJob(s: FixedStatements, jobId: string, token: string, leaseMs: number, now: number): FenceResult {
  return fenced(s, jobId, (id) => s.heartbeat.get({ id, token, expires: now + leaseMs, now }));
}

/** Stands for the row of an update that matched but returns nothing (`fenced` only asks whether it matched). */
const MATCHED: FencedRow = { id: 0, queue: '', state: 'running', lease_seq: 0 };

/** The handler is about to run: from now on a reclaim of this lease counts as a crash. */
export function startJob(s: FixedStatements, jobId: string, token: string): StartResult {
  const result = fenced(s, jobId, (id) => (s.start.run({ id, token }).changes > 0 ? MATCHED : undefined));
  return result.ok ? STARTED : result;
}

const STARTED: StartResult = Object.freeze({ ok: true });

export function completeJob(
  s: FixedStatements,
  jobId: string,
  token: string,
  result: unknown,
  now: number,
  own: WriteEffects,
): FenceResult {
  return fenced(s, jobId, (id) => {
    const raw = s.complete.get({ id, token, result: toJson(result), now });
    if (raw) {
      s.endAttempt.run(now, 'succeeded', null, id, raw.lease_seq);
      addDepth(own, raw.queue, -1);
    }
    return raw;
  });
}

export function failJob(
  s: FixedStatements,
  jobId: string,
  token: string,
  request: FailRequest,
  now: number,
  own: WriteEffects,
): FenceResult {
  return fenced(s, jobId, (id) => {
    const { error, retryAt } = request;
    const crashed = request.crashed ? 1 : 0;
    const raw =
      retryAt === null
        ? s.failDead.get({ id, token, reason: request.deadReason ?? 'exhausted', error, crashed, now })
        : s.failRetry.get({ id, token, state: retryAt <= now ? 'queued' : 'scheduled', runAt: retryAt, error, crashed, now });
    if (raw) {
      s.endAttempt.run(now, request.outcome, error, id, raw.lease_seq);
      if (raw.state === 'dead') addDepth(own, raw.queue, -1);
      // The fenced row carries no handler (it is the completion path's row too): any handler.
      if (raw.state === 'queued') own.woken.add(raw.queue, null);
    }
    return raw;
  });
}

/** Hand the job back without spending the attempt (graceful shutdown; held back until `runAt`). */
export function releaseJob(s: FixedStatements, jobId: string, token: string, now: number, own: WriteEffects, runAt = 0): FenceResult {
  return fenced(s, jobId, (id) => {
    const raw = s.release.get({ id, token, now, runAt });
    if (raw) {
      s.endAttempt.run(now, 'released', null, id, raw.lease_seq);
      if (raw.state === 'queued') own.woken.add(raw.queue, null);
    }
    return raw;
  });
}
