/**
 * What a job's attempt came to, written to the store: a success completes the
 * job, a failure is retried or made dead by the handler's policy (core
 * backoff.ts), an abort hands the lease back unspent. Each transition is
 * fenced by the lease; a stale one changes nothing and is reported as such.
 * A remote worker's failure (remote-workers.ts) goes through the same
 * `recordFailure`: one policy, one error truncation, one `job:failed` shape.
 */
import { decideFailure, type FailureDecision } from '../core/backoff.js';
import type { ResolvedHandler } from '../core/config.js';
import { NonRetryableError, toError } from '../core/errors.js';
import type { DeadReason, JobRow, LeasedJob } from '../core/types.js';
import type { StorageEngine, WithoutRow } from '../store/engine.js';
import type { RunningJob, RunOutcome } from './job-runner.js';
import type { Lifecycle, LifecycleEvents, RemoteOrigin } from './lifecycle.js';

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

const WITHOUT_ROW: WithoutRow = Object.freeze({ row: false });

/**
 * Write an attempt's outcome. `durationMs`: how long the handler ran, when
 * the caller has read the clock already (the dispatcher reads it once per job).
 */
export async function recordOutcome(
  ctx: OutcomeContext,
  running: RunningJob,
  handler: ResolvedHandler,
  outcome: RunOutcome,
  durationMs: number = ctx.clock() - running.startedAt,
): Promise<void> {
  const { job } = running;
  const { store, lifecycle } = ctx;
  if (outcome.kind === 'aborted') {
    const result = await store.release(job.id, job.leaseToken);
    if (result.ok) lifecycle.emit('job:released', { job, reason: outcome.reason ?? 'shutdown' });
    else lifecycle.emit('job:stale', { job, op: 'release' });
    return;
  }
  if (outcome.kind === 'suspended') {
    lifecycle.emit('job:suspended', { job, wait: outcome.wait, durationMs });
    return;
  }
  if (outcome.kind === 'stale') return;
  if (outcome.kind === 'succeeded') {
    // Only whether the fence held matters here: the store need not read the row back.
    let result: Awaited<ReturnType<StorageEngine['complete']>>;
    try {
      result = await store.complete(job.id, job.leaseToken, outcome.result, WITHOUT_ROW);
    } catch (error) {
      return recordOutcome(ctx, running, handler, { kind: 'failed', error: unstorable(outcome.result, error), nonRetryable: true, timedOut: false, killed: false }, durationMs);
    }
    if (!result.ok) lifecycle.emit('job:stale', { job, op: 'complete' });
    else lifecycle.emit('job:succeeded', { job, durationMs });
    return;
  }
  const result = await recordFailure(ctx, job, handler, outcome, durationMs);
  if (!result.ok) lifecycle.emit('job:stale', { job, op: 'fail' });
}

/**
 * A completion the store refused: when the handler's return value is not
 * JSON, the error that fails the job for good (running it again would return
 * the same value); otherwise the store's own error, thrown on.
 */
function unstorable(value: unknown, error: unknown): Error {
  try {
    JSON.stringify(value);
  } catch (cause) {
    return new NonRetryableError(`the handler's return value cannot be stored as JSON (${toError(cause).message}); return plain data`);
  }
  throw error;
}

/** Most characters of an attempt's error kept in the store (attempt row, job's lastError). */
export const ATTEMPT_ERROR_CHARS = 8192;

/** How an attempt failed, wherever it ran. */
export interface AttemptFailure {
  error: Error;
  /** `NonRetryableError`: dead at once. */
  nonRetryable: boolean;
  timedOut: boolean;
  /** Its worker thread was killed under it (counts toward `poisonAfter`). */
  killed: boolean;
}

/** A failed attempt as recorded: the fenced write's result and, when it was written, the retry time (null: dead). */
export type RecordedFailure = ({ ok: true; job: JobRow } | { ok: false; reason: 'stale_lease' | 'not_found' }) & { retryAt: number | null };

/**
 * Record a failed attempt, whether the node ran it or a remote worker
 * reported it: decide retry or death by the handler's policy (a handler gone
 * from the config has none left: dead, `unknown_handler`), write it fenced by
 * the lease, emit `job:failed` and wake the due-timer for the retry. A stale
 * lease changes nothing and emits nothing; the caller reports it.
 */
export async function recordFailure(
  ctx: OutcomeContext,
  job: LeasedJob,
  handler: ResolvedHandler | undefined,
  failure: AttemptFailure,
  durationMs: number,
  origin: RemoteOrigin = {},
): Promise<RecordedFailure> {
  const decision: FailureDecision | { retryAt: null; deadReason: DeadReason } = handler
    ? decideFailure({
        attempt: job.attempts,
        maxAttempts: job.maxAttempts,
        nonRetryable: failure.nonRetryable,
        now: ctx.clock(),
        backoff: handler.backoff,
        random: ctx.random,
        killed: failure.killed,
        crashesBefore: job.crashes,
        ...(ctx.poisonAfter !== undefined ? { poisonAfter: ctx.poisonAfter } : {}),
      })
    : { retryAt: null, deadReason: 'unknown_handler' };
  const result = await ctx.store.fail(job.id, job.leaseToken, {
    error: errorText(failure.error),
    outcome: failure.timedOut ? 'timed_out' : failure.killed ? 'crashed' : 'failed',
    retryAt: decision.retryAt,
    ...(decision.retryAt === null ? { deadReason: decision.deadReason } : {}),
    ...(failure.killed ? { crashed: true } : {}),
  });
  if (!result.ok) return { ...result, retryAt: null };
  ctx.lifecycle.emit('job:failed', failedEvent(job, durationMs, failure, decision, origin));
  if (decision.retryAt !== null) ctx.onRetryScheduled(decision.retryAt);
  return { ...result, retryAt: decision.retryAt };
}

/** The `job:failed` payload, one shape for both paths. */
function failedEvent(
  job: LeasedJob,
  durationMs: number,
  failure: AttemptFailure,
  decision: { retryAt: number } | { retryAt: null; deadReason: DeadReason },
  origin: RemoteOrigin,
): LifecycleEvents['job:failed'] {
  return {
    job,
    durationMs,
    // A killed attempt is `crashed` in its attempt row; the event says `failed` with `killed`.
    outcome: failure.timedOut ? 'timed_out' : 'failed',
    error: failure.error,
    retryAt: decision.retryAt,
    deadReason: decision.retryAt === null ? decision.deadReason : null,
    killed: failure.killed,
    ...origin,
  };
}

/** The text stored for an attempt's error: its stack (which starts with name and message), truncated. */
export function errorText(error: Error): string {
  return (error.stack ?? `${error.name}: ${error.message}`).slice(0, ATTEMPT_ERROR_CHARS);
}

/**
 * The error a remote worker reported as text (docs/remote-workers.md: its
 * stack, or any message) as an Error like the one an in-process handler
 * throws: `TypeError: x is undefined` becomes name `TypeError` and message
 * `x is undefined`, the whole text its stack.
 */
export function reportedError(text: string): Error {
  const stack = text.slice(0, ATTEMPT_ERROR_CHARS) || 'remote worker reported a failure without a message';
  const firstLine = stack.split('\n')[0] ?? stack;
  const named = /^([A-Za-z_$]?[\w$]*(?:Error|Exception))(?:: (.*))?$/.exec(firstLine);
  const error = new Error(named ? (named[2] ?? '') : firstLine);
  if (named) error.name = named[1]!;
  error.stack = stack;
  return error;
}
