/** Wire shapes: rows become JSON with ISO-8601 times. */
import type { AttemptRow, EventRow, JobRow } from '../core/types.js';
import { OMITTED_TOO_DEEP, tooDeep } from './json-limits.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/**
 * A stored value as a response shows it: null, named in `omitted`, when it is
 * nested too deep to serialise (a row from before the intake cap), so one such
 * row never turns a whole list page into a 500.
 */
export function shown(value: unknown, field: string, omitted: Record<string, string>): unknown {
  if (!tooDeep(value)) return value;
  omitted[field] = OMITTED_TOO_DEEP;
  return null;
}

export function jobJson(job: JobRow) {
  const omitted: Record<string, string> = {};
  return {
    id: job.id,
    handler: job.handler,
    queue: job.queue,
    state: job.state,
    payload: shown(job.payload, 'payload', omitted),
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
    result: shown(job.result, 'result', omitted),
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    finishedAt: iso(job.finishedAt),
    ...(Object.keys(omitted).length > 0 ? { omitted } : {}),
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
  const omitted: Record<string, string> = {};
  const data = shown(event.data, 'data', omitted);
  return { id: event.id, name: event.name, data, tenant: event.tenant, receivedAt: iso(event.receivedAt), ...(Object.keys(omitted).length > 0 ? { omitted } : {}) };
}

/** The short form of a job in intake responses. */
export function jobRef(job: JobRow) {
  return { id: job.id, handler: job.handler, queue: job.queue, state: job.state, runAt: iso(job.runAt) };
}
