/**
 * The parameters of the PostgreSQL job inserts (intake-sql.ts),
 * encoded once per batch: encoding them is most of an enqueue's cost in this
 * process.
 */
import { STRICT_PRIORITY_MS } from '../../core/queue-policy.js';
import type { NewJob } from '../../core/types.js';
import type { EnqueueOptions } from '../engine.js';
import { arrayElement, arrayParam } from './connection.js';

/** Queues whose jobs take turns by tenant (QueueLimit.fairness). */
export function fairQueues(options: EnqueueOptions | undefined): string[] {
  return [...(options?.queueLimits ?? [])].filter(([, limit]) => limit.fairness === 'tenant').map(([queue]) => queue);
}

/** The parameters of INSERT_JOBS ($1..$15) for these jobs: their columns (`jobColumns`) and the fair queues. */
export function insertParams(rows: readonly NewJob[], now: number, options: EnqueueOptions | undefined): unknown[] {
  return [...jobColumns(rows, now), arrayParam(fairQueues(options))];
}

/**
 * The jobs' columns and the time ($1..$14 of every job insert). Encoding them
 * is most of an enqueue's cost in this process, so the payloads go as one
 * JSON array (one JSON.stringify, the same text per payload as `toJson`'s,
 * nothing to escape) and the other columns as array literals written here
 * (`columnParam`).
 */
export function jobColumns(rows: readonly NewJob[], now: number): unknown[] {
  return [
    columnParam(rows, (j) => j.handler),
    columnParam(rows, (j) => j.queue),
    JSON.stringify(rows.map((j) => j.payload)),
    columnParam(rows, (j) => j.eventId),
    columnParam(rows, (j) => j.priority),
    columnParam(rows, (j) => j.runAt),
    columnParam(rows, (j) => j.maxAttempts),
    columnParam(rows, (j) => j.idempotencyKey),
    columnParam(rows, (j) => j.concurrencyKey),
    columnParam(rows, (j) => j.concurrencyLimit),
    columnParam(rows, (j) => j.traceparent),
    now,
    columnParam(rows, (j) => j.tenant),
    columnParam(rows, (j) => j.priorityMs ?? STRICT_PRIORITY_MS),
  ];
}

/**
 * One column of `rows` as an array literal, written as `arrayParam` writes
 * one, with two savings that matter at hundreds of jobs per statement: a
 * value like the one before it (the batch's handler, queue, run time) reuses
 * its text, and a column of nulls only is sent empty ('{}'), as the insert
 * pads a shorter array with nulls.
 */
function columnParam(rows: readonly NewJob[], pick: (job: NewJob) => string | number | null | undefined): string {
  let literal = '';
  let last: string | number | null | undefined;
  let text = '';
  let allNull = true;
  for (let i = 0; i < rows.length; i++) {
    const value = pick(rows[i]!);
    if (i === 0 || value !== last) {
      last = value;
      text = arrayElement(value);
      if (value !== null && value !== undefined) allNull = false;
    }
    literal += i === 0 ? text : `,${text}`;
  }
  return allNull ? '{}' : `{${literal}}`;
}
