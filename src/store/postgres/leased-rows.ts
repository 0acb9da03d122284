/**
 * The fast lease's answer read as arrays (pg's `rowMode: 'array'`), each
 * straight into a `LeasedJob`. As objects, the driver builds every row by
 * copying a ~30-key template and storing each column by name, and
 * `toLeasedJob` then copies the row into the job: two objects per leased
 * job where one will do (docs/benchmarks.md, sixth pass).
 *
 * `FAST_ANSWER` is the statement's select list (lease.ts builds it from this
 * list), so a column's place here is its place in the row.
 */
import type { DeadReason, EventRow, LeasedJob } from '../../core/types.js';
import type { LeaseFacts } from './rows.js';

export const FAST_ANSWER = [
  'keyed_waiting',
  'id',
  'handler',
  'queue',
  'payload',
  'event_id',
  'priority',
  'run_at',
  'attempts',
  'max_attempts',
  'crashes',
  'idempotency_key',
  'concurrency_key',
  'concurrency_limit',
  'lease_token',
  'lease_expires_at',
  'last_error',
  'dead_reason',
  'result',
  'traceparent',
  'tenant',
  'created_at',
  'finished_at',
  'started_now',
  'e_name',
  'e_data',
  'e_tenant',
  'e_received_at',
] as const;

type Column = (typeof FAST_ANSWER)[number];

/** Each column's place in a row. */
export const AT = Object.freeze(Object.fromEntries(FAST_ANSWER.map((name, i) => [name, i]))) as Readonly<Record<Column, number>>;

/** The select list over `l` (the leased rows) and `e` (their events). */
export function fastAnswerColumns(): string {
  return FAST_ANSWER.map((name) => {
    if (name === 'keyed_waiting') return '(SELECT waiting FROM keyed) AS keyed_waiting';
    if (name.startsWith('e_')) return `e.${name.slice(2)} AS ${name}`;
    return `l.${name}`;
  }).join(', ');
}

type Row = readonly unknown[];

/** A leased row (not the empty row the statement answers with when it leased nothing). */
export const isLeased = (row: Row): boolean => row[AT.id] !== null;

export const startedNow = (row: Row): boolean => row[AT.started_now] === true;

/**
 * The job, its keys in `mapJobRow`'s order then `event` (as `toLeasedJob`
 * makes it). What the call set itself (state, worker, key, times) comes from
 * `lease`, not the row.
 */
export function leasedJobOf(row: Row, lease: LeaseFacts): LeasedJob {
  const eventId = row[AT.event_id] as string | null;
  const eventName = row[AT.e_name] as string | null;
  const event: EventRow | null =
    eventId === null || eventName === null
      ? null
      : {
          id: eventId,
          name: eventName,
          data: row[AT.e_data],
          tenant: row[AT.e_tenant] as string | null,
          receivedAt: (row[AT.e_received_at] as number | null) ?? 0,
        };
  return {
    id: String(row[AT.id]),
    handler: row[AT.handler] as string,
    queue: row[AT.queue] as string,
    state: 'running',
    payload: row[AT.payload],
    eventId,
    priority: row[AT.priority] as number,
    runAt: row[AT.run_at] as number,
    attempts: row[AT.attempts] as number,
    maxAttempts: row[AT.max_attempts] as number,
    crashes: row[AT.crashes] as number,
    idempotencyKey: row[AT.idempotency_key] as string | null,
    concurrencyKey: row[AT.concurrency_key] as string | null,
    concurrencyLimit: row[AT.concurrency_limit] as number | null,
    leaseToken: (row[AT.lease_token] as string | null) ?? '',
    leaseExpiresAt: (row[AT.lease_expires_at] as number | null) ?? 0,
    leaseKeyId: lease.keyId,
    workerId: lease.worker,
    lastError: row[AT.last_error] as string | null,
    deadReason: row[AT.dead_reason] as DeadReason | null,
    result: row[AT.result],
    traceparent: row[AT.traceparent] as string | null,
    tenant: (row[AT.tenant] as string | null) ?? null,
    createdAt: row[AT.created_at] as number,
    updatedAt: lease.now,
    finishedAt: row[AT.finished_at] as number | null,
    event,
  };
}
