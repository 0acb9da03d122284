/**
 * SQLite rows: JSON columns are TEXT, parsed here; the mapping itself is the
 * engines' shared one (`../rows.ts`).
 */
import type { ApiKeyRow, EventRow, JobRow, LeasedJob } from '../../core/types.js';
import { mapApiKeyRow, mapEventRow, mapJobRow, type ApiKeyColumns, type AttemptColumns, type EventColumns, type JobColumns } from '../rows.js';
import type { LeaseCandidate, LeasedColumns } from './lease-scan.js';
import type { FixedStatements, NewEventValues, NewJobValues } from './statements.js';

export { parseJobId, toAttemptRow, toJson, toQueueStats } from '../rows.js';

/** A `jobs` row; `leased_at` (migration 0009) is when the current or last lease was taken, not part of `JobRow`. */
export interface RawJob extends JobColumns<string> {
  leased_at: number | null;
}
export type RawEvent = EventColumns<string>;
export type RawAttempt = AttemptColumns;
/** Scopes and handler patterns as JSON arrays in TEXT. */
export type RawApiKey = ApiKeyColumns<string>;

function fromJson(text: string | null): unknown {
  return text === null ? null : (JSON.parse(text) as unknown);
}

const parseList = (text: string): string[] => JSON.parse(text) as string[];

export function toJobRow(raw: RawJob): JobRow {
  return mapJobRow(raw, fromJson);
}

export function toEventRow(raw: RawEvent): EventRow {
  return mapEventRow(raw, fromJson);
}

export function toApiKeyRow(raw: RawApiKey): ApiKeyRow {
  return mapApiKeyRow(raw, parseList);
}

/*
 * Rows built in JS instead of read back (the hot path skips RETURNING and
 * `SELECT *`: statements.ts). They must equal what a read would give, so each
 * value is the one SQLite hands back for what was bound, not the bound value;
 * the store conformance suite compares them with getJob's and getEvent's rows
 * (a column added to `jobs` with a default must be added here too).
 */

/**
 * A number as an INTEGER column gives it back: -0 is stored as the integer 0,
 * NaN as NULL (other numbers, fractions and infinities included, unchanged).
 */
export function storedNumber(value: number): number;
export function storedNumber(value: number | null): number | null;
export function storedNumber(value: number | null): number | null {
  return value === null || Number.isNaN(value) ? null : value + 0;
}

/**
 * A string as a TEXT column gives it back: better-sqlite3 writes a lone
 * surrogate (possible in a JSON string such as "\ud800") as U+FFFD, so such a
 * string is put through SQLite (`echo`) to get its stored form.
 */
export function storedText(value: string, echo: Echo): string;
export function storedText(value: string | null, echo: Echo): string | null;
export function storedText(value: string | null, echo: Echo): string | null {
  return value === null || (value as unknown as WellFormed).isWellFormed() ? value : echo.get(value)!.v;
}

type Echo = FixedStatements['echo'];

/** `String.prototype.isWellFormed` (Node 20; not in the ES2022 lib this project compiles against). */
interface WellFormed {
  isWellFormed(): boolean;
}

/**
 * The row a just-inserted job reads back as, from its insert values
 * (statements.ts `NewJobValues`, already in their stored form) and the
 * schema's defaults (migrations 0001, 0006 and 0007: attempts, crashes and
 * lease_seq 0; every other column the insert leaves out NULL).
 */
export function newJobRow(id: number, values: NewJobValues, payload: unknown): JobRow {
  const [handler, queue, state, , eventId, priority, runAt, maxAttempts, idempotencyKey, concurrencyKey, concurrencyLimit, traceparent, tenant] = values;
  const createdAt = values[15];
  const updatedAt = values[16];
  // Same keys in the same order as mapJobRow, so the row serialises identically.
  return {
    id: String(id),
    handler,
    queue,
    state,
    payload,
    eventId,
    priority,
    runAt,
    attempts: 0,
    maxAttempts,
    crashes: 0,
    idempotencyKey,
    concurrencyKey,
    concurrencyLimit,
    leaseToken: null,
    leaseExpiresAt: null,
    leaseKeyId: null,
    workerId: null,
    lastError: null,
    deadReason: null,
    result: null,
    traceparent,
    tenant,
    createdAt,
    updatedAt,
    finishedAt: null,
  };
}

/** The row a just-inserted event reads back as (every column is inserted; `values` in stored form). */
export function newEventRow(values: NewEventValues, data: unknown): EventRow {
  const [id, name, , tenant, receivedAt] = values;
  // Same keys in the same order as mapEventRow.
  return { id, name, data, tenant, receivedAt };
}

/**
 * The lease update's values. `workerId`, `keyId` and `now` in stored form;
 * `token` and `expires` as the engine chose them (a lease has always answered
 * with those, whatever the row holds).
 */
export interface LeaseValues {
  token: string;
  expires: number;
  workerId: string;
  keyId: string | null;
  now: number;
}

/**
 * A just-leased job: the candidate's columns (read in the same write op, so
 * current), the lease update's values, and the rest (`LeasedColumns`), read
 * by the scan before the update (`bump` 1: the update added one to
 * `attempts`) or by id after it (`bump` 0). Keys in mapJobRow's order, then `event`.
 */
export function leasedJob(candidate: LeaseCandidate, rest: LeasedColumns, bump: 0 | 1, lease: LeaseValues, event: EventRow | null): LeasedJob {
  return {
    id: String(candidate.id),
    handler: candidate.handler,
    queue: candidate.queue,
    state: 'running',
    payload: fromJson(rest.payload),
    eventId: rest.event_id,
    priority: candidate.priority,
    runAt: candidate.run_at,
    attempts: rest.attempts + bump,
    maxAttempts: rest.max_attempts,
    crashes: rest.crashes,
    idempotencyKey: rest.idempotency_key,
    concurrencyKey: candidate.concurrency_key,
    concurrencyLimit: candidate.concurrency_limit,
    leaseToken: lease.token,
    leaseExpiresAt: lease.expires,
    leaseKeyId: lease.keyId,
    workerId: lease.workerId,
    lastError: rest.last_error,
    deadReason: rest.dead_reason,
    result: fromJson(rest.result),
    traceparent: rest.traceparent,
    tenant: candidate.tenant ?? null,
    createdAt: rest.created_at,
    updatedAt: lease.now,
    finishedAt: rest.finished_at,
    event,
  };
}
