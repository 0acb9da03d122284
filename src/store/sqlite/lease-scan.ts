/**
 * The lease's reads (lease.ts): the queued candidates in lease order, and the
 * columns a leased job needs that neither its candidate nor the lease update
 * gives (`LeasedColumns`).
 *
 * Rows come back as arrays (better-sqlite3's `raw` mode) and are made into
 * objects here: better-sqlite3 builds a row object property by property in
 * C++, which costs more than SQLite's read. Measured on the real schema, per
 * row of the 23 columns a leased job needs: 7.5 µs as objects, 3.2 µs as
 * arrays turned into object literals; the candidate's 10 columns as objects
 * and the other 13 by id, as this engine read them before, 10.5 µs.
 */
import type Database from 'better-sqlite3';
import { compareLeaseOrder } from '../../core/queue-policy.js';
import type { RawJob } from './rows.js';

/**
 * The columns of a just-leased job that its lease candidate (LeaseCandidate)
 * and the lease update's own values do not already give (lease.ts).
 */
export interface LeasedColumns {
  payload: string;
  event_id: string | null;
  attempts: number;
  max_attempts: number;
  crashes: number;
  lease_seq: number;
  idempotency_key: string | null;
  last_error: string | null;
  dead_reason: RawJob['dead_reason'];
  result: string | null;
  traceparent: string | null;
  created_at: number;
  finished_at: number | null;
}

/**
 * A queued job as the lease scan reads it. With `withColumns` the scan also
 * reads `LeasedColumns`, as they are before the lease's update: it is on the
 * table row already, so they come without a read by id per leased job.
 */
export interface LeaseCandidate extends Partial<LeasedColumns> {
  id: number;
  handler: string;
  priority: number;
  run_at: number;
  priority_ms: number;
  fair_tag: number;
  tenant: string | null;
  queue: string;
  concurrency_key: string | null;
  concurrency_limit: number | null;
}

/** The lease order, exactly as `jobs_lease_order` indexes it (0007_flow_control.sql): SQLite matches index expressions by text. */
const LEASE_ORDER = 'fair_tag, run_at - priority * priority_ms, id';

/** LeaseCandidate's own columns, then (`withColumns`) LeasedColumns': the array indexes below follow this order. */
const CANDIDATE_COLUMNS = 'id, handler, priority, run_at, priority_ms, fair_tag, tenant, queue, concurrency_key, concurrency_limit';
const LEASED_COLUMNS =
  'payload, event_id, attempts, max_attempts, crashes, lease_seq, idempotency_key, last_error, dead_reason, result, traceparent, created_at, finished_at';

type Row = unknown[];
type RawStatement = Database.Statement<unknown[], Row>;

/**
 * A candidate as one object literal, its `LeasedColumns` included: read when the scan had them
 * (`withColumns`), undefined when the row stops after the candidate's own columns. One literal of
 * one shape per leased job: building the candidate and then `Object.assign` of the other columns
 * made a second object and grew the first key by key (~0.5 KiB a job; what a drain allocates per
 * job sets how often it scavenges and so how much it promotes: docs/benchmarks.md, "Worker memory,
 * eighth pass").
 */
function candidate(r: Row): LeaseCandidate {
  return {
    id: r[0] as number,
    handler: r[1] as string,
    priority: r[2] as number,
    run_at: r[3] as number,
    priority_ms: r[4] as number,
    fair_tag: r[5] as number,
    tenant: r[6] as string | null,
    queue: r[7] as string,
    concurrency_key: r[8] as string | null,
    concurrency_limit: r[9] as number | null,
    payload: r[10] as string | undefined,
    event_id: r[11] as string | null | undefined,
    attempts: r[12] as number | undefined,
    max_attempts: r[13] as number | undefined,
    crashes: r[14] as number | undefined,
    lease_seq: r[15] as number | undefined,
    idempotency_key: r[16] as string | null | undefined,
    last_error: r[17] as string | null | undefined,
    dead_reason: r[18] as RawJob['dead_reason'] | undefined,
    result: r[19] as string | null | undefined,
    traceparent: r[20] as string | null | undefined,
    created_at: r[21] as number | undefined,
    finished_at: r[22] as number | null | undefined,
  };
}

export class LeaseScan {
  /** Candidate statements by number of excluded queues, whether they skip tenants and read `LeasedColumns`. */
  readonly #candidates = new Map<string, RawStatement>();
  readonly #leased: RawStatement;

  constructor(private readonly db: Database.Database) {
    // Every column `candidate` reads, so the one function reads both (the candidate's own are cheap beside the payload).
    this.#leased = db.prepare<unknown[], Row>(`SELECT ${CANDIDATE_COLUMNS}, ${LEASED_COLUMNS} FROM jobs WHERE id = ?`).raw(true);
  }

  /** A just-leased job's `LeasedColumns`, read by id after its lease update (so as that update left them). */
  leased(id: number): LeasedColumns {
    return candidate(this.#leased.get(id)!) as LeaseCandidate & LeasedColumns;
  }

  /**
   * Queued jobs for these handlers in lease order (fair turn, then aged
   * priority, then id: core/queue-policy.ts), at most `limit`. One indexed
   * query per handler on `jobs_lease_order`, merged here: a single query over
   * `handler IN (...)` cannot use that order across handlers, and the
   * handler-less order index made an idle handler scan every queued job.
   * `withColumns`: read `LeasedColumns` too.
   */
  candidates(
    handlers: readonly string[],
    excludeQueues: readonly string[],
    limit: number,
    skipTenants: readonly string[] = [],
    withColumns = false,
  ): LeaseCandidate[] {
    const skipping = skipTenants.length > 0;
    const stmt = this.#statement(excludeQueues.length, skipping, withColumns);
    // Tenants at their lease cap (lease.ts) are left out here, in the scan, rather than fetched and passed over in JS.
    const tail = skipping ? [JSON.stringify(skipTenants), limit] : [limit];
    if (handlers.length === 1) return stmt.all(handlers[0], ...excludeQueues, ...tail).map(candidate);
    const all: LeaseCandidate[] = [];
    for (const handler of handlers) for (const row of stmt.all(handler, ...excludeQueues, ...tail)) all.push(candidate(row));
    all.sort(compareLeaseOrder);
    return all.length > limit ? all.slice(0, limit) : all;
  }

  #statement(excluded: number, skipTenants: boolean, withColumns: boolean): RawStatement {
    const slot = `${excluded}:${skipTenants ? 1 : 0}:${withColumns ? 1 : 0}`;
    let stmt = this.#candidates.get(slot);
    if (!stmt) {
      const marks = Array.from({ length: excluded }, () => '?').join(', ');
      stmt = this.db
        .prepare<unknown[], Row>(`
        SELECT ${CANDIDATE_COLUMNS} ${withColumns ? `, ${LEASED_COLUMNS}` : ''} FROM jobs
        WHERE state = 'queued' AND handler = ? ${excluded > 0 ? `AND queue NOT IN (${marks})` : ''}
          ${skipTenants ? 'AND (tenant IS NULL OR tenant NOT IN (SELECT value FROM json_each(?)))' : ''}
        ORDER BY ${LEASE_ORDER}
        LIMIT ?`)
        .raw(true);
      this.#candidates.set(slot, stmt);
    }
    return stmt;
  }
}
