/**
 * Every SQL statement the SQLite engine runs, prepared once per connection and
 * reused (preparing is several times the cost of running these statements).
 * Queries whose shape depends on the call (IN lists, optional filters) are
 * prepared on first use of each shape and cached.
 *
 * Fenced updates match (id, lease_token, state = 'running'), so a stale lease
 * holder changes nothing. Hot-path writes have no RETURNING at all: SQLite's
 * RETURNING costs several times the write itself, even for four columns
 * (measured with better-sqlite3: a completion 43 µs against 10 µs, an insert
 * 27 µs against 11 µs). They `run()` and look at `changes`; what the engine
 * still needs is read by rowid in the same write op (`fencedRow`, lease-scan.ts:
 * a by-id SELECT of two columns is ~3 µs, `SELECT *` ~13 µs, the cost being
 * mostly one JS property per column), or known in JS (intake.ts builds the
 * new row). Hot statements take positional parameters: binding named ones
 * looks each name up on the object (measured: a completion 18 µs named
 * against 13 µs positional).
 */
import type Database from 'better-sqlite3';
import { assertPayloadPath } from '../../core/payload-filter.js';
import type { AttemptOutcome } from '../../core/types.js';
import type { JobFilter } from '../engine.js';
import { JobInserts } from './job-inserts.js';
import { lazyStatements } from './lazy-statements.js';
import { LeaseScan } from './lease-scan.js';
import type { RawApiKey, RawAttempt, RawEvent, RawJob } from './rows.js';

/**
 * `insertJob`'s parameters in column order: handler, queue, state, payload,
 * event_id, priority, run_at, max_attempts, idempotency_key, concurrency_key,
 * concurrency_limit, traceparent, tenant, priority_ms, fair_tag (the tenant's
 * turn in a fair queue, 0 outside one), created_at, updated_at.
 */
export type NewJobValues = [
  handler: string,
  queue: string,
  state: 'scheduled' | 'queued',
  payload: string,
  eventId: string | null,
  priority: number,
  runAt: number,
  maxAttempts: number,
  idempotencyKey: string | null,
  concurrencyKey: string | null,
  concurrencyLimit: number | null,
  traceparent: string | null,
  tenant: string | null,
  priorityMs: number,
  fairTag: number,
  createdAt: number,
  updatedAt: number,
];

/** The columns `insertJob` (and job-inserts.ts, several rows a statement) fills, in `NewJobValues` order. */
export const JOB_INSERT_COLUMNS = `(handler, queue, state, payload, event_id, priority, run_at, max_attempts,
  idempotency_key, concurrency_key, concurrency_limit, traceparent, tenant, priority_ms, fair_tag, created_at, updated_at)`;
/** One row's placeholders for `JOB_INSERT_COLUMNS`. */
export const JOB_INSERT_ROW = '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';

/** `insertEvent`'s parameters in column order. */
export type NewEventValues = [id: string, name: string, data: string, tenant: string | null, receivedAt: number];

type Params<P> = P extends unknown[] ? P : [P];

/**
 * The part of a better-sqlite3 statement the engine uses, typed by its
 * parameters `P` (a tuple, or one object of named parameters) and row `R`.
 */
export interface Stmt<P extends unknown[] | object, R = unknown> {
  run(...params: Params<P>): { changes: number; lastInsertRowid: number | bigint };
  get(...params: Params<P>): R | undefined;
  all(...params: Params<P>): R[];
  iterate(...params: Params<P>): IterableIterator<R>;
}

const JOB_COLUMNS_RESET_LEASE = 'lease_token = NULL, lease_expires_at = NULL';
const FENCE = "id = @id AND lease_token = @token AND state = 'running'";
/** FENCE with positional parameters (id, token), last in the statement's parameters. */
const FENCE_AT_END = "id = ? AND lease_token = ? AND state = 'running'";
/** The current lease's handler started (migration 0005). */
const STARTED = 'started_seq = lease_seq';

/**
 * What a settled job's attempt row and queue-depth effects need, read after
 * its fenced update matched (which leaves these columns as the lease set them).
 */
export interface FencedRow {
  queue: string;
  lease_seq: number;
  worker_id: string | null;
  leased_at: number | null;
}

