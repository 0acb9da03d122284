/**
 * What a job's attempt came to, written to the store: a success completes the
 * job, a failure is retried or made dead by the handler's policy (core
 * backoff.ts), an abort hands the lease back unspent. Each transition is
 * fenced by the lease; a stale one changes nothing and is reported as such.
 */
import { decideFailure } from '../core/backoff.js';
import type { ResolvedHandler } from '../core/config.js';
import { NonRetryableError, toError } from '../core/errors.js';
import type { StorageEngine } from '../store/engine.js';
import type { RunningJob, RunOutcome } from './job-runner.js';
import type { Lifecycle } from './lifecycle.js';

export interface OutcomeContext {
  store: StorageEngine;
  lifecycle: Lifecycle;
  clock: () => number;
  random: () => number;
  /** Kills (memory, thread crash) that make a job dead with reason `poison`. */
  poisonAfter?: number;
  /** A retry was scheduled for this time (wake the due-timer). */
  onRetryScheduled: (runAt: number) => void;
}

export async function recordOutcome(ctx: OutcomeContext, running: RunningJob, handler: ResolvedHandler, outcome: RunOutcome): Promise<void> {
  const { job } = running;
  const { store, lifecycle, clock } = ctx;
  const durationMs = clock() - running.startedAt;
  if (outcome.kind === 'aborted') {
    const result = await store.release(job.id, job.leaseToken);
    if (result.ok) lifecycle.emit('job:released', { job, reason: outcome.reason ?? 'shutdown' });
    else lifecycle.emit('job:stale', { job, op: 'release' });
    return;
  }
  if (outcome.kind === 'succeeded') {
    const unstorable = (error: unknown) => {
      try {
        JSON.stringify(outcome.result);
      } catch (cause) {
        // The store refused the result, not the job: running it again would return the same value.
        return new NonRetryableError(`the handler's return value cannot be stored as JSON (${toError(cause).message}); return plain data`);
      }
      throw error;
    };
    const result = await store.complete(job.id, job.leaseToken, outcome.result).catch((error: unknown) => unstorable(error));
    if (result instanceof Error) return recordOutcome(ctx, running, handler, { kind: 'failed', error: result, nonRetryable: true, timedOut: false, killed: false });
    if (result.ok) lifecycle.emit('job:succeeded', { job, durationMs });
    else lifecycle.emit('job:stale', { job, op: 'complete' });
    return;
  }
  const decision = decideFailure({
    attempt: job.attempts,
    maxAttempts: job.maxAttempts,
    nonRetryable: outcome.nonRetryable,
    now: clock(),
    backoff: handler.backoff,
    random: ctx.random,
    killed: outcome.killed,
    crashesBefore: job.crashes,
    ...(ctx.poisonAfter !== undefined ? { poisonAfter: ctx.poisonAfter } : {}),
  });
  const message = outcome.error.stack ?? `${outcome.error.name}: ${outcome.error.message}`;
  const result = await store.fail(job.id, job.leaseToken, {
    error: message.slice(0, 8192),
    outcome: outcome.timedOut ? 'timed_out' : outcome.killed ? 'crashed' : 'failed',
    retryAt: decision.retryAt,
    ...(decision.retryAt === null ? { deadReason: decision.deadReason } : {}),
    ...(outcome.killed ? { crashed: true } : {}),
  });
  if (!result.ok) {
    lifecycle.emit('job:stale', { job, op: 'fail' });
    return;
  }
  lifecycle.emit('job:failed', {
    job,
    durationMs,
    outcome: outcome.timedOut ? 'timed_out' : 'failed',
    error: outcome.error,
    retryAt: decision.retryAt,
    deadReason: decision.retryAt === null ? decision.deadReason : null,
    killed: outcome.killed,
  });
  if (decision.retryAt !== null) ctx.onRetryScheduled(decision.retryAt);
}
