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
  };
}

/** Columns of CANDIDATE_COLUMNS: where LEASED_COLUMNS start in a `withColumns` row. */
const CANDIDATE_WIDTH = 10;

function candidateWithColumns(r: Row): LeaseCandidate & LeasedColumns {
  return Object.assign(candidate(r), leasedColumns(r, CANDIDATE_WIDTH));
}

/** LEASED_COLUMNS from row `r`, starting at index `at`. */
function leasedColumns(r: Row, at = 0): LeasedColumns {
  return {
    payload: r[at] as string,
    event_id: r[at + 1] as string | null,
    attempts: r[at + 2] as number,
    max_attempts: r[at + 3] as number,
    crashes: r[at + 4] as number,
    lease_seq: r[at + 5] as number,
    idempotency_key: r[at + 6] as string | null,
    last_error: r[at + 7] as string | null,
    dead_reason: r[at + 8] as RawJob['dead_reason'],
    result: r[at + 9] as string | null,
    traceparent: r[at + 10] as string | null,
    created_at: r[at + 11] as number,
    finished_at: r[at + 12] as number | null,
  };
}

export class LeaseScan {
  /** Candidate statements by number of excluded queues, whether they skip tenants and read `LeasedColumns`. */
  readonly #candidates = new Map<string, RawStatement>();
  readonly #leased: RawStatement;

  constructor(private readonly db: Database.Database) {
    this.#leased = db.prepare<unknown[], Row>(`SELECT ${LEASED_COLUMNS} FROM jobs WHERE id = ?`).raw(true);
  }

  /** A just-leased job's `LeasedColumns`, read by id after its lease update (so as that update left them). */
  leased(id: number): LeasedColumns {
    return leasedColumns(this.#leased.get(id)!);
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
    const toCandidate = withColumns ? candidateWithColumns : candidate;
    // Tenants at their lease cap (lease.ts) are left out here, in the scan, rather than fetched and passed over in JS.
    const tail = skipping ? [JSON.stringify(skipTenants), limit] : [limit];
    if (handlers.length === 1) return stmt.all(handlers[0], ...excludeQueues, ...tail).map(toCandidate);
    const all: LeaseCandidate[] = [];
    for (const handler of handlers) for (const row of stmt.all(handler, ...excludeQueues, ...tail)) all.push(toCandidate(row));
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