/** Every fixed statement, each prepared at its first use (lazy-statements.ts). */
function prepareFixed(db: Database.Database) {
  return lazyStatements(db, (p) => ({
    // No RETURNING: intake.ts builds the row (newJobRow) from these values and the schema's defaults.
    insertJob: p<NewJobValues>(`INSERT INTO jobs ${JOB_INSERT_COLUMNS} VALUES ${JOB_INSERT_ROW}`),
    // What a TEXT column hands back for a JS string: better-sqlite3 writes a lone surrogate as U+FFFD (rows.ts storedText).
    echo: p<[string], { v: string }>('SELECT ? AS v'),
    jobByIdempotencyKey: p<[string, string], RawJob>('SELECT * FROM jobs WHERE handler = ? AND idempotency_key = ?'),
    // Fair queues (intake.ts fairTag): `jobs_fair_head` and `jobs_fair_tail`. SQLite uses a partial index only when
    // the query repeats its WHERE terms word for word, hence `state IN (...)` beside the narrower `state = ...`.
    fairHead: p<{ queue: string }, { fair_tag: number }>(`
      SELECT coalesce(
        (SELECT fair_tag FROM jobs WHERE queue = @queue AND state IN ('queued', 'scheduled') AND fair_tag > 0 AND state = 'queued'
         ORDER BY fair_tag LIMIT 1),
        (SELECT fair_tag FROM jobs WHERE queue = @queue AND state IN ('queued', 'scheduled') AND fair_tag > 0 AND state = 'scheduled'
         ORDER BY fair_tag DESC LIMIT 1),
        0) AS fair_tag`),
    fairTail: p<[string, string | null], { fair_tag: number }>(
      "SELECT fair_tag FROM jobs WHERE queue = ? AND tenant IS ? AND state IN ('queued', 'scheduled') AND fair_tag > 0 ORDER BY fair_tag DESC LIMIT 1",
    ),
    // Through the partial indexes (a read of the backlog only): by rowid, min(id) walks every older finished job first.
    oldestWaitingJobId: p<[], { id: number | null }>(`
      SELECT min(id) AS id FROM (
        SELECT min(id) AS id FROM jobs INDEXED BY jobs_lease_order WHERE state = 'queued'
        UNION ALL SELECT min(id) FROM jobs INDEXED BY jobs_scheduled WHERE state = 'scheduled')`),
    newestJobId: p<[], { id: number | null }>('SELECT max(id) AS id FROM jobs'),
    // `keep_turns` 0: the queue is no longer fair, so turns are cleared (a job keeping one would queue behind every new job).
    restampWindow: p<{ queue: string; priority_ms: number; keep_turns: 0 | 1; after: number; until: number }>(`
      UPDATE jobs SET priority_ms = @priority_ms, fair_tag = CASE WHEN @keep_turns = 1 THEN fair_tag ELSE 0 END
      WHERE id > @after AND id <= @until AND queue = @queue AND state IN ('queued', 'scheduled')
        AND (priority_ms <> @priority_ms OR (@keep_turns = 0 AND fair_tag > 0))`),
    jobById: p<[number], RawJob>('SELECT * FROM jobs WHERE id = ?'),
    fencedRow: p<[number], FencedRow>('SELECT queue, lease_seq, worker_id, leased_at FROM jobs WHERE id = ?'),
    jobExists: p<[number], { one: 1 }>('SELECT 1 AS one FROM jobs WHERE id = ?'),
    jobsByEvent: p<[string], RawJob>('SELECT * FROM jobs WHERE event_id = ? ORDER BY id'),

    // No RETURNING: intake.ts builds the row (newEventRow).
    insertEvent: p<NewEventValues>('INSERT INTO events (id, name, data, tenant, received_at) VALUES (?, ?, ?, ?, ?)'),
    eventById: p<[string], RawEvent>('SELECT * FROM events WHERE id = ?'),

    // No RETURNING: lease.ts has the rest from the candidate's read (lease-scan.ts). No attempt row either:
    // the running attempt is the job row (lease_seq, worker_id, leased_at; migration 0009), its row written once at its end.
    leaseJob: p<[token: string, expires: number, worker: string, key: string | null, leasedAt: number, now: number, id: number]>(`
      UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_seq = lease_seq + 1,
        lease_token = ?, lease_expires_at = ?, worker_id = ?, lease_key_id = ?, leased_at = ?, updated_at = ?
      WHERE id = ? AND state = 'queued'`),
    // The same, its handler marked started by the lease itself (`LeaseRequest.start`): no mark of its own later.
    leaseJobStarted: p<[token: string, expires: number, worker: string, key: string | null, leasedAt: number, now: number, id: number]>(`
      UPDATE jobs SET state = 'running', attempts = attempts + 1, lease_seq = lease_seq + 1, started_seq = lease_seq + 1,
        lease_token = ?, lease_expires_at = ?, worker_id = ?, lease_key_id = ?, leased_at = ?, updated_at = ?
      WHERE id = ? AND state = 'queued'`),
    runningWithKey: p<[string], { n: number }>(
      "SELECT count(*) AS n FROM jobs WHERE state = 'running' AND concurrency_key = ?",
    ),
    // Lease caps (core/lease-caps.ts), each on its partial index of running jobs.
    runningOfTenant: p<[string], { queue: string; n: number }>(
      "SELECT queue, count(*) AS n FROM jobs WHERE state = 'running' AND tenant = ? GROUP BY queue",
    ),
    runningOfWorker: p<[string], { n: number }>("SELECT count(*) AS n FROM jobs WHERE state = 'running' AND worker_id = ?"),
    runningOfLeaseKey: p<[string], { n: number }>("SELECT count(*) AS n FROM jobs WHERE state = 'running' AND lease_key_id = ?"),
    // A finished attempt, written once when it ends (fenced.ts `endAttempt`).
    insertAttempt: p<[jobId: number, attempt: number, worker: string, startedAt: number, endedAt: number, outcome: AttemptOutcome, error: string | null]>(
      'INSERT INTO attempts (job_id, attempt, worker_id, started_at, ended_at, outcome, error) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    // The running attempt is the job row itself (as on PostgreSQL); finished ones are rows in `attempts`.
    // `updated_at`: a job running since before migration 0009 without a 'running' row to take its start from.
    attemptsByJob: p<[number, number], RawAttempt>(`
      SELECT job_id, attempt, worker_id, started_at, ended_at, outcome, error FROM attempts WHERE job_id = ?
      UNION ALL
      SELECT id, lease_seq, coalesce(worker_id, ''), coalesce(leased_at, updated_at), NULL, 'running', NULL
      FROM jobs WHERE id = ? AND state = 'running'
      ORDER BY attempt`),

    // The fenced transitions: `run().changes` says whether the lease still held (fenced.ts).
    heartbeat: p<[expires: number, now: number, id: number, token: string]>(`
      UPDATE jobs SET lease_expires_at = ?, updated_at = ? WHERE ${FENCE_AT_END}`),
    complete: p<[result: string, finishedAt: number, updatedAt: number, id: number, token: string]>(`
      UPDATE jobs SET state = 'succeeded', result = ?, finished_at = ?, updated_at = ?, ${JOB_COLUMNS_RESET_LEASE}
      WHERE ${FENCE_AT_END}`),
    failRetry: p<[state: 'queued' | 'scheduled', runAt: number, error: string, crashed: 0 | 1, now: number, id: number, token: string]>(`
      UPDATE jobs SET state = ?, run_at = ?, last_error = ?, crashes = crashes + ?, updated_at = ?, ${JOB_COLUMNS_RESET_LEASE}
      WHERE ${FENCE_AT_END}`),
    failDead: p<[reason: string, error: string, crashed: 0 | 1, finishedAt: number, updatedAt: number, id: number, token: string]>(`
      UPDATE jobs SET state = 'dead', dead_reason = ?, last_error = ?, crashes = crashes + ?, finished_at = ?, updated_at = ?,
        ${JOB_COLUMNS_RESET_LEASE}
      WHERE ${FENCE_AT_END}`),
    // Rare (graceful shutdown): named parameters, each used twice.
    release: p<{ id: number; token: string; now: number; runAt: number }>(`
      UPDATE jobs SET state = CASE WHEN @runAt > @now THEN 'scheduled' ELSE 'queued' END,
        run_at = CASE WHEN @runAt > @now THEN @runAt ELSE run_at END,
        attempts = max(attempts - 1, 0), updated_at = @now,
        ${JOB_COLUMNS_RESET_LEASE}
      WHERE ${FENCE}`),

    stageDue: p<{ now: number; limit: number }, { queue: string; handler: string }>(`
      UPDATE jobs SET state = 'queued', updated_at = @now
      WHERE id IN (SELECT id FROM jobs WHERE state = 'scheduled' AND run_at <= @now ORDER BY run_at LIMIT @limit)
      RETURNING queue, handler`),
    nextDue: p<[], { t: number | null }>("SELECT min(run_at) AS t FROM jobs WHERE state = 'scheduled'"),
    anyExpiredLease: p<[number], { found: 1 }>("SELECT 1 AS found FROM jobs WHERE state = 'running' AND lease_expires_at < ? LIMIT 1"),
    expiredLeases: p<[number, number], { id: number; expired_at: number }>(
      "SELECT id, lease_expires_at AS expired_at FROM jobs WHERE state = 'running' AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?",
    ),
    workerLeases: p<[string], { id: number }>("SELECT id FROM jobs WHERE state = 'running' AND worker_id = ?"),
    allRunning: p<[], { id: number }>("SELECT id FROM jobs WHERE state = 'running'"),
    // Mark the lease's handler as started (before it runs): only then does a reclaim count a crash.
    // No RETURNING: nothing but "did it match" is needed, and this runs once per job.
    start: p<[id: number, token: string]>(`UPDATE jobs SET started_seq = lease_seq WHERE ${FENCE_AT_END}`),
    // Old column values on the right-hand side: `crashes + 1` is the new count.
    // A lease whose handler never started (leased ahead, then its node died)
    // goes back as if released: no crash, no attempt spent.
    reclaim: p<{ id: number; poisonAfter: number; now: number }, RawJob & { started: 0 | 1 }>(`
      UPDATE jobs SET crashes = crashes + (${STARTED}),
        attempts = CASE WHEN ${STARTED} THEN attempts ELSE max(attempts - 1, 0) END,
        state = CASE WHEN ${STARTED} AND crashes + 1 >= @poisonAfter THEN 'dead' ELSE 'queued' END,
        dead_reason = CASE WHEN ${STARTED} AND crashes + 1 >= @poisonAfter THEN 'poison' ELSE NULL END,
        finished_at = CASE WHEN ${STARTED} AND crashes + 1 >= @poisonAfter THEN @now ELSE NULL END,
        updated_at = @now, ${JOB_COLUMNS_RESET_LEASE}
      WHERE id = @id AND state = 'running'
      RETURNING *, ${STARTED} AS started`),

    cancel: p<{ id: number; now: number }, RawJob>(`
      UPDATE jobs SET state = 'cancelled', finished_at = @now, updated_at = @now, ${JOB_COLUMNS_RESET_LEASE}
      WHERE id = @id AND state IN ('scheduled', 'queued', 'running', 'suspended')
      RETURNING *`),
    retry: p<{ id: number; now: number }, RawJob>(`
      UPDATE jobs SET state = 'queued', attempts = 0, crashes = 0, dead_reason = NULL, finished_at = NULL,
        result = NULL, run_at = @now, updated_at = @now
      WHERE id = @id AND state IN ('dead', 'cancelled')
      RETURNING *`),

    // ON DELETE CASCADE removes the jobs' attempts in the same statement.
    pruneFinished: p<[number, number]>(`
      DELETE FROM jobs WHERE id IN (
        SELECT id FROM jobs WHERE state IN ('succeeded', 'cancelled') AND finished_at < ? LIMIT ?)`),
    pruneDead: p<[number, number]>(`
      DELETE FROM jobs WHERE id IN (SELECT id FROM jobs WHERE state = 'dead' AND finished_at < ? LIMIT ?)`),
    pruneEvents: p<[number, number]>(`
      DELETE FROM events WHERE id IN (
        SELECT e.id FROM events e
        WHERE e.received_at < ? AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.event_id = e.id)
        LIMIT ?)`),

    unfinishedByQueue: p<[], { queue: string; n: number }>(
      "SELECT queue, count(*) AS n FROM jobs WHERE state IN ('scheduled', 'queued', 'running') GROUP BY queue",
    ),
    countsByQueue: p<[], { queue: string; state: string; n: number }>(
      'SELECT queue, state, count(*) AS n FROM jobs GROUP BY queue, state',
    ),
    oldestQueued: p<[], { queue: string; oldest: number }>(
      "SELECT queue, min(run_at) AS oldest FROM jobs WHERE state = 'queued' GROUP BY queue",
    ),

    insertKey: p<[string, string, string, string, string | null, number, number | null, number | null]>(
      'INSERT INTO api_keys (id, name, hash, scopes, handlers, created_at, expires_at, revoked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    keyByHash: p<[string], RawApiKey>('SELECT * FROM api_keys WHERE hash = ?'),
    listKeys: p<[], RawApiKey>('SELECT * FROM api_keys ORDER BY created_at, id'),
    revokeKey: p<[number, string]>('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL'),

    getMeta: p<[string], { value: string }>('SELECT value FROM meta WHERE key = ?'),
    setMeta: p<[string, string]>(
      'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
    ),
    ping: p<[], { one: 1 }>('SELECT 1 AS one'),
  }));
}

export type FixedStatements = ReturnType<typeof prepareFixed>;

export class SqliteStatements {
  readonly fixed: FixedStatements;
  /** The lease's reads (lease-scan.ts). */
  readonly lease: LeaseScan;
  /** Plain jobs of one enqueue, several rows a statement (intake.ts `insertJobs`). */
  readonly jobInserts: JobInserts;
  readonly #listJobs = new Map<string, Database.Statement<unknown[], unknown>>();

  constructor(private readonly db: Database.Database) {
    this.fixed = prepareFixed(db);
    this.lease = new LeaseScan(db);
    this.jobInserts = new JobInserts(db, this.fixed.insertJob);
  }

  listJobs(filter: JobFilter, beforeId: number | null): RawJob[] {
    const more = { where: [] as string[], params: [] as unknown[] };
    const add = (condition: string, ...values: unknown[]) => {
      more.where.push(condition);
      more.params.push(...values);
    };
    if (filter.createdAfter !== undefined) add('created_at >= ?', filter.createdAfter);
    if (filter.createdBefore !== undefined) add('created_at < ?', filter.createdBefore);
    for (const { path, value } of filter.payload ?? []) {
      // The path is a literal (segments checked by assertPayloadPath) so that an expression index
      // on json_extract(payload, '$.<path>') matches; a numeric value also matches the JSON number.
      assertPayloadPath(path);
      const expr = `json_extract(payload, '$.${path.join('.')}')`;
      const number = Number(value);
      const numeric = value.trim() !== '' && Number.isFinite(number);
      if (numeric) add(`${expr} IN (?, ?)`, value, number);
      else add(`${expr} = ?`, value);
    }
    return keysetRows<RawJob>(
      this.db,
      this.#listJobs,
      'jobs',
      { state: filter.state, handler: filter.handler, queue: filter.queue, event_id: filter.eventId },
      beforeId,
      filter.limit,
      more,
    );
  }
}

/**
 * `SELECT * FROM table` with equality filters (undefined: no filter), newest
 * first by id, keyset cursor `id < before`; one prepared statement per shape,
 * kept in `cache`.
 */
export function keysetRows<R>(
  db: Database.Database,
  cache: Map<string, Database.Statement<unknown[], unknown>>,
  table: string,
  equals: Record<string, unknown>,
  before: unknown,
  limit: number,
  /** Further conditions with `?` placeholders, and their parameters in order. */
  more: { where: string[]; params: unknown[] } = { where: [], params: [] },
): R[] {
  const where: string[] = [];
  const params: unknown[] = [];
  for (const [column, value] of Object.entries(equals)) {
    if (value === undefined) continue;
    where.push(`${column} = ?`);
    params.push(value);
  }
  where.push(...more.where);
  params.push(...more.params);
  if (before !== null && before !== undefined) {
    where.push('id < ?');
    params.push(before);
  }
  const shape = `${table}:${where.join(' AND ')}`;
  let stmt = cache.get(shape);
  if (!stmt) {
    // Payload paths make the shapes open-ended: keep the cache bounded.
    if (cache.size >= 200) cache.clear();
    stmt = db.prepare<unknown[], unknown>(`SELECT * FROM ${table} ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT ?`);
    cache.set(shape, stmt);
  }
  return stmt.all(...params, Math.max(0, Math.floor(limit))) as R[];
}
