/** Wire shapes: rows become JSON with ISO-8601 times. */
import type { StepRow, WaitRow } from '../core/durable.js';
import type { AttemptRow, EventRow, JobRow } from '../core/types.js';
import { interruptState } from '../runtime/job-control.js';
import { OMITTED_TOO_DEEP, tooDeep } from './json-limits.js';

/** The second `isoSecond` starts at (epoch ms), and its ISO-8601 text up to the dot. */
let isoSecond = Number.NaN;
let isoPrefix = '';

/**
 * Epoch ms as ISO-8601, exactly as `Date#toISOString` writes it. Serialising
 * enqueued jobs converts three times per job (runAt, createdAt, updatedAt),
 * and a job's runAt (the intake's clock) and createdAt (the store's) are
 * often a millisecond apart, so a cache of the last instant missed twice per
 * job: instead the text up to the seconds is kept and only the milliseconds
 * are written per call, for any time in the same second as the last one.
 * Anything else (another second, a fractional or invalid time) goes through
 * `Date`, so an invalid time still throws as before.
 */
function iso(ms: number | null): string | null {
  if (ms === null) return null;
  const offset = ms - isoSecond;
  if (offset >= 0 && offset < 1000 && Number.isInteger(ms)) return `${isoPrefix}${offset < 10 ? '00' : offset < 100 ? '0' : ''}${offset}Z`;
  const text = new Date(ms).toISOString();
  // The year has 4 digits (or a sign and 6): the seconds end 4 characters before the end, before ".sssZ".
  isoSecond = Number.isInteger(ms) ? ms - (((ms % 1000) + 1000) % 1000) : Number.NaN;
  isoPrefix = text.slice(0, -4);
  return text;
}

/** `json` with `omitted` added last when a value was left out; the common case allocates nothing more. */
function withOmitted<T extends object>(json: T, omitted: Record<string, string>): T & { omitted?: Record<string, string> } {
  for (const _field in omitted) return Object.assign(json, { omitted });
  return json;
}

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
  return jobShape(job, shown(job.payload, 'payload', omitted), omitted);
}

/**
 * `jobJson` for a job the request answered created from its own body: that
 * payload passed the intake's JSON limits (`limits.maxJsonDepth` is at most
 * MAX_JSON_DEPTH, and the payload sits inside the body), so it cannot be too
 * deep to show and is not walked again, once per job of a 1,000-job batch.
 */
export function createdJobJson(job: JobRow) {
  const omitted: Record<string, string> = {};
  return jobShape(job, job.payload, omitted);
}

function jobShape(job: JobRow, payload: unknown, omitted: Record<string, string>) {
  return withOmitted({
    id: job.id,
    handler: job.handler,
    queue: job.queue,
    state: job.state,
    payload,
    eventId: job.eventId,
    priority: job.priority,
    runAt: iso(job.runAt),
    attemptCount: job.attempts,
    crashCount: job.crashes,
    maxAttempts: job.maxAttempts,
    idempotencyKey: job.idempotencyKey,
    concurrencyKey: job.concurrencyKey,
    tenant: job.tenant,
    leaseExpiresAt: iso(job.leaseExpiresAt),
    workerId: job.workerId,
    lastError: job.lastError,
    deadReason: job.deadReason,
    result: shown(job.result, 'result', omitted),
    createdAt: iso(job.createdAt),
    updatedAt: iso(job.updatedAt),
    finishedAt: iso(job.finishedAt),
  }, omitted);
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

/**
 * A finished durable step as `GET /v1/jobs/:id` shows it: its size, not its
 * result (results may be large or sensitive); `withResult` adds it
 * (`?include=stepResults`).
 */
export function stepJson(step: StepRow, withResult = false) {
  const omitted: Record<string, string> = {};
  return {
    name: step.name,
    seq: step.seq,
    kind: step.kind,
    status: step.timedOut ? ('timed_out' as const) : ('succeeded' as const),
    attempt: step.attempt,
    startedAt: iso(step.startedAt),
    finishedAt: iso(step.finishedAt),
    resultBytes: step.resultBytes,
    ...(withResult ? { result: shown(step.result, 'result', omitted) } : {}),
    ...(Object.keys(omitted).length > 0 ? { omitted } : {}),
  };
}

/** A suspended job's pending wait, in the job's answer: why it waits, until when, and the interrupt to resume. */
export function waitJson(wait: WaitRow) {
  return {
    id: wait.id,
    reason: wait.kind,
    step: wait.step,
    createdAt: iso(wait.createdAt),
    wakeAt: iso(wait.wakeAt),
    events: wait.events,
    match: wait.match,
    interruptId: wait.kind === 'interrupt' ? wait.id : null,
  };
}

/** An interrupt (an `interrupt` wait) as `/v1/interrupts` shows it; a resolved wait reads `resumed`. */
export function interruptJson(wait: WaitRow) {
  return {
    id: wait.id,
    jobId: wait.jobId,
    handler: wait.handler,
    step: wait.step,
    prompt: wait.prompt ?? '',
    schema: wait.schema ?? null,
    state: interruptState(wait.state),
    createdAt: iso(wait.createdAt)!,
    expiresAt: iso(wait.wakeAt),
    resolvedAt: iso(wait.resolvedAt),
    resolvedBy: wait.resolvedBy,
  };
}
