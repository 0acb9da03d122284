/**
 * Mapping between SQLite rows (snake_case, JSON as TEXT, integer ids) and the
 * domain rows of `core/types.ts` (camelCase, parsed JSON, string ids).
 */
import {
  JOB_STATES,
  type ApiKeyRow,
  type ApiScope,
  type AttemptOutcome,
  type AttemptRow,
  type DeadReason,
  type EventRow,
  type JobRow,
  type JobState,
} from '../../core/types.js';
import type { QueueStats } from '../engine.js';

export interface RawJob {
  id: number;
  handler: string;
  queue: string;
  state: JobState;
  payload: string;
  event_id: string | null;
  priority: number;
  run_at: number;
  attempts: number;
  max_attempts: number;
  crashes: number;
  lease_seq: number;
  idempotency_key: string | null;
  concurrency_key: string | null;
  concurrency_limit: number | null;
  lease_token: string | null;
  lease_expires_at: number | null;
  lease_key_id: string | null;
  worker_id: string | null;
  last_error: string | null;
  dead_reason: DeadReason | null;
  result: string | null;
  traceparent: string | null;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface RawEvent {
  id: string;
  name: string;
  data: string;
  tenant: string | null;
  received_at: number;
}

export interface RawAttempt {
  job_id: number;
  attempt: number;
  worker_id: string;
  started_at: number;
  ended_at: number | null;
  outcome: AttemptOutcome;
  error: string | null;
}

export interface RawApiKey {
  id: string;
  name: string;
  hash: string;
  scopes: string;
  /** JSON array of handler patterns, or NULL (remote handlers only). */
  handlers: string | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

/** JSON for a TEXT column; `undefined` (not representable in JSON) is stored as null. */
export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null) ?? 'null';
}

function fromJson(text: string | null): unknown {
  return text === null ? null : (JSON.parse(text) as unknown);
}

/**
 * A job id from the API as the integer primary key, or null when it cannot name
 * a job (so lookups answer "not found" instead of throwing on garbage).
 */
export function parseJobId(id: string): number | null {
  if (!/^[1-9]\d{0,15}$/.test(id)) return null;
  const n = Number(id);
  return Number.isSafeInteger(n) ? n : null;
}

export function toJobRow(raw: RawJob): JobRow {
  return {
    id: String(raw.id),
    handler: raw.handler,
    queue: raw.queue,
    state: raw.state,
    payload: fromJson(raw.payload),
    eventId: raw.event_id,
    priority: raw.priority,
    runAt: raw.run_at,
    attempts: raw.attempts,
    maxAttempts: raw.max_attempts,
    crashes: raw.crashes,
    idempotencyKey: raw.idempotency_key,
    concurrencyKey: raw.concurrency_key,
    concurrencyLimit: raw.concurrency_limit,
    leaseToken: raw.lease_token,
    leaseExpiresAt: raw.lease_expires_at,
    leaseKeyId: raw.lease_key_id ?? null,
    workerId: raw.worker_id,
    lastError: raw.last_error,
    deadReason: raw.dead_reason,
    result: fromJson(raw.result),
    traceparent: raw.traceparent,
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
    finishedAt: raw.finished_at,
  };
}

export function toEventRow(raw: RawEvent): EventRow {
  return { id: raw.id, name: raw.name, data: fromJson(raw.data), tenant: raw.tenant, receivedAt: raw.received_at };
}

export function toAttemptRow(raw: RawAttempt): AttemptRow {
  return {
    jobId: String(raw.job_id),
    attempt: raw.attempt,
    workerId: raw.worker_id,
    startedAt: raw.started_at,
    endedAt: raw.ended_at,
    outcome: raw.outcome,
    error: raw.error,
  };
}

export function toApiKeyRow(raw: RawApiKey): ApiKeyRow {
  return {
    id: raw.id,
    name: raw.name,
    hash: raw.hash,
    scopes: JSON.parse(raw.scopes) as ApiScope[],
    handlers: raw.handlers === null || raw.handlers === undefined ? null : (JSON.parse(raw.handlers) as string[]),
    createdAt: raw.created_at,
    expiresAt: raw.expires_at,
    revokedAt: raw.revoked_at,
  };
}

/** Per-queue stats from GROUP BY rows; every state is present (0 when none). Sorted by queue name. */
export function toQueueStats(
  counts: Iterable<{ queue: string; state: string; n: number }>,
  oldest: Iterable<{ queue: string; oldest: number }>,
): QueueStats[] {
  const stats = new Map<string, QueueStats>();
  const entry = (queue: string): QueueStats => {
    let row = stats.get(queue);
    if (!row) {
      const zero = Object.fromEntries(JOB_STATES.map((state) => [state, 0])) as Record<JobState, number>;
      row = { queue, counts: zero, oldestQueuedAt: null };
      stats.set(queue, row);
    }
    return row;
  };
  for (const { queue, state, n } of counts) entry(queue).counts[state as JobState] = n;
  for (const row of oldest) entry(row.queue).oldestQueuedAt = row.oldest;
  return [...stats.values()].sort((a, b) => (a.queue < b.queue ? -1 : a.queue > b.queue ? 1 : 0));
}
