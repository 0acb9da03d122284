/**
 * The SQL of durable execution on SQLite (steps, waits, wait_events; see
 * migration 0006), prepared once per connection like `statements.ts`.
 */
import type Database from 'better-sqlite3';
import type { WaitFilter } from '../roles/durable-store.js';
import type { StepColumns, WaitColumns } from '../durable-rows.js';
import type { RawEvent, RawJob } from './rows.js';
import { lazyStatements } from './lazy-statements.js';
import { keysetRows } from './statements.js';

export type RawStep = StepColumns<string>;
export type RawWait = WaitColumns<string>;

/** The running job a fenced durable write acts on. */
export interface FencedJob {
  id: number;
  queue: string;
  handler: string;
  event_id: string | null;
  lease_seq: number;
  /** The lease's holder and start: a suspend writes its attempt row from these. */
  worker_id: string | null;
  leased_at: number | null;
}

export interface NewStepParams {
  job_id: number;
  name: string;
  seq: number;
  kind: string;
  attempt: number;
  started_at: number;
  finished_at: number;
  result: string;
  result_bytes: number;
  timed_out: 0 | 1;
}

export interface NewWaitParams {
  id: string;
  job_id: number;
  handler: string;
  tenant: string | null;
  step: string;
  seq: number;
  kind: string;
  created_at: number;
  started_at: number;
  wake_at: number | null;
  events: string | null;
  match: string | null;
  prompt: string | null;
  schema: string | null;
}

const FENCE = "id = @id AND lease_token = @token AND state = 'running'";

function prepareDurable(db: Database.Database) {
  return lazyStatements(db, (p) => ({
    fencedJob: p<{ id: number; token: string }, FencedJob>(
      `SELECT id, queue, handler, event_id, lease_seq, worker_id, leased_at FROM jobs WHERE ${FENCE}`,
    ),
    stepsByJob: p<[number], RawStep>('SELECT * FROM steps WHERE job_id = ? ORDER BY seq'),
    stepByName: p<[number, string], RawStep>('SELECT * FROM steps WHERE job_id = ? AND name = ?'),
    stepTotals: p<[number], { n: number; bytes: number }>(
      'SELECT count(*) AS n, coalesce(sum(result_bytes), 0) AS bytes FROM steps WHERE job_id = ?',
    ),
    // A second writer of the same name or seq loses without an error: no row back.
    insertStep: p<NewStepParams, RawStep>(`
      INSERT INTO steps (job_id, name, seq, kind, attempt, started_at, finished_at, result, result_bytes, timed_out)
      VALUES (@job_id, @name, @seq, @kind, @attempt, @started_at, @finished_at, @result, @result_bytes, @timed_out)
      ON CONFLICT DO NOTHING
      RETURNING *`),
    eventStepResults: p<[number], { result: string }>("SELECT result FROM steps WHERE job_id = ? AND kind = 'event'"),

    // The look-back, one name at a time, oldest first (events_name_received).
    eventsSince: p<[string, number], RawEvent>(
      'SELECT * FROM events WHERE name = ? AND received_at >= ? ORDER BY received_at, id',
    ),

    suspendJob: p<{ id: number; token: string; wakeAt: number | null; now: number }, RawJob>(`
      UPDATE jobs SET state = 'suspended', run_at = coalesce(@wakeAt, run_at), attempts = max(attempts - 1, 0),
        lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = @now
      WHERE ${FENCE}
      RETURNING *`),
    wakeJob: p<{ id: number; now: number }, RawJob>(`
      UPDATE jobs SET state = 'queued', run_at = @now, updated_at = @now
      WHERE id = @id AND state = 'suspended'
      RETURNING *`),

    insertWait: p<NewWaitParams, RawWait>(`
      INSERT INTO waits (id, job_id, handler, tenant, step, seq, kind, state, created_at, started_at, wake_at,
                         events, match, prompt, schema)
      VALUES (@id, @job_id, @handler, @tenant, @step, @seq, @kind, 'pending', @created_at, @started_at, @wake_at,
              @events, @match, @prompt, @schema)
      RETURNING *`),
    insertWaitEvent: p<[string, string]>('INSERT OR IGNORE INTO wait_events (event_name, wait_id) VALUES (?, ?)'),
    deleteWaitEvents: p<[string]>('DELETE FROM wait_events WHERE wait_id = ?'),
    waitsForEvent: p<[string], RawWait>(`
      SELECT w.* FROM wait_events e JOIN waits w ON w.id = e.wait_id
      WHERE e.event_name = ? AND w.state = 'pending'
      ORDER BY w.id`),
    // Compare-and-set: only a pending wait resolves, times out or is cancelled, once.
    settleWait: p<{ id: string; state: string; now: number; by: string | null }, RawWait>(`
      UPDATE waits SET state = @state, resolved_at = @now, resolved_by = @by
      WHERE id = @id AND state = 'pending'
      RETURNING *`),
    dueWaits: p<[number, number], RawWait>(
      "SELECT * FROM waits WHERE state = 'pending' AND wake_at <= ? ORDER BY wake_at LIMIT ?",
    ),
    nextWake: p<[], { t: number | null }>(
      "SELECT min(wake_at) AS t FROM waits WHERE state = 'pending' AND wake_at IS NOT NULL",
    ),
    waitById: p<[string], RawWait>('SELECT * FROM waits WHERE id = ?'),
    pendingWaitOfJob: p<[number], RawWait>("SELECT * FROM waits WHERE job_id = ? AND state = 'pending'"),
    pendingInterrupts: p<[], { n: number; oldest: number | null }>(
      "SELECT count(*) AS n, min(created_at) AS oldest FROM waits WHERE kind = 'interrupt' AND state = 'pending'",
    ),
  }));
}

export type DurableFixed = ReturnType<typeof prepareDurable>;

export class DurableStatements {
  readonly fixed: DurableFixed;
  readonly #listWaits = new Map<string, Database.Statement<unknown[], unknown>>();

  constructor(private readonly db: Database.Database) {
    this.fixed = prepareDurable(db);
  }

  /** Newest first (ids sort by creation), keyset by `before`. */
  listWaits(filter: WaitFilter): RawWait[] {
    return keysetRows<RawWait>(this.db, this.#listWaits, 'waits', { kind: filter.kind, state: filter.state, handler: filter.handler }, filter.before, filter.limit);
  }
}
