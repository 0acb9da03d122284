/**
 * The rows an intake insert wrote, built from the jobs (and events) it was
 * given instead of read back. Returning every column made the driver decode ~30 columns per
 * job, the payload's JSON among them, to hand back values the caller had just
 * sent: the inserts now return only what the database chose (the id; the
 * keyed insert also a fair queue's turn), and the rest is the input as the
 * database stores it plus the insert's constants. Each row must equal what
 * `getJob` reads back (test/store/postgres-intake-rows.test.ts checks).
 */
import { STRICT_PRIORITY_MS } from '../../core/queue-policy.js';
import type { JobRow, LeasedJob, NewJob } from '../../core/types.js';
import type { IngestItem } from '../engine.js';
import { toJobRow, toJson, type RawEvent, type RawJob } from './rows.js';

/**
 * A fresh job's domain row (`toJobRow` of what the insert wrote). `id`: the
 * identity as text (`id::text`, as `JobRow` carries it).
 */
export function insertedJobRow(job: NewJob, id: string, now: number): JobRow {
  const row = toJobRow(insertedRawJob(job, 0, 0, now));
  row.id = id;
  return row;
}

/** A job its insert leased to `worker` (intake-sql.ts leaseValues), from its inserted row; the row itself keeps saying `queued`, as the API answers. */
export function leasedAtIntake(row: JobRow, token: string, expiresAt: number, worker: string): LeasedJob {
  return { ...row, state: 'running', attempts: 1, leaseToken: token, leaseExpiresAt: expiresAt, leaseKeyId: null, workerId: worker, event: null };
}

/** The row in the engine's raw shape (the keyed insert's callers, ingest and trigger merges, work on those). */
export function insertedRawJob(job: NewJob, id: number, fairTag: number, now: number): RawJob {
  return {
    id,
    handler: storedText(job.handler),
    queue: storedText(job.queue),
    state: job.runAt <= now ? 'queued' : 'scheduled',
    payload: storedJson(job.payload),
    event_id: storedText(job.eventId ?? null),
    priority: storedInteger(job.priority),
    run_at: storedInteger(job.runAt),
    attempts: 0,
    max_attempts: storedInteger(job.maxAttempts),
    crashes: 0,
    lease_seq: 0,
    idempotency_key: storedText(job.idempotencyKey ?? null),
    concurrency_key: storedText(job.concurrencyKey ?? null),
    concurrency_limit: storedInteger(job.concurrencyLimit ?? null),
    lease_token: null,
    lease_expires_at: null,
    lease_key_id: null,
    worker_id: null,
    leased_at: null,
    last_error: null,
    dead_reason: null,
    result: null,
    traceparent: storedText(job.traceparent ?? null),
    tenant: storedText(job.tenant ?? null),
    priority_ms: storedInteger(job.priorityMs ?? STRICT_PRIORITY_MS),
    fair_tag: fairTag,
    created_at: now,
    updated_at: now,
    finished_at: null,
  };
}

/** A new event's row: every column is the input as stored, or the insert's time. */
export function insertedEvent(event: IngestItem['event'], now: number): RawEvent {
  return {
    id: storedText(event.id),
    name: storedText(event.name),
    data: storedJson(event.data),
    tenant: storedText(event.tenant ?? null),
    received_at: now,
  };
}

/** Deeper values are rare (the API caps nesting): they are parsed rather than walked, so the walk's recursion stays bounded. */
const MAX_WALK_DEPTH = 32;

/**
 * A JSON column's value as the driver would parse it back: the caller's own
 * value when JSON keeps it as it is (`keptByJson`), so the common payload is
 * never parsed; otherwise its JSON (as stored) parsed. The row then shares
 * the caller's object, as its lifecycle events already do.
 */
export function storedJson(value: unknown): unknown {
  return keptByJson(value, 0) ? value : JSON.parse(toJson(value));
}

/**
 * True when `JSON.parse(JSON.stringify(value))` equals `value`: null,
 * strings, booleans, finite numbers other than -0, and plain arrays (no
 * holes) and plain objects (Object's prototype) of those. Not looked for,
 * being what no JSON text parses into: symbol keys and non-index properties
 * on an array.
 */
export function keptByJson(value: unknown, depth: number): boolean {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && !Object.is(value, -0);
    case 'object':
      break;
    default:
      return false; // undefined, function, symbol, bigint
  }
  if (value === null) return true;
  if (depth >= MAX_WALK_DEPTH) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === Array.prototype) {
    const items = value as readonly unknown[];
    // A hole reads as undefined: refused, as JSON turns it into null.
    for (let i = 0; i < items.length; i++) if (!keptByJson(items[i], depth + 1)) return false;
    return true;
  }
  // Dates, Maps, class instances, boxed primitives: JSON changes them (toJSON, {});
  // a null-prototype object comes back with Object's.
  if (proto !== Object.prototype) return false;
  const record = value as Record<string, unknown>;
  for (const key in record) if (!keptByJson(record[key], depth + 1)) return false;
  return true;
}

/** Any UTF-16 surrogate (paired or not): a lone one cannot be encoded in UTF-8. */
const SURROGATE = /[\uD800-\uDFFF]/;

/**
 * Text as the database hands it back: the driver encodes parameters as UTF-8,
 * which turns a lone surrogate (JSON.parse makes one from "\ud800") into
 * U+FFFD. The same round trip, for the rare text that has surrogates at all.
 */
export function storedText<T extends string | null>(text: T): T {
  return text !== null && SURROGATE.test(text) ? (Buffer.from(text, 'utf8').toString('utf8') as T) : text;
}

/** An integer column's value: -0 is stored as 0 (every other value the insert accepts is kept as it is). */
function storedInteger<T extends number | null>(n: T): T {
  return n === 0 ? (0 as T) : n;
}
