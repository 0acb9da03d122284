/**
 * Mapping between an engine's rows (snake_case columns, integer job ids) and
 * the domain rows of `core/types.ts` (camelCase, string ids), shared by both
 * engines. The one difference between them is how a JSON column arrives: SQLite
 * hands back TEXT to parse, the PostgreSQL driver hands back the parsed value,
 * so each mapper takes the column type as a parameter and a `decode` for it.
 * Each engine binds these in its own `rows.ts`.
 */
import { JOB_STATES, type ApiKeyRow, type ApiScope, type AttemptOutcome, type AttemptRow, type DeadReason, type EventRow, type JobRow, type JobState } from '../core/types.js';
import type { QueueStats } from './roles/job-reads.js';

/** A `jobs` row; `J` is how a JSON column arrives from the driver. */
export interface JobColumns<J> {
  id: number;
  handler: string;
  queue: string;
  state: JobState;
  payload: J;
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
  result: J | null;
  traceparent: string | null;
  tenant: string | null;
  /** Lease order stamps (core/queue-policy.ts). */
  priority_ms: number;
  fair_tag: number;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
}

export interface EventColumns<J> {
  id: string;
  name: string;
  data: J;
  tenant: string | null;
  received_at: number;
}

export interface AttemptColumns {
  job_id: number;
  attempt: number;
  worker_id: string;
  started_at: number;
  ended_at: number | null;
  outcome: AttemptOutcome;
  error: string | null;
}

/** An `api_keys` row; `L` is how a list column (scopes, handler patterns) arrives. */
export interface ApiKeyColumns<L> {
  id: string;
  name: string;
  hash: string;
  scopes: L;
  /** Handler patterns, or NULL (remote handlers only). */
  handlers: L | null;
  created_at: number;
  expires_at: number | null;
  revoked_at: number | null;
}

/** JSON text for a JSON column or parameter; `undefined` (not representable in JSON) is stored as null. */
export function toJson(value: unknown): string {
  return JSON.stringify(value ?? null) ?? 'null';
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

/** @example mapJobRow(raw, (text) => JSON.parse(text)) */
export function mapJobRow<J>(raw: JobColumns<J>, decode: (value: J | null) => unknown): JobRow {
  return {
    id: String(raw.id),
    handler: raw.handler,
    queue: raw.queue,
    state: raw.state,
    payload: decode(raw.payload),
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
    result: decode(raw.result),
    traceparent: raw.traceparent,
    tenant: raw.tenant ?? null,
    createdAt: raw.created_at,
    updatedAt: raw.updated_at,
    finishedAt: raw.finished_at,
  };
}

export function mapEventRow<J>(raw: EventColumns<J>, decode: (value: J) => unknown): EventRow {
  return { id: raw.id, name: raw.name, data: decode(raw.data), tenant: raw.tenant, receivedAt: raw.received_at };
}

export function toAttemptRow(raw: AttemptColumns): AttemptRow {
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

export function mapApiKeyRow<L>(raw: ApiKeyColumns<L>, decodeList: (value: L) => string[]): ApiKeyRow {
  return {
    id: raw.id,
    name: raw.name,
    hash: raw.hash,
    scopes: decodeList(raw.scopes) as ApiScope[],
    handlers: raw.handlers === null || raw.handlers === undefined ? null : decodeList(raw.handlers),
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
