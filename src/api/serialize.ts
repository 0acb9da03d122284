/** Wire shapes: rows become JSON with ISO-8601 times. */
import type { AttemptRow, EventRow, JobRow } from '../core/types.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function jobJson(job: JobRow) {
  return {
    id: job.id,
    handler: job.handler,
    queue: job.queue,
    state: job.state,
    payload: job.payload,
    eventId: job.eventId,
    priority: job.priority,
    runAt: iso(job.runAt),
    attemptCount: job.attempts,
    crashCount: job.crashes,
    maxAttempts: job.maxAttempts,
    idempotencyKey: job.idempotencyKey,
    concurrencyKey: job.concurrencyKey,
    leaseExpiresAt: iso(job.leaseExpiresAt),
    workerId: job.workerId,
    lastError: job.lastError,
    deadReason: job.deadReason,
    result: job.result,
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    finishedAt: iso(job.finishedAt),
  };
}

export function attemptJson(attempt: AttemptRow) {
  return {
    attempt: attempt.attempt,
    workerId: attempt.workerId,
    startedAt: iso(attempt.startedAt),
    endedAt: iso(attempt.endedAt),
    outcome: attempt.outcome,
    error: attempt.error,
  };
}

export function eventJson(event: EventRow) {
  return { id: event.id, name: event.name, data: event.data, tenant: event.tenant, receivedAt: iso(event.receivedAt) };
}

/** The short form of a job in intake responses. */
export function jobRef(job: JobRow) {
  return { id: job.id, handler: job.handler, queue: job.queue, state: job.state, runAt: iso(job.runAt) };
}
